"""Refresh the generated blocks of the READMEs from the profile table and committed results.

    python -m study.readme            # rewrites every block of README.md and the task READMEs
    python -m study.readme --check    # writes nothing; exit status 1 naming each stale file

Each block, ``<!-- BEGIN generated:NAME -->...<!-- END generated:NAME -->``, is written into the
file of ``README_FILES`` that holds its markers. Numbers in the READMEs are never typed by hand:
they come from ``common/profiles.py`` and from ``results/<dataset>-<profile>/`` CSVs.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from common.flags import Parser
from common.profiles import PROFILES
from common.results import PROJECT_ROOT, atomic_path, read_rows, read_sidecar, results_root
from common.timing import one_session
from quantization.speedup import int8_speedups
from study.markdown import captioned, markdown_table


def profiles_block() -> str:
    """The profile table of ``common.profiles``."""
    rows = [{**p.as_dict(), "train_images": p.train_images or "all but val",
             "test_images": p.test_images or "all"} for p in PROFILES.values()]
    cols = ["name", "width", "train_images", "val_images", "test_images", "epochs", "student_epochs",
            "finetune_epochs", "batch_size", "lr", "weight_decay"]
    return markdown_table(rows, cols)


def results_block(run: str) -> str:
    """The baselines table of ``results/<run>/`` (a note if absent)."""
    return "".join(captioned(f"Baselines (`results/{run}/baselines/baselines.csv`, test split)",
                             read_rows(results_root() / run / "baselines" / "baselines.csv"),
                             ["model", "width", "epochs", "top1_acc", "top5_acc", "params", "train_seconds",
                              "seconds_per_epoch", "train_device"])) or f"_No results under `results/{run}/` yet._\n"


def throughput_block(run: str) -> str:
    """The training-throughput tables of ``results/<run>/benchmark/`` (a note if absent)."""
    rows = [row for path in sorted((results_root() / run / "benchmark").glob("throughput_*.csv")) for row in read_rows(path)]
    return "".join(captioned(f"Training throughput (`results/{run}/benchmark/throughput_*.csv`, median of fresh-process "
                             "readings)", rows, ["pipeline", "model", "width", "batch_size", "threads", "rounds",
                                                 "train_images_per_second", "speedup_vs_textbook"])) \
        or f"_No benchmark under `results/{run}/benchmark/` yet._\n"


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values)


def pruning_block(run: str) -> str:
    """Key pruning numbers of ``results/<run>/pruning/`` (a note if absent)."""
    folder = results_root() / run / "pruning"
    models = read_rows(folder / "pruned_models.csv")
    if not models:
        return f"_No pruning results under `results/{run}/pruning/` yet._\n"
    parts = [f"Original vs pruned VGG-11 (`results/{run}/pruning/pruned_models.csv`; test top-1, "
             "real file sizes, median latency):\n\n" + markdown_table(models, [
                 "model", "overall_sparsity", "params_nonzero", "top1_before_finetune", "top1_acc",
                 "size_bytes_dense", "size_bytes_compact", "batch_size", "latency_ms", "threads", "device"])]
    by = {(r["model"], r["batch_size"]): r for r in models}
    original = float(by[next(k for k in by if k[0] == "original")]["top1_acc"])
    gaps = ", ".join(f"{m} {float(by[(m, b)]['top1_acc']) - original:+.2f} points"
                     for m, b in by if m != "original" and b == "1")
    speed = ", ".join(f"batch {b}: {float(by[('original', b)]['latency_ms']) / float(by[(m, b)]['latency_ms']):.2f}x ({m})"
                      for m, b in by if m != "original")
    parts.append(f"Test top-1 after fine-tuning relative to the original: {gaps}. "
                 f"Speed-up over the original with the same dense kernels: {speed}.\n")
    parts += captioned("Accuracy vs overall sparsity (`accuracy_vs_sparsity.csv`)",
                       read_rows(folder / "accuracy_vs_sparsity.csv"),
                       ["target_sparsity", "overall_sparsity", "top1_before_finetune", "top1_acc"])
    for name in ("unstructured_sensitivity", "structured_sensitivity"):
        rows = read_rows(folder / f"{name}.csv")
        if rows:
            layers = dict.fromkeys(r["layer"] for r in rows)
            ranked = sorted((_mean(r["top1_acc"] for r in rows if r["layer"] == l), l) for l in layers)
            parts.append(f"Layers ranked by mean validation top-1 over the sweep in `{name}.csv` (each "
                         "pruned alone): most sensitive " + ", ".join(f"`{l}` {a:.1f}%" for a, l in ranked[:3])
                         + "; least " + ", ".join(f"`{l}` {a:.1f}%" for a, l in ranked[-2:]) + ".\n")
    cams = read_rows(folder / "gradcam_pruning.csv")
    if cams:
        rows = [{"model": m, "images": len(sel), "accuracy_on_these_images": round(100 * _mean(r["correct"] == "True" for r in sel), 1),
                 "mean_cam_pearson_to_original": round(_mean(r["cam_pearson_to_original"] for r in sel), 3),
                 "mean_cam_top20_iou_to_original": round(_mean(r["cam_top20_iou_to_original"] for r in sel), 3)}
                for m in dict.fromkeys(r["model"] for r in cams) for sel in [[r for r in cams if r["model"] == m]]]
        parts.append("Grad-CAM agreement with the original (`gradcam_pruning.csv`):\n\n" + markdown_table(rows, list(rows[0])))
    return "\n".join(parts)


def int8_speedup_sentence(ptq: list[dict]) -> str:
    """One line: the real int8 row's batch-256 latency against the fastest float format timed in
    its session and against fp32 under torch.compile (``int8_speedups`` of ``ptq.csv``'s rows);
    '' when ``ptq`` has no timed int8 row."""
    s = int8_speedups(ptq)
    if not s:
        return ""
    return (f"Real int8 (PT2E, {s['int8_ms']:g} ms) against the fastest float format timed in its session, "
            f"{s['fastest_float']} ({s['fastest_float_ms']:g} ms): {s['vs_fastest_float']:.2f}x" + (
                f" (against fp32 under torch.compile: {s['vs_fp32_compiled']:.2f}x)" if s['vs_fp32_compiled'] else "")
            + ".\n")


def quantization_block(run: str) -> str:
    """Key quantization numbers of ``results/<run>/quantization/`` (a note if absent)."""
    folder = results_root() / run / "quantization"
    ptq = one_session(read_rows(folder / "ptq.csv"))   # every latency shown: one session
    parts = captioned(f"PTQ of VGG-11 (`results/{run}/quantization/ptq.csv`; test top-1, real file sizes, batch-256 "
                      "latency where a real kernel runs, all timed in one interleaved session; `int8_kernels` counts "
                      "the int8 conv and linear kernels Inductor compiled in)", ptq,
                      ["format", "scheme", "top1_acc", "size_bytes", "latency_ms", "threads", "kernel",
                       "int8_kernels", "simulated"])
    timed = [r for r in ptq if r.get("latency_ms") not in ("", None)]
    reference = next((r for r in timed if r["scheme"] == "fp32 (torch.compile)"), None)
    if reference:   # only rows timed in the reference's session are compared
        ranked = sorted((r for r in timed if r.get("timing_session") == reference.get("timing_session")),
                        key=lambda r: float(r["latency_ms"]))
        parts.append("Latency at batch 256, one timing session, relative to fp32 under torch.compile "
                     f"({reference['latency_ms']} ms): "
                     + "; ".join(f"{r['format']} {r['scheme']} {float(reference['latency_ms']) / float(r['latency_ms']):.2f}x"
                                 for r in ranked)
                     + f". Fastest in that session: {ranked[0]['format']} {ranked[0]['scheme']}.\n")
    if sentence := int8_speedup_sentence(ptq):
        parts.append(sentence)
    parts += captioned("QAT (`qat.csv`, `qat_summary.csv`; epoch 0 is PTQ, fp32 is a fine-tune control; test top-1 of "
                       "the PTQ and final models, the recovery epoch read on validation)",
                       read_rows(folder / "qat_summary.csv"),
                       ["format", "fp32_top1", "ptq_top1", "qat_top1", "qat_epochs", "epochs_to_within_half_point"])
    frontier = read_rows(folder / "scaling_law_frontier.csv")
    if frontier:
        picks = dict.fromkeys((r["data_type"], r["block"], r["bit_optimal_k"], r["frontier_points_of_k"],
                               r["frontier_points"]) for r in frontier)
        parts.append("Bit-optimal k (`scaling_law_frontier.csv`, the k owning most points of the PTQ "
                     "validation-accuracy-vs-total-bits frontier over all model sizes): "
                     + "; ".join(f"{d} {b}: k={k} ({n} of {t} points)" for d, b, k, n, t in picks) + ".\n")
    mixed = one_session(read_rows(folder / "mixed_precision.csv"))
    parts += captioned("Mixed precision (`mixed_precision.csv`; layer bits in forward order, 16 = float16, 32 = fp32; "
                       "simulated configurations have no kernel and no latency; the real rows are timed in one session)",
                       mixed, ["config", "layer_bits", "total_bits", "size_bytes", "val_top1_acc", "top1_acc",
                               "latency_ms", "simulated"])
    real = {r["kind"]: r for r in mixed if r.get("kind", "").startswith("real") and r.get("latency_ms")}
    if {"real int8", "real int8, first/last fp32"} <= set(real):
        int8, edges = real["real int8"], real["real int8, first/last fp32"]
        fp32 = real.get("real fp32", {})
        same = fp32.get("timing_session") == int8.get("timing_session")
        parts.append(f"Real int8 with the first conv and last linear kept fp32 (one timing session): "
                     f"{edges['latency_ms']} ms vs {int8['latency_ms']} ms for int8 everywhere "
                     f"({float(edges['latency_ms']) / float(int8['latency_ms']):.2f}x the latency)"
                     + (f" and {fp32['latency_ms']} ms for fp32" if same else "")
                     + f"; test top-1 {edges['top1_acc']} vs {int8['top1_acc']}"
                     + (f" vs {fp32['top1_acc']}" if fp32 else "") + ".\n")
    outliers = read_rows(folder / "outliers.csv")
    if outliers:
        quantizers = list(dict.fromkeys(r["quantizer"] for r in outliers))
        table = [{"bits / scope": f"int{b} {s}", **{q: next(r["top1_acc"] for r in outliers if
                                                        (r["bits"], r["layer_scope"], r["quantizer"]) == (b, s, q))
                                                     for q in quantizers}}
                 for b, s in dict.fromkeys((r["bits"], r["layer_scope"]) for r in outliers)]
        parts.append("Outliers: test top-1 by quantizer (`outliers.csv`):\n\n"
                     + markdown_table(table, ["bits / scope", *quantizers]))
    per_layer = read_rows(folder / "outliers_per_layer.csv")
    if per_layer:
        gains = []
        for layer, scope in dict.fromkeys((r["layer"], r["scope"]) for r in per_layer):
            drops = {r["quantizer"]: float(r["drop_points"]) for r in per_layer
                     if (r["layer"], r["scope"]) == (layer, scope)}
            gains.append((max(drops.values()) - min(drops.values()), layer, scope, drops))
        top = sorted(gains, reverse=True)[:3]
        parts.append("Where clipping matters most (`outliers_per_layer.csv`, one layer at int4): "
                     + "; ".join(f"`{l}` {s}: drop " + " vs ".join(f"{v:.2f}" for v in d.values())
                                 + f" points ({' vs '.join(d)})" for _, l, s, d in top) + ".\n")
    return "\n".join(parts) or f"_No quantization results under `results/{run}/quantization/` yet._\n"


def distillation_block(run: str) -> str:
    """Key distillation numbers of ``results/<run>/distillation/`` (a note if absent)."""
    folder = results_root() / run / "distillation"
    parts = []
    students = read_rows(folder / "students.csv")
    alignment = {r["method"]: r for r in read_rows(folder / "alignment.csv")}
    if students:
        independent = {r["seed"]: float(r["top1_acc"]) for r in students if r["method"] == "independent"}
        first_seed = students[0]["seed"]   # alignment.csv measures the students of the first seed
        rows = [{**r, "gain_over_S_I": "" if r["seed"] not in independent
                 else f"{float(r['top1_acc']) - independent[r['seed']]:+.2f}",
                 **{k: alignment.get(r["method"], {}).get(k, "") if r["seed"] == first_seed else ""
                    for k in ("kl_to_teacher", "top1_agreement", "prob_cosine")}}
                for r in students]
        parts.append(f"Students (`results/{run}/distillation/students.csv`, `alignment.csv`; test split):\n\n"
                     + markdown_table(rows, ["method", "selected_settings", "teacher", "seed", "epochs", "top1_acc",
                                             "gain_over_S_I", "kl_to_teacher", "top1_agreement", "prob_cosine",
                                             "train_seconds"]))
    parts += captioned("Over seeds (`students_summary.csv`; sample standard deviation; gain over the same seed's S_I, "
                       "in points)", read_rows(folder / "students_summary.csv"),
                       ["method", "teacher", "seeds", "top1_mean", "top1_std", "gain_mean", "gain_std"])
    parts += captioned("DKD candidates (`dkd_tuning.csv`; `dkd_tuned` is the one with the best validation top-1, test "
                       "top-1 is never used to choose)", read_rows(folder / "dkd_tuning.csv"),
                       ["candidate", "alpha", "beta", "warmup_fraction", "val_top1_acc", "top1_acc", "diverged",
                        "selected", "train_seconds"])
    cams = read_rows(folder / "gradcam_localization_summary.csv")
    parts += captioned("Grad-CAM agreement with the teacher (`gradcam_localization_summary.csv`)", cams,
                       list(cams[0])[2:] if cams else [])
    parts += captioned("Colour invariance (`color_invariance.csv`)", read_rows(folder / "color_invariance.csv"),
                       ["model", "teacher", "top1_clean", "top1_jitter", "jitter_drop_points"])
    parts += captioned("Teacher size (`teacher_size.csv`)", read_rows(folder / "teacher_size.csv"),
                       ["teacher", "teacher_params", "teacher_top1", "student_top1", "kl_to_teacher", "agreement"])
    return "\n".join(parts) or f"_No distillation results under `results/{run}/distillation/` yet._\n"


def combined_block(run: str) -> str:
    """The combined pipelines and the Pareto-front models of ``results/<run>/combined/``."""
    folder = results_root() / run / "combined"
    parts = captioned(f"Pipelines (`results/{run}/combined/pipelines.csv`; test top-1, real file sizes, batch-256 "
                      "latency compiled with Inductor freezing, every stage timed in one session, blank for simulated "
                      "formats)", one_session(read_rows(folder / "pipelines.csv")),
                      ["pipeline", "stage", "step", "top1_acc", "size_bytes", "size_format", "weight_sparsity",
                       "latency_ms", "simulated"])
    points = one_session(read_rows(folder / "pareto_points.csv"))   # the VGG-11 baseline's session
    parts += captioned(f"Models on the accuracy-vs-size Pareto front over all {len(points)} models of the study "
                       "(`pareto_points.csv`, figure `pareto.png`)",
                       sorted((p for p in points if p["on_size_front"] == "yes"), key=lambda p: int(p["size_bytes"])),
                       ["family", "model", "val_top1_acc", "top1_acc", "top1_std", "size_bytes", "latency_ms", "simulated"])
    return "\n".join(parts) or f"_No combined results under `results/{run}/combined/` yet._\n"


def key_results_block(run: str) -> str:
    """One line per headline model of ``results/<run>/``: the fp32 baseline, the best model of
    each family and the smallest within 1 point of the baseline (with and without simulated
    formats), every choice made on *validation* top-1 (a multi-seed student enters as its seed
    mean; a tie goes to the smaller file), the test top-1 reported beside it (from pareto_points.csv)."""
    points = one_session(read_rows(results_root() / run / "combined" / "pareto_points.csv"))
    if not points:
        return f"_No `results/{run}/combined/pareto_points.csv` yet (run `combined/02_pareto.py`)._\n"
    points = [p for p in points if p.get("val_top1_acc") not in ("", None)]
    val = lambda p: float(p["val_top1_acc"])   # noqa: E731
    base = next(p for p in points if p["family"] == "baseline" and p["model"] == "VGG-11")
    rows = [{"what": "VGG-11 fp32 baseline", **base}]
    for family in dict.fromkeys(p["family"] for p in points if p["family"] != "baseline"):
        rows.append({"what": f"best {family}",
                     **max((p for p in points if p["family"] == family), key=lambda p: (val(p), -int(p["size_bytes"])))})
    close = [p for p in points if val(p) >= val(base) - 1.0]
    rows.append({"what": "smallest within 1 point of VGG-11", **min(close, key=lambda p: int(p["size_bytes"]))})
    real = [p for p in close if p["simulated"] != "yes"]
    if real:
        rows.append({"what": "smallest within 1 point, not simulated", **min(real, key=lambda p: int(p["size_bytes"]))})
    ptq = one_session(read_rows(results_root() / run / "quantization" / "ptq.csv"))
    speed = int8_speedup_sentence(ptq)
    return (f"From `results/{run}/combined/pareto_points.csv`. Every choice (\"best\", \"within 1 point\") is made "
            "on validation top-1 (a tie goes to the smaller file), students by their mean over seeds; test top-1 is "
            "reported beside it (± the sample std over seeds). Bytes of real files; latency at batch 256, all "
            "timed in one session of the Pareto stage, blank where that session timed no kernel for the model "
            "(simulated formats, and variants timed only in their task's CSV):\n\n"
            + markdown_table([{**r, "top1_acc": r["top1_acc"] + (f" ± {r['top1_std']}" if r.get("top1_std") else "")}
                              for r in rows],
                             ["what", "model", "val_top1_acc", "top1_acc", "size_bytes", "latency_ms", "simulated"])
            + (f"\nFrom `results/{run}/quantization/ptq.csv` (timed in its own session, not the Pareto stage's). {speed}"
               if speed else ""))


def _script_of(command: str) -> str:
    """'python pruning/02_x.py --a' -> '02_x'; 'python -m common.train ...' -> 'common.train'."""
    words = command.split()
    if len(words) > 2 and words[1] == "-m":
        return words[2]
    return Path(words[1]).stem if len(words) > 1 else command


def students_training_seconds(folder: Path) -> float:
    """Seconds to train every student behind ``<folder>/students.csv`` and ``dkd_tuning.csv``,
    each checkpoint once: a ``dkd_tuned`` row is the DKD candidate it names, trained for the
    tuning at that seed."""
    seconds: dict[tuple[str, str], float] = {}
    for r in read_rows(folder / "dkd_tuning.csv"):
        seconds[(r["candidate"], r["seed"])] = float(r["train_seconds"])
    for r in read_rows(folder / "students.csv"):
        seconds[(r.get("selected_settings") or r["method"], r["seed"])] = float(r["train_seconds"])
    return sum(seconds.values())


def cost_rows(run: str) -> list[dict]:
    """Wall time of every script run behind ``results/<run>/``: rows (stage, wall_seconds,
    device), from the JSON sidecars; a script that writes several files counts once, with its
    longest time. Benchmarks and the cost plan's own files are not stages.

    Baselines and students count their training time (summed from ``baselines.csv`` and the
    students' CSVs, whichever of the stage's files is read), since a re-run
    that finds them cached, or trains only some seeds, records only its own time; a file
    re-derived from its own rows (``derived_from``, e.g. Pareto fronts recomputed) counts the
    wall time and device of the run that measured it.
    """
    folder = results_root() / run
    stages: dict[str, dict] = {}
    for path in sorted(folder.glob("*/*.json")):
        if path.parent.name in ("benchmark", "plan"):
            continue
        prov = json.loads(path.read_text())
        prov = {**prov, **prov.get("derived_from", {})}   # a file re-derived without re-measuring costs its run
        seconds = float(prov.get("wall_seconds", 0))
        stage = f"{path.parent.name}/{_script_of(prov.get('command', path.stem))}"
        if path.parent.name == "baselines":
            seconds = sum(float(r["train_seconds"]) for r in read_rows(path.parent / "baselines.csv"))
        elif stage == "distillation/01_students":
            seconds = max(seconds, students_training_seconds(path.parent))
        if seconds >= stages.get(stage, {}).get("wall_seconds", -1):
            stages[stage] = {"stage": stage, "wall_seconds": round(seconds), "device": prov.get("device", "")}
    return sorted(stages.values(), key=lambda r: r["stage"])


def costs_block(run: str) -> str:
    """The cost table of ``results/<run>/`` (``cost_rows``) and its total, in minutes."""
    rows = cost_rows(run)
    if not rows:
        return f"_No results under `results/{run}/` yet._\n"
    total = sum(r["wall_seconds"] for r in rows)
    return (markdown_table(rows, ["stage", "wall_seconds", "device"])
            + f"\nTotal so far: {total / 60:.0f} minutes.\n")


def plan_block(run: str) -> str:
    """The cost plan's projection for ``results/<run>/`` (``plan/projection.csv``, written by
    ``python -m study.plan``) beside the measured wall seconds, per stage and in total."""
    path = results_root() / run / "plan" / "projection.csv"
    rows = read_rows(path)
    if not rows:
        return f"_No cost plan under `results/{run}/plan/` yet (`python -m study.plan`)._\n"
    prov = read_sidecar(path)
    source = prov.get("throughput_source", "?")
    if source.startswith("measured now") or "plan/throughput.csv" in source:
        source = "the plan's own benchmark (`plan/throughput.csv`)"
    text = markdown_table(rows, ["stage", "trainings", "projected_seconds", "measured_seconds",
                                 "measured_over_projected"])
    return (text + f"\nThroughput: {source}, on {prov.get('throughput_device', '?')}. "
            f"Projected {float(prov['projected_minutes']):.0f} minutes"
            + (f", measured {float(prov['measured_minutes']):.0f}" if prov.get("measured_minutes") else "")
            + ".\n")


README_FILES = ("README.md", "pruning/README.md", "quantization/README.md", "distillation/README.md",
                "combined/README.md")   # each generated block lives in the one of these holding its markers
PER_RUN = {"key-results": key_results_block, "results": results_block, "throughput": throughput_block,
           "pruning": pruning_block, "quantization": quantization_block, "distillation": distillation_block,
           "combined": combined_block, "costs": costs_block, "plan": plan_block}


def blocks(run: str = "cifar10-cpu") -> dict[str, str]:
    """Every block's body by name: ``profiles``, and ``<kind>-<run>`` for each kind of ``PER_RUN``."""
    return {"profiles": profiles_block(), **{f"{kind}-{run}": make(run) for kind, make in PER_RUN.items()}}


def render(text: str, blocks: dict[str, str]) -> str:
    """Replace each ``<!-- BEGIN generated:NAME -->...<!-- END generated:NAME -->`` body."""
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- BEGIN generated:{re.escape(name)} -->\n).*?(<!-- END generated:{re.escape(name)} -->)",
                             re.S)
        if not pattern.search(text):
            raise ValueError(f"README has no generated block {name!r}")
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)
    return text


def refreshed(files: list[str] | None = None) -> dict[Path, tuple[str, str]]:
    """(text, text with every block it holds rewritten) of each README: ``files``, else ``README_FILES``,
    which must hold every block exactly once. ValueError for a block no generator writes, or misplaced."""
    paths = [Path(f) for f in files] if files else [PROJECT_ROOT / f for f in README_FILES]
    texts, bodies = {p: p.read_text() for p in paths}, blocks()
    held = {p: re.findall(r"<!-- BEGIN generated:([\w.-]+) -->", text) for p, text in texts.items()}
    placed = [name for names in held.values() for name in names]
    wrong = [n for n in placed if n not in bodies] + ([] if files else [n for n in bodies if placed.count(n) != 1])
    if wrong:
        raise ValueError(f"blocks without a generator, or not in exactly one of {README_FILES}: {sorted(set(wrong))}")
    return {p: (text, render(text, {name: bodies[name] for name in held[p]})) for p, text in texts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", action="append", metavar="PATH",
                        help="refresh only this file's blocks (repeatable; default: every file of README_FILES)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit status 1 if a block is stale")
    args = parser.parse_args(argv)
    stale = {path: new for path, (old, new) in refreshed(args.readme).items() if new != old}
    for path, new in stale.items():
        if not args.check:
            with atomic_path(path) as tmp:
                tmp.write_text(new)
        print(f"[readme] {'stale' if args.check else 'refreshed'} {path}")
    if not stale:
        print("[readme] every generated block is up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
