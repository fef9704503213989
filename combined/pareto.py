"""Every model the study produced as one point (accuracy, size, latency), and their Pareto fronts.

Accuracy and size are read from the task CSVs (nothing re-evaluated): baselines, the pruned
models, the quantized formats and the real int8 mixed-precision model, the distilled students
(one point per method: the mean over its seeds, with the spread), every stage of the combined
pipelines. Validation top-1 travels with each point, for any choice among them.

Latency is measured here, for every point that has one, in one interleaved session
(``common.timing``), so that the latency panel compares only readings taken together on one
device. A model's latency is that of its *latency class*: its architecture (``architecture_id``)
and the kernels it runs as (fp32 compiled, int8 compiled with freezing, int8 with first/last
fp32, fp16/bf16 casts, torchao's int4 weight-only). Kernel speed is *assumed* not to depend on
the weight values, so each class is built once (int8 ones calibrated on training images) and
timed once: a student or an unstructured-pruned VGG-11 (its zeros still computed by dense
kernels) takes VGG-11's fp32 latency. (Not verified: in pipelines.csv the KD student, timed in
another session, reads slower than VGG-11 does here; see combined/README.md.) Simulated formats get none.
"""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from common.figures import label_points, plt, readable_log_axis, save_figure  # Agg backend set
from common.measure import saved_size_bytes
from common.models import architecture_id, build_model
from common.results import read_rows
from common.timing import InferenceCompiled, Timed, new_session_id, one_session, time_interleaved
from distillation.summary import seed_summary

FAMILIES = ("baseline", "pruned", "quantized", "mixed precision", "distilled", "combined")
MARKERS = dict(zip(FAMILIES, "osD^vP"))
LATENCY_BATCH = 256
PLOTTED_WITHIN = 15.0    # points further below the best top-1 (diverged, 2-bit) stay in the CSV only
# ptq.csv scheme -> the kernels its model runs as (schemes not listed are simulated or fp32 baselines)
PTQ_RUNS_AS = {"fp16 cast": "fp16", "bf16 cast": "bf16", "W8A8 static (torchao PT2E)": "int8",
               "W4 weight-only (torchao)": "int4 weight-only (torchao)"}
MIXED_REAL = {"int8 W8A8 (PT2E), first/last fp32": "int8 first/last fp32"}


def baseline_architectures(classes: int, width: float) -> dict[str, nn.Module]:
    """Freshly built VGG-11/16/19 (their file size and dense latency do not depend on the weights)."""
    return {name: build_model(name, classes, width) for name in ("vgg11", "vgg16", "vgg19")}


def fp32_file_bytes(models: dict[str, nn.Module]) -> dict[str, int]:
    """name -> bytes of its fp32 state_dict written to a temporary file."""
    with tempfile.TemporaryDirectory() as tmp:
        return {name: saved_size_bytes(m.state_dict(), Path(tmp) / f"{name}.pt") for name, m in models.items()}


def _point(family, model, row, top1, size, cost: tuple[int, int], latency_class="", source="", simulated="no",
           top1_std="", seeds="") -> dict:
    val = row.get("val_top1_acc", row.get("val_top1_mean", ""))
    return {"family": family, "model": model, "top1_acc": round(float(top1), 2), "top1_std": top1_std,
            "seeds": seeds, "val_top1_acc": "" if val in ("", None) else round(float(val), 2),
            "size_bytes": int(size), "params": int(cost[0]), "macs": int(cost[1]), "simulated": simulated,
            "latency_class": latency_class, "source": source}


def collect_points(results: Path, architectures: dict[str, str], fp32_bytes: dict[str, int],
                   costs: dict[str, tuple[int, int]]) -> list[dict]:
    """One dict per model (family, model, top1_acc (test), top1_std and seeds for seed means,
    val_top1_acc, size_bytes, params, macs (per image), simulated, latency_class ('' = not timed),
    source CSV) from ``results/<dataset>-<profile>/``. ``architectures``:
    'vgg11'/'vgg16'/'vgg19'/'structured' -> ``architecture_id``; ``fp32_bytes``:
    'vgg11'/'vgg16'/'vgg19' -> fp32 file bytes; ``costs``: the same keys -> (parameters, MACs)
    (``common.measure.count_macs``: a quantized or unstructured-pruned VGG-11 has VGG-11's;
    a pipeline's row carries its own)."""
    points = []
    vgg11 = architectures["vgg11"]
    for r in read_rows(results / "baselines" / "baselines.csv"):
        points.append(_point("baseline", r["model"].upper().replace("VGG", "VGG-"), r, r["top1_acc"],
                             fp32_bytes[r["model"]], costs[r["model"]], f"{architectures[r['model']]} fp32",
                             "baselines.csv"))
    pruned = {r["model"]: r for r in read_rows(results / "pruning" / "pruned_models.csv") if r["model"] != "original"}
    for name, r in pruned.items():
        arch = vgg11 if name == "unstructured" else architectures[name]
        points.append(_point("pruned", f"{name} 70%", r, r["top1_acc"], r["size_bytes_compact"],
                             costs["vgg11" if name == "unstructured" else name], f"{arch} fp32", "pruned_models.csv"))
    for r in read_rows(results / "quantization" / "ptq.csv"):
        if r["format"] == "fp32":
            continue
        real = r["simulated"] != "yes" and r["scheme"] in PTQ_RUNS_AS
        points.append(_point("quantized", f"{r['format']} {r['scheme']}", r, r["top1_acc"], r["size_bytes"],
                             costs["vgg11"], f"{vgg11} {PTQ_RUNS_AS[r['scheme']]}" if real else "", "ptq.csv",
                             r["simulated"]))
    for r in read_rows(results / "quantization" / "mixed_precision.csv"):
        real = r["config"] in MIXED_REAL and r["simulated"] != "yes"
        if r["simulated"] == "yes" or real:   # the other real rows repeat ptq.csv's fp32 and int8 models
            points.append(_point("mixed precision", r["config"], r, r["top1_acc"], r["size_bytes"], costs["vgg11"],
                                 f"{vgg11} {MIXED_REAL[r['config']]}" if real else "", "mixed_precision.csv",
                                 r["simulated"]))
    for s in seed_summary(read_rows(results / "distillation" / "students.csv")):
        label = f"student {s['method']} ({s['teacher']})" + (f", mean of {s['seeds']} seeds" if s["seeds"] > 1 else "")
        points.append(_point("distilled", label, s, s["top1_mean"], fp32_bytes["vgg11"], costs["vgg11"],
                             f"{vgg11} fp32", "students.csv (seed mean)",
                             top1_std=s["top1_std"] if s["seeds"] > 1 else "", seeds=s["seeds"]))
    for r in read_rows(results / "combined" / "pipelines.csv"):
        if int(r["stage"]) > 0:
            timed = r["simulated"] != "yes" and r.get("runs_as")
            points.append(_point("combined", f"{r['pipeline']}: {r['step']}", r, r["top1_acc"], r["size_bytes"],
                                 (r["params"], r["macs"]), f"{r['architecture']} {r['runs_as']}" if timed else "",
                                 "pipelines.csv", r["simulated"]))
    return points


def points_from_row(row: dict) -> dict:
    """A point read back from pareto_points.csv (strings) with the numeric types ``_point`` and
    ``with_latencies`` give: top-1 and latency floats, bytes an int ('' kept where empty), the
    dataset/profile columns and the fronts dropped (they are recomputed)."""
    number = lambda v, kind=float: "" if v in ("", None) else kind(float(v))  # noqa: E731
    point = {k: v for k, v in row.items() if k not in ("dataset", "profile", "on_size_front", "on_latency_front")}
    for key in ("top1_acc", "val_top1_acc", "latency_ms", "other_session_latency_ms"):
        if key in point:
            point[key] = number(point[key])
    for key in ("size_bytes", "params", "macs"):
        if key in point:
            point[key] = number(point[key], int)
    return point


def with_latencies(points: list[dict], latencies: dict[str, dict]) -> list[dict]:
    """``points`` with latency_ms, kernel and timing_session of their latency class (blank when
    the class is '' or was not timed)."""
    out = []
    for p in points:
        t = latencies.get(p["latency_class"], {})
        out.append({**p, "latency_ms": t.get("latency_ms", ""), "kernel": t.get("kernel", ""),
                    "int8_kernels": t.get("int8_kernels", ""), "timing_session": t.get("timing_session", "")})
    return out


def latency_builders(ctx, base: nn.Module, structured: nn.Module, others: dict[str, nn.Module]
                     ) -> dict[str, Callable[[], Timed]]:
    """Latency class -> a function building its runner on ``latency_batch(ctx)`` [256,3,32,32]:
    ``base`` (the trained VGG-11), ``structured`` (the channel-pruned VGG-11) and ``others``
    (more fp32 architectures, e.g. VGG-16/19) compiled in fp32; ``base`` and ``structured`` as
    int8 (PT2E, calibrated on training images), ``base`` with first/last fp32, as fp16/bf16
    casts and as torchao int4 weight-only."""
    from quantization.formats import cast_model, torchao_int4_weight_only
    from quantization.mixed_precision import edge_layers
    from quantization.pt2e import compile_int8, quantize_int8_pt2e
    from quantization.study import calibration_batches, latency_batch

    example = latency_batch(ctx)
    calibration = calibration_batches(ctx)

    def int8(model, keep_float=()):
        return lambda: Timed(compile_int8(quantize_int8_pt2e(model, calibration[0], calibration, keep_float)),
                             example.cpu())      # the x86 int8 backend is CPU-only

    builders = {f"{architecture_id(m)} fp32": (lambda m=m: Timed(InferenceCompiled(m.eval().to(example.device)), example))
                for m in (*others.values(), base, structured)}
    builders.update({
        f"{architecture_id(base)} int8": int8(base),
        f"{architecture_id(structured)} int8": int8(structured),
        f"{architecture_id(base)} int8 first/last fp32": int8(base, edge_layers(base)),
        f"{architecture_id(base)} fp16": lambda: Timed(cast_model(base, torch.float16), example.half(), "fp16 conv, eager"),
        f"{architecture_id(base)} bf16": lambda: Timed(cast_model(base, torch.bfloat16), example.bfloat16(),
                                                      "bf16 conv, eager"),
        f"{architecture_id(base)} int4 weight-only (torchao)": lambda: Timed(
            torchao_int4_weight_only(base), example.cpu(), "torchao int4 weight-only (dequantized for an fp32 conv)"),
    })
    return builders


def time_latency_classes(builders: dict[str, Callable[[], Timed]], needed: set[str], rounds: int,
                         ) -> dict[str, dict]:
    """Build the runner of each needed latency class and time them all in one session; an int8
    class whose compilation lowered no int8 kernel is dropped (no real latency to show)."""
    missing = needed - set(builders)
    if missing:
        raise ValueError(f"no runner for latency classes {sorted(missing)}")
    timed = time_interleaved({c: builders[c]() for c in sorted(needed)}, new_session_id("pareto"), rounds=rounds)
    return {c: t for c, t in timed.items() if "int8" not in c or int(t["int8_kernels"]) > 0}


def pareto_front(points: list[dict], cost: str, accuracy: str = "val_top1_acc") -> list[bool]:
    """For each point, whether no other point with a ``cost`` value has lower-or-equal cost and
    higher-or-equal ``accuracy`` with one of them strict. The front is chosen on validation
    top-1 (``val_top1_acc``), never on test; points without ``cost`` or ``accuracy`` are never on it."""
    def has(p):
        return p[cost] not in ("", None) and p.get(accuracy) not in ("", None)

    flags = []
    for p in points:
        if not has(p):
            flags.append(False)
            continue
        c, a = float(p[cost]), float(p[accuracy])
        dominated = any(has(q) and float(q[cost]) <= c and float(q[accuracy]) >= a
                        and (float(q[cost]) < c or float(q[accuracy]) > a) for q in points)
        flags.append(not dominated)
    return flags


def latency_session(points: list[dict]) -> str:
    """The timing session the latency panel and front compare: the one of the VGG-11 baseline
    (the run's device); in a GPU run the CPU-only backends' readings form another session."""
    return next((p.get("timing_session", "") for p in points
                 if p["family"] == "baseline" and p["model"] == "VGG-11"), "")


def comparable_latencies(points: list[dict]) -> list[dict]:
    """``points`` with latency_ms kept only where it was timed in ``latency_session``
    (``common.timing.one_session``: another session's reading moves to other_session_latency_ms)."""
    return one_session(points, latency_session(points))


def with_fronts(points: list[dict]) -> list[dict]:
    """``points`` with latencies of one session only (``comparable_latencies``) and
    on_size_front / on_latency_front columns (yes/no), both chosen on validation top-1."""
    points = comparable_latencies(points)
    size, latency = pareto_front(points, "size_bytes"), pareto_front(points, "latency_ms")
    return [{**p, "on_size_front": "yes" if s else "no", "on_latency_front": "yes" if t else "no"}
            for p, s, t in zip(points, size, latency)]


def _label(p: dict) -> str:
    """The name written beside a point: a student's method, else the model, without the
    '(PT2E)' or '(torchao PT2E)' every real int8 model has (the caption says it once)."""
    if p["family"] == "distilled" and p["model"].startswith("student "):
        return p["model"].split()[1]
    return p["model"].replace(" (torchao PT2E)", "").replace(" (PT2E)", "")


# (cost column, axis label, scale) of each panel of a Pareto figure
SIZE_AND_LATENCY = (("size_bytes", "file size (MB, log)", 1e-6),
                    ("latency_ms", f"latency, batch {LATENCY_BATCH}, one timing session (ms, log)", 1.0))
MACS = (("macs", "multiply-accumulates per image (millions, log; unstructured zeros counted, as dense "
                 "kernels compute them)", 1e-6),)


def plot_pareto(points: list[dict], path: Path, title: str, panels=SIZE_AND_LATENCY) -> Path:
    """One panel per cost of ``panels`` (default: top-1 vs file size (MB) and vs batch-256 latency
    (ms, one timing session); ``MACS``: vs multiply-accumulates per image), on log axes labelled
    at 1-2-5 steps; one marker per family, hollow when simulated, error bars for seed means
    (sample std), the Pareto front (chosen on validation top-1, drawn at test top-1) as a dashed
    line. Every point is drawn at its own measured cost: the students, all VGG-11s, share one
    size, MACs and latency and stand in one column, told apart by their top-1 and by their
    labels (each names its method; coincident ones share a label). Labelled, in the family's
    colour (``label_points``): the points of each front, the baselines and the students. One
    legend below the panels and a caption. Points more than PLOTTED_WITHIN points below the
    best are left off (they are in the CSV)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(12.5 if len(panels) > 1 else 8.0, 6.8), squeeze=False)
    axes = list(axes[0])
    fig.subplots_adjust(left=0.055 if len(panels) > 1 else 0.085, right=0.99, top=0.93, wspace=0.14)
    points = comparable_latencies(points)
    best = max(p["top1_acc"] for p in points)
    shown = [p for p in points if p["top1_acc"] >= best - PLOTTED_WITHIN]
    to_label = []
    for ax, (cost, label, scale) in zip(axes, panels):
        usable = [p for p in shown if p[cost] not in ("", None)]
        xs = [float(p[cost]) * scale for p in usable]
        for i, family in enumerate(FAMILIES):
            colour = f"C{i}"
            for simulated in ("no", "yes"):
                sub = [(x, p) for x, p in zip(xs, usable) if p["family"] == family and p["simulated"] == simulated]
                if not sub:
                    continue
                ax.scatter([x for x, _ in sub], [p["top1_acc"] for _, p in sub], marker=MARKERS[family], s=36,
                           edgecolors=colour, facecolors=colour if simulated == "no" else "none", zorder=3,
                           label=family + (" (simulated)" if simulated == "yes" else ""))
                spread = [(x, p) for x, p in sub if p.get("top1_std") not in ("", None)]
                if spread:
                    ax.errorbar([x for x, _ in spread], [p["top1_acc"] for _, p in spread],
                                yerr=[float(p["top1_std"]) for _, p in spread], fmt="none", ecolor=colour,
                                elinewidth=0.9, capsize=3, alpha=0.7, zorder=2)
        on = pareto_front(usable, cost)
        front = sorted((x, p["top1_acc"]) for x, p, f in zip(xs, usable, on) if f)
        if front:
            ax.plot([x for x, _ in front], [y for _, y in front], color="0.3", lw=1, ls="--",
                    label="Pareto front (chosen on validation)", zorder=1)
        ax.set_xscale("log")
        ax.margins(x=0.08, y=0.06)
        ax.set_xlabel(label)
        ax.set_ylabel("test top-1 (%)")
        ax.grid(alpha=0.3)
        named = [(x, p) for x, p, f in zip(xs, usable, on) if f or p["family"] in ("distilled", "baseline")]
        to_label.append((ax, named, [(x, p["top1_acc"]) for x, p in zip(xs, usable)]))
    legend = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    caption = ("Each point: one model of the study, at its own measured cost; filled: runs on a real kernel, hollow: "
               "simulated (no latency). Students: mean over seeds, error bar = std; all are VGG-11s (same size, MACs "
               "and latency as the VGG-11 baseline), so they stand in one column, each labelled with its method. "
               "Labelled: the points of each Pareto front (chosen on validation, drawn at test top-1), the baselines "
               "and the students; every real int8 model is torchao's PT2E. Points more than "
               f"{PLOTTED_WITHIN:g} points below the best are left off (see pareto_points.csv).")
    caption = textwrap.fill(caption, width=int(fig.get_figwidth() * 19))
    fig.text(0.01, 0.01, caption, fontsize=7.5, va="bottom")
    # from the bottom up: the caption, the legend, the x axis' ticks and label (heights in inches)
    height, ncol = fig.get_figheight(), 4
    caption_in = 0.1 + (caption.count("\n") + 1) * 7.5 * 1.25 / 72
    legend_in = -(-len(legend) // ncol) * 8 * 1.75 / 72
    fig.legend(legend.values(), legend.keys(), loc="lower center", bbox_to_anchor=(0.5, caption_in / height),
               ncol=ncol, fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=(caption_in + legend_in + 0.65) / height)
    fig.suptitle(title, fontsize=10)
    for ax, labelled, every in to_label:
        readable_log_axis(ax.xaxis)
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())
        label_points(ax, [x for x, _ in labelled], [p["top1_acc"] for _, p in labelled],
                     [_label(p) for _, p in labelled], fontsize=6.5, avoid=every,
                     color=[f"C{FAMILIES.index(p['family'])}" for _, p in labelled])
    return save_figure(fig, path)
