"""What the report's generated tables and numbers contain, read from ``results/<dataset>-<profile>/``.

Each table is a function of the run's results folder returning LaTeX (a ``missing_table`` box
when its CSV is absent); ``numbers`` gives the values captions and the title block print through
``\\N{key}``. Nothing here writes analysis: the prose is the author's (``\\authorprose`` in
report/main.tex).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

from common.results import read_rows
from common.timing import one_session
from distillation.summary import seed_summary
from quantization.speedup import int8_speedups
from report.latex import (Column, acc, escape, fmt_megabytes, fmt_number, missing_table,
                          table)

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def _num(digits: int = 2, thousands: bool = False) -> Callable[[object], str]:
    return lambda v: fmt_number(v, digits, thousands)


def _mb(key: str, header: str = "size (MB)") -> Column:
    return Column(key, header, fmt_megabytes, "r")


def _ms(key: str = "latency_ms", header: str = "latency (ms)") -> Column:
    return Column(key, header, _num(1), "r")


def _pm(mean: str, std: str, header: str, digits: int = 3) -> Column:
    """A right-aligned 'mean $\\pm$ std' column of two row keys."""
    return Column(lambda r: "" if r.get(mean) in (None, "") else
                  f"{fmt_number(r[mean], digits)} $\\pm$ {fmt_number(r[std], digits)}", header, str, "r")


def _rows(results: Path, relative: str) -> list[dict]:
    return read_rows(results / relative)


def _tex(results: Path, source: str, caption: str, label: str, build, wide: bool = False) -> str:
    """``table`` of ``build(rows)`` -> (rows, columns), or the missing box when ``source`` is absent."""
    rows = _rows(results, source)
    if not rows:
        return missing_table(caption, label, f"{source} (run the script that writes it)", wide)
    rows = one_session(rows)           # a table's latencies come from one timing session
    body, columns = build(rows)
    return table(body, columns, caption + load_caption(rows), label, wide)


def load_caption(rows: list[dict]) -> str:
    """A caption sentence on how busy the machine was while the rows' latencies were timed
    (``common.timing.MachineLoad``); '' for a table without latencies."""
    timed = [r for r in rows if r.get("latency_ms") not in ("", None)]
    if not timed:
        return ""
    shares = [float(r["other_cpu_fraction"]) for r in timed if r.get("other_cpu_fraction") not in ("", None)]
    if not shares:
        return " The machine's load while timing was not recorded (timed before the load record existed)."
    return f" While timing, other processes used at most {100 * max(shares):.0f}\\% of the cores."


# ----------------------------------------------------------------------------- pruning


def pruned_models(results: Path) -> str:
    def build(rows):
        by_model = {}
        for r in rows:
            entry = by_model.setdefault(r["model"], dict(r))
            entry[f"latency_b{r['batch_size']}"] = r["latency_ms"]
        return list(by_model.values()), [
            Column("model", "model"), Column("overall_sparsity", "sparsity", _num(2), "r"),
            Column("params_nonzero", "non-zero params", _num(0, True), "r"),
            acc("top1_before_finetune", "before FT"), acc("top1_acc", "top-1 (\\%)"),
            _mb("size_bytes_dense", "dense (MB)"), _mb("size_bytes_compact", "compact (MB)"),
            _ms("latency_b1", "b1 (ms)"), _ms("latency_b256", "b256 (ms)")]
    return _tex(results, "pruning/pruned_models.csv",
                "Original, 70\\% unstructured and 70\\% channel-pruned VGG-11: test top-1 before and "
                "after fine-tuning (FT), real file sizes (dense state\\_dict; bitmask + non-zero values "
                "for the unstructured model, the smaller dense model for the channel-pruned one) and "
                "fp32 latency at batch 1 and 256.", "tab:pruned-models", build, wide=True)


def accuracy_vs_sparsity(results: Path) -> str:
    def build(rows):
        return rows, [Column("target_sparsity", "target", _num(2), "r"),
                      Column("overall_sparsity", "achieved", _num(3), "r"),
                      Column("delta_points", "$\\delta$ (pt)", _num(2), "r"),
                      acc("top1_before_finetune", "before FT"), acc("top1_acc", "after FT")]
    return _tex(results, "pruning/accuracy_vs_sparsity.csv",
                "Unstructured pruning at five overall sparsities: the equal-drop rule's per-layer "
                "validation budget $\\delta$, test top-1 before and after fine-tuning.",
                "tab:acc-vs-sparsity", build)


def unstructured_final(results: Path) -> str:
    def build(rows):
        return rows, [Column("layer", "layer"), Column("params", "params", _num(0, True), "r"),
                      Column("chosen_sparsity", "chosen", _num(3), "r"),
                      Column("sparsity", "achieved", _num(3), "r")]
    return _tex(results, "pruning/unstructured_final.csv",
                "Per-layer sparsities of the 70\\% unstructured model (chosen on validation).",
                "tab:unstructured-final", build)


def structured_final(results: Path) -> str:
    def build(rows):
        return rows, [Column("layer", "layer"), Column("ratio", "removed", _num(3), "r"),
                      Column("channels_before", "channels before", _num(0), "r"),
                      Column("channels_after", "after", _num(0), "r")]
    return _tex(results, "pruning/structured_final.csv",
                "Per-layer channel ratios of the channel-pruned model (about 70\\% of the parameters "
                "removed), chosen on validation.", "tab:structured-final", build)


def _cam_summary(rows: list[dict], score_keys: tuple[str, str]) -> list[dict]:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        group = [r for r in rows if r["model"] == model]
        entry = {"model": model, "images": len(group),
                 "correct": 100.0 * sum(r["correct"] in ("True", "1", "true") for r in group) / len(group)}
        for key in score_keys:
            values = [float(r[key]) for r in group]
            entry[f"{key}_mean"] = statistics.fmean(values)
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(entry)
    return out


def gradcam_pruning(results: Path) -> str:
    keys = ("cam_pearson_to_original", "cam_top20_iou_to_original")

    def build(rows):
        return _cam_summary(rows, keys), [
            Column("model", "model"), Column("images", "images", _num(0), "r"),
            Column("correct", "correct (\\%)", _num(1), "r"),
            _pm(f"{keys[0]}_mean", f"{keys[0]}_std", "Pearson"),
            _pm(f"{keys[1]}_mean", f"{keys[1]}_std", "top-20\\% IoU")]
    return _tex(results, "pruning/gradcam_pruning.csv",
                "Grad-CAM agreement of the pruned models with the original on seeded test images "
                "(mean $\\pm$ std over images).", "tab:gradcam-pruning", build)


# ----------------------------------------------------------------------------- quantization


def ptq(results: Path) -> str:
    def build(rows):
        return rows, [Column("format", "format"), Column("scheme", "scheme"), acc("top1_acc"),
                      _mb("size_bytes"), _ms(), Column("simulated", "sim.")]
    return _tex(results, "quantization/ptq.csv",
                "Post-training quantization of VGG-11: test top-1, bytes of the real file, batch-256 "
                "latency where a real kernel runs the format, all timed in one session (sim.: fp32 "
                "arithmetic on rounded values).",
                "tab:ptq", build)


def qat_summary(results: Path) -> str:
    def build(rows):
        return rows, [Column("format", "format"), acc("ptq_top1", "PTQ"), acc("qat_top1", "QAT"),
                      Column("qat_epochs", "epochs", _num(0), "r"),
                      Column("epochs_to_within_half_point", "to $\\le$0.5 pt", _num(0), "r")]
    return _tex(results, "quantization/qat_summary.csv",
                "QAT from the trained VGG-11: test top-1 after PTQ (epoch 0) and after QAT, and the "
                "first epoch whose validation top-1 is within 0.5 point of fp32's (-- never).",
                "tab:qat", build)


def scaling_law(results: Path) -> str:
    def build(rows):
        seen, out = set(), []
        for r in rows:
            key = (r["data_type"], r["block"])
            if key not in seen:
                seen.add(key)
                out.append(r)
        return out, [Column("data_type", "data type"), Column("block", "block"),
                     Column("bit_optimal_k", "bit-optimal $k$", _num(0), "r"),
                     Column(lambda r: f"{r['frontier_points_of_k']}/{r['frontier_points']}",
                            "frontier points of $k$", align="r")]
    return _tex(results, "quantization/scaling_law_frontier.csv",
                "Bit-optimal precision: the $k$ owning most points of the validation-accuracy-vs-total-"
                "model-bits frontier over all model sizes (PTQ).", "tab:scaling", build)


def mixed_precision(results: Path) -> str:
    def build(rows):
        return rows, [Column("config", "configuration"), Column("layer_bits", "bits per layer"),
                      _mb("size_bytes"), acc("val_top1_acc", "val"), acc("top1_acc", "test"), _ms(),
                      Column("simulated", "sim.")]
    return _tex(results, "quantization/mixed_precision.csv",
                "Mixed precision at equal size budgets: bits per layer (first to last; 16: float16, 32: "
                "fp32), real file size, validation and test top-1. Simulated configurations have no "
                "kernel; the real rows (fp32, int8 PT2E, int8 with first/last fp32) are timed together.",
                "tab:mixed", build, wide=True)


def outliers(results: Path) -> str:
    def build(rows):
        scopes = list(dict.fromkeys(r["layer_scope"].replace("all layers, ", "") for r in rows))
        out = []
        for quantizer in dict.fromkeys(r["quantizer"] for r in rows):
            for bits in dict.fromkeys(r["bits"] for r in rows):
                entry = {"quantizer": quantizer, "bits": bits}
                for r in rows:
                    if r["quantizer"] == quantizer and r["bits"] == bits:
                        entry[r["layer_scope"].replace("all layers, ", "")] = r["top1_acc"]
                out.append(entry)
        return out, [Column("quantizer", "quantizer"), Column("bits", "bits", align="r")] + [
            acc(scope, escape(scope)) for scope in scopes]
    return _tex(results, "quantization/outliers.csv",
                "Clipping and a non-uniform (power-of-two) quantizer at int8 and int4: test top-1 with "
                "weights, activations or both quantized (simulated).", "tab:outliers", build)


# ----------------------------------------------------------------------------- distillation


def students(results: Path) -> str:
    def build(rows):
        align = {r["method"]: r for r in _rows(results, "distillation/alignment.csv")}
        methods = seed_summary(rows)
        several = any(m["seeds"] > 1 for m in methods)
        out = [{**m, **{k: v for k, v in align.get(m["method"], {}).items() if k in (
            "kl_to_teacher", "top1_agreement", "prob_cosine")}} for m in methods]
        top1 = _pm("top1_mean", "top1_std", "top-1 (\\%)", 2) if several else acc("top1_mean")
        gain = (_pm("gain_mean", "gain_std", "vs S$_I$", 2) if several
                else Column("gain_mean", "vs S$_I$", lambda v: fmt_number(v, 2), "r"))
        return out, [Column(lambda r: r["method"] + (f" ({r['selected_settings']})" if r["selected_settings"] else ""),
                            "student"),
                     Column("seeds", "seeds", _num(0), "r"), top1, gain,
                     Column("kl_to_teacher", "KL(T$\\|$S)", _num(4), "r"),
                     Column("top1_agreement", "agree (\\%)", _num(2), "r"),
                     Column("prob_cosine", "cosine", _num(3), "r"),
                     Column("train_seconds_mean", "train (s)", _num(0), "r")]
    return _tex(results, "distillation/students.csv",
                "VGG-11 students of the VGG-16 teacher (\\N{teacher.top1}\\% test top-1), same recipe "
                "and initialisation: test top-1 (mean $\\pm$ std over seeds where there are several), gain "
                "over the independent student S$_I$ of the same seed (mean $\\pm$ std of the paired "
                "differences), and closeness to the teacher on the test "
                "split for the first seed (KL of $T{=}4$ softened probabilities, top-1 agreement, probability "
                "cosine).", "tab:students", build, wide=True)


def dkd_tuning(results: Path) -> str:
    def build(rows):
        return rows, [Column("candidate", "candidate"), Column("alpha", "$\\alpha$", _num(0), "r"),
                      Column("beta", "$\\beta$", _num(0), "r"),
                      Column("warmup_fraction", "warm-up", _num(3), "r"),
                      acc("val_top1_acc", "val"), acc("top1_acc", "test"),
                      Column("diverged", "diverged"), Column("selected", "selected")]
    return _tex(results, "distillation/dkd_tuning.csv",
                "DKD candidates, first seed (temperature 4; warm-up as a fraction of training steps); the "
                "selected one has the best validation top-1 and trains the other seeds. Test top-1 is "
                "reported, never used to choose.",
                "tab:dkd", build)


def gradcam_students(results: Path) -> str:
    def build(rows):
        return rows, [Column("model", "model"),
                      _pm("cam_pearson_to_teacher_mean", "cam_pearson_to_teacher_std", "Pearson"),
                      _pm("cam_top20_iou_to_teacher_mean", "cam_top20_iou_to_teacher_std", "top-20\\% IoU")]
    return _tex(results, "distillation/gradcam_localization_summary.csv",
                "Grad-CAM agreement with the teacher's map (true class, last stage) per student, mean "
                "$\\pm$ std over \\N{gradcam.images} seeded test images.", "tab:gradcam-students", build)


def colour(results: Path) -> str:
    def build(rows):
        return rows, [Column("model", "model"), Column("teacher", "teacher"), acc("top1_clean", "clean"),
                      acc("top1_jitter", "jittered"), Column("jitter_drop_points", "drop (pt)", _num(2), "r")]
    return _tex(results, "distillation/color_invariance.csv",
                "Colour invariance: test top-1 on clean and colour-jittered images (one fixed jitter per "
                "image). T$_\\text{colour}$ is the teacher fine-tuned with colour jitter; students train "
                "without it.", "tab:colour", build)


def teacher_size(results: Path) -> str:
    def build(rows):
        return rows, [Column("teacher", "teacher"), Column("teacher_params", "params", _num(0, True), "r"),
                      acc("teacher_top1", "teacher"), acc("student_top1", "student"),
                      Column("kl_to_teacher", "KL", _num(4), "r"), Column("agreement", "agree (\\%)", _num(2), "r")]
    return _tex(results, "distillation/teacher_size.csv",
                "Teacher size: KD students of VGG-16 and VGG-19 (test top-1, KL and agreement to their "
                "own teacher).", "tab:teacher-size", build)


# ----------------------------------------------------------------------------- combined


def pipelines(results: Path) -> str:
    def build(rows):
        return rows, [Column("pipeline", "pipeline"), Column("stage", "", _num(0), "r"), Column("step", "step"),
                      acc("top1_acc"), _mb("size_bytes"), Column("size_format", "stored as"),
                      Column("weight_sparsity", "sparsity", _num(2), "r"), _ms(), Column("simulated", "sim.")]
    return _tex(results, "combined/pipelines.csv",
                "Combined pipelines, every stage measured: test top-1, real file size, batch-256 latency "
                "of every real-kernel stage timed in one session (-- for simulated formats).",
                "tab:pipelines", build, wide=True)


def tree_state(info: dict) -> str:
    """'clean', 'dirty', or 'see note' (a sidecar written before the dirty flag, corrected by a
    ``provenance_note``) for a results sidecar."""
    if info.get("dirty") is False:
        return "clean"
    return "see note" if info.get("provenance_note") else "dirty"


def provenance(results: Path) -> str:
    """Appendix table: which commit, device and wall time produced each results file."""
    rows = []
    for sidecar in sorted(results.glob("*/*.json")):
        info = json.loads(sidecar.read_text())
        rows.append({"file": f"{sidecar.parent.name}/{sidecar.stem}.csv",
                     "commit": str(info.get("git_commit", "")).removesuffix("-dirty")[:10],
                     "tree": tree_state(info),
                     "device": info.get("device", ""), "wall": info.get("wall_seconds", "")})
    if not rows:
        return missing_table("Provenance of every results file.", "tab:provenance", "results/*/*.json")
    return table(rows, [Column("file", "results file"), Column("commit", "commit"), Column("tree", "tree"),
                        Column("device", "device"), Column("wall", "wall (s)", _num(0), "r")],
                 "Provenance of every results file (JSON sidecars): git commit, whether the tree was clean "
                 "(files written before the flag existed carry a correction note in their sidecar), "
                 "device and wall time.",
                 "tab:provenance", placement="h")


TABLES: dict[str, Callable[[Path], str]] = {
    "pruned_models": pruned_models, "accuracy_vs_sparsity": accuracy_vs_sparsity,
    "unstructured_final": unstructured_final, "structured_final": structured_final,
    "gradcam_pruning": gradcam_pruning, "ptq": ptq, "qat_summary": qat_summary, "scaling_law": scaling_law,
    "mixed_precision": mixed_precision, "outliers": outliers, "students": students, "dkd_tuning": dkd_tuning,
    "gradcam_students": gradcam_students, "colour": colour, "teacher_size": teacher_size,
    "pipelines": pipelines, "provenance": provenance,
}


# ----------------------------------------------------------------------------- numbers


def numbers(results: Path, dataset: str, profile: str) -> dict[str, str]:
    """Values the captions and title block print (LaTeX strings), by key; keys whose file is
    missing are absent (``\\N`` then prints a red marker and the builder reports it)."""
    out = {"dataset": DATASET_NAMES.get(dataset, escape(dataset)), "profile": escape(profile)}
    baselines = _rows(results, "baselines/baselines.csv")
    for r in baselines:
        out[f"{r['model']}.top1"] = fmt_number(r["top1_acc"])
        out[f"{r['model']}.params"] = fmt_number(r["params"], 0, True)
    if baselines:
        out["width"] = fmt_number(baselines[0]["width"], 2)
        out["epochs"] = fmt_number(baselines[0]["epochs"], 0)
    students_rows = _rows(results, "distillation/students.csv")
    if students_rows:
        out["student.epochs"] = fmt_number(students_rows[0]["epochs"], 0)
    sidecar = results / "distillation" / "students.json"
    if sidecar.exists():
        out["teacher.top1"] = fmt_number(json.loads(sidecar.read_text()).get("teacher_top1", ""))
    summary = _rows(results, "distillation/gradcam_localization_summary.csv")
    if summary:
        out["gradcam.images"] = fmt_number(summary[0]["images"], 0)
    qat = _rows(results, "quantization/qat_summary.csv")
    if qat:
        out["qat.epochs"] = fmt_number(qat[0]["qat_epochs"], 0)
    speedups = int8_speedups(one_session(_rows(results, "quantization/ptq.csv")))
    if speedups:
        out["int8.ms"] = fmt_number(speedups["int8_ms"], 1)
        out["int8.vs.float"] = fmt_number(speedups["vs_fastest_float"], 1)
        out["int8.fastest.float"] = escape(speedups["fastest_float"])
        out["int8.fastest.float.ms"] = fmt_number(speedups["fastest_float_ms"], 1)
        if speedups["vs_fp32_compiled"] is not None:
            out["int8.vs.fp32"] = fmt_number(speedups["vs_fp32_compiled"], 1)
    for key, path in (("pruned.unstructured.sparsity", "pruning/unstructured_final.json"),
                      ("pruned.structured.params", "pruning/structured_final.json")):
        if (results / path).exists():
            info = json.loads((results / path).read_text())
            value = info.get("overall_sparsity", info.get("params_fraction"))
            if value is not None:
                out[key] = fmt_number(100 * float(value), 1)
    return out
