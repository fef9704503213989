"""Every model the study produced as one point (accuracy, size, latency), and their Pareto fronts.

Points are read from the task CSVs (nothing re-evaluated): baselines, the pruned models, the
quantized formats and mixed-precision configurations, every distilled student, every stage of
the combined pipelines. Baselines and students carry no size or latency of their own in their
CSVs, so ``measure_models`` measures each architecture once (a real state_dict file, batch-256
latency under torch.compile); a student has its architecture's (VGG-11's) numbers. The pruned
models' CSV holds eager latencies only, so they are timed here the same way. Latency is plotted
only where it was measured under torch.compile at batch 256 with a real kernel, so the latency
panel compares like with like.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from common.figures import plt, save_figure  # plt with the Agg backend set
from common.measure import measure_latency, saved_size_bytes
from common.models import build_model
from common.results import read_rows

FAMILIES = ("baseline", "pruned", "quantized", "mixed precision", "distilled", "combined")
MARKERS = dict(zip(FAMILIES, "osD^vP"))
COMPILED_BATCH = 256
PLOTTED_WITHIN = 15.0    # points further below the best top-1 (diverged, 2-bit) stay in the CSV only


def baseline_architectures(classes: int, width: float) -> dict[str, torch.nn.Module]:
    """Freshly built VGG-11/16/19 (their file size and dense latency do not depend on the weights)."""
    return {name: build_model(name, classes, width) for name in ("vgg11", "vgg16", "vgg19")}


def measure_models(models: dict[str, torch.nn.Module], repeats: int = 10) -> dict:
    """name -> {size_bytes of its fp32 state_dict file, latency_ms at batch 256 under
    torch.compile (fp32, channels_last, this machine's threads)}."""
    out = {}
    example = torch.randn(COMPILED_BATCH, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            model = model.cpu().eval().to(memory_format=torch.channels_last)
            size = saved_size_bytes(model.state_dict(), Path(tmp) / f"{name.replace(' ', '_')}.pt")
            torch._dynamo.reset()
            latency = measure_latency(torch.compile(model), example, warmup=3, repeats=repeats)
            out[name] = {"size_bytes": size, "latency_ms": round(latency["latency_ms"], 3)}
    torch._dynamo.reset()
    return out


def _point(family, model, top1, size, latency="", source="", simulated="no") -> dict:
    return {"family": family, "model": model, "top1_acc": round(float(top1), 2), "size_bytes": int(size),
            "latency_ms": latency, "simulated": simulated, "source": source}


def _compiled(row: dict) -> bool:
    return (row.get("latency_ms") not in ("", None) and "compile" in row.get("kernel", row.get("latency_kernel", ""))
            and int(row.get("latency_batch", 0)) == COMPILED_BATCH)


def collect_points(results: Path, measured: dict) -> list[dict]:
    """One dict per model (family, model, top1_acc, size_bytes, latency_ms or '', simulated,
    source CSV) from ``results/<dataset>-<profile>/`` and ``measure_models``' readings (keys
    vgg11/vgg16/vgg19, and 'unstructured'/'structured' for the pruned models when measured)."""
    points = []
    for r in read_rows(results / "baselines" / "baselines.csv"):
        arch = measured[r["model"]]
        points.append(_point("baseline", r["model"].upper().replace("VGG", "VGG-"), r["top1_acc"],
                             arch["size_bytes"], arch["latency_ms"], "baselines.csv + measured here"))
    for r in read_rows(results / "pruning" / "pruned_models.csv"):
        if r["model"] != "original" and int(r["batch_size"]) == COMPILED_BATCH:
            latency = measured.get(r["model"], {}).get("latency_ms", "")
            points.append(_point("pruned", f"{r['model']} 70%", r["top1_acc"], r["size_bytes_compact"],
                                 latency, "pruned_models.csv + latency measured here"))
    for r in read_rows(results / "quantization" / "ptq.csv"):
        if r["format"] != "fp32":
            points.append(_point("quantized", f"{r['format']} {r['scheme']}", r["top1_acc"], r["size_bytes"],
                                 r["latency_ms"] if _compiled(r) else "", "ptq.csv", r["simulated"]))
    for r in read_rows(results / "quantization" / "mixed_precision.csv"):
        if r["simulated"] != "yes":    # its fp32 and PT2E int8 reference rows repeat ptq.csv's models
            continue
        points.append(_point("mixed precision", r["config"], r["top1_acc"], r["size_bytes"], "",
                             "mixed_precision.csv", r["simulated"]))
    vgg11 = measured["vgg11"]
    for r in read_rows(results / "distillation" / "students.csv"):
        points.append(_point("distilled", f"student {r['method']} ({r['teacher']})", r["top1_acc"],
                             vgg11["size_bytes"], vgg11["latency_ms"], "students.csv + VGG-11 measured here"))
    for r in read_rows(results / "combined" / "pipelines.csv"):
        if int(r["stage"]) > 0:
            points.append(_point("combined", f"{r['pipeline']}: {r['step']}", r["top1_acc"], r["size_bytes"],
                                 r["latency_ms"], "pipelines.csv", r["simulated"]))
    return points


def pareto_front(points: list[dict], cost: str) -> list[bool]:
    """For each point, whether no other point with a ``cost`` value has lower-or-equal cost and
    higher-or-equal top-1 with one of them strict (points without ``cost`` are never on it)."""
    def has(p):
        return p[cost] not in ("", None)

    flags = []
    for p in points:
        if not has(p):
            flags.append(False)
            continue
        c, a = float(p[cost]), p["top1_acc"]
        dominated = any(has(q) and float(q[cost]) <= c and q["top1_acc"] >= a
                        and (float(q[cost]) < c or q["top1_acc"] > a) for q in points)
        flags.append(not dominated)
    return flags


def with_fronts(points: list[dict]) -> list[dict]:
    """``points`` with on_size_front / on_latency_front columns (yes/no)."""
    size, latency = pareto_front(points, "size_bytes"), pareto_front(points, "latency_ms")
    return [{**p, "on_size_front": "yes" if s else "no", "on_latency_front": "yes" if t else "no"}
            for p, s, t in zip(points, size, latency)]


def plot_pareto(points: list[dict], path: Path, title: str) -> Path:
    """Two panels: top-1 vs file size (MB, log scale) and vs batch-256 compiled latency (ms);
    one marker per family, hollow when simulated, the Pareto front as a step line. Points more
than PLOTTED_WITHIN points below the best are left off (they are in the CSV)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    best = max(p["top1_acc"] for p in points)
    shown = [p for p in points if p["top1_acc"] >= best - PLOTTED_WITHIN]
    for ax, cost, label, scale in ((axes[0], "size_bytes", "file size (MB)", 1e-6),
                                   (axes[1], "latency_ms", f"latency, batch {COMPILED_BATCH}, torch.compile (ms)", 1.0)):
        usable = [p for p in shown if p[cost] not in ("", None)]
        for i, family in enumerate(FAMILIES):
            group = [p for p in usable if p["family"] == family]
            if not group:
                continue
            colour = f"C{i}"
            for simulated in ("no", "yes"):
                sub = [p for p in group if p["simulated"] == simulated]
                if sub:
                    ax.scatter([float(p[cost]) * scale for p in sub], [p["top1_acc"] for p in sub],
                               marker=MARKERS[family], s=36, edgecolors=colour,
                               facecolors=colour if simulated == "no" else "none",
                               label=family + (" (simulated)" if simulated == "yes" else ""))
        front = sorted((float(p[cost]) * scale, p["top1_acc"]) for p, on in zip(usable, pareto_front(usable, cost)) if on)
        if front:
            ax.step([x for x, _ in front], [y for _, y in front], where="post", color="0.3", lw=1, ls="--",
                    label="Pareto front")
        if cost == "size_bytes":
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test top-1 (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
