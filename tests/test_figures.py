"""The figures read without their CSV: the paper's layer names, log axes with readable ticks up to
the top decade, labelled points that do not overlap, the run (dataset, profile) named once on
every figure saved in a run folder, the baseline in the sensitivity legend, the Pareto plot's
students at their real cost and labelled, every QAT series visible, mixed-precision points named
by their bits, the Grad-CAM grid's class names and colour bar, the scaling law's zoomed band
(``test_replot`` redraws them from CSVs alone)."""


import matplotlib.image
import numpy as np
import pytest
import torch

import combined.pareto as pareto
import pruning.plots as pruning_plots
import quantization.plots as quantization_plots
from common.figures import (label_points, paper_layer_names, plot_cam_grid, plt, readable_log_axis, run_label,
                             save_figure)
from common.models import build_model
from pruning.methods import prunable_layers
from pruning.study import UNSTRUCTURED

PAPER_VGG11 = [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2"]


def renderer_of(fig):
    """A renderer of ``fig`` with its layout drawn (save_figure closed its canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def assert_sane_png(path, min_width=600):
    image = matplotlib.image.imread(path)
    assert image.shape[1] >= min_width and image.shape[0] >= 300
    assert path.with_suffix(".pdf").stat().st_size > 5_000


# ----------------------------------------------------------------------------- helpers


def test_smoke_vgg11_layers_get_the_papers_names():
    model = build_model("vgg11", num_classes=10, width=0.125)
    layers = prunable_layers(model)
    by_module = paper_layer_names(layers)
    assert list(by_module.values()) == PAPER_VGG11
    # the CSVs hold only the module names: the same names, whatever order they come in
    names = [n for n, _ in layers]
    by_name = paper_layer_names(list(reversed(names)))
    assert by_name == by_module
    assert by_name["stages.0.0.0"] == "conv1" and by_name["stages.4.1.0"] == "conv8"
    assert by_name["classifier.1"] == "fc1" and by_name["classifier.3"] == "fc2"


def test_layer_names_of_deeper_and_odd_models():
    names = paper_layer_names(prunable_layers(build_model("vgg16", num_classes=10, width=0.125)))
    assert list(names.values()) == [f"conv{i}" for i in range(1, 14)] + ["fc1", "fc2"]
    assert paper_layer_names(["stages.1.0.0", "head", "stages.0.1.0"]) == {
        "stages.0.1.0": "conv1", "stages.1.0.0": "conv2", "head": "head"}


def test_log_axis_ticks_are_plain_numbers_at_1_2_5():
    fig, ax = plt.subplots()
    ax.plot([0.7, 20], [0, 1])
    ax.set_xscale("log")
    ax.set_xlim(0.7, 20)
    readable_log_axis(ax.xaxis)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "5", "10", "20"]
    ax.set_xlim(3, 8)          # too narrow for 1-2-5: every integer multiple
    readable_log_axis(ax.xaxis)
    assert list(ax.xaxis.get_majorticklocs()) == [3, 4, 5, 6, 7, 8]
    plt.close(fig)


@pytest.mark.parametrize("lo,hi,labels", [
    (5, 60, ["5", "10", "20", "50"]),
    (6, 14, ["6", "7", "8", "9", "10", "14"]),       # the top decade gets a label too
    (9, 11, ["9", "10", "11"]),
    (7, 600, ["10", "20", "50", "100", "200", "500"]),
])
def test_log_axis_labels_the_top_decade(lo, hi, labels):
    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    readable_log_axis(ax.xaxis)
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_xticklabels()]
    assert shown == labels and any(float(t) > 10 for t in shown)
    plt.close(fig)


def test_the_run_label_is_read_from_the_results_folder():
    assert run_label("results/cifar10-cpu/combined/pareto.png") == "CIFAR-10, cpu profile"
    assert run_label("/x/cifar100-full+lr=0.05/pruning/a.png") == "CIFAR-100, full profile, variant lr=0.05"
    for outside in ("/tmp/figures/a.png", "results/cifar10-gpu/q/a.png", "results/mnist-cpu/q/a.png",
                    "results/cifar10-cpu/a.png"):
        assert run_label(outside) is None


def test_save_figure_names_the_run_once_above_every_title(tmp_path):
    def figure(suptitle):
        fig, axes = plt.subplots(1, 2)
        for ax in axes:
            ax.plot([0, 1], [0, 1])
            ax.set_title("a panel")
        fig.suptitle(suptitle)
        return fig

    fig = figure("A study")
    save_figure(fig, tmp_path / "cifar10-smoke" / "pruning" / "a.png")
    label = [t for t in fig.texts if t.get_text() == "CIFAR-10, smoke profile"]
    assert len(label) == 1
    renderer = renderer_of(fig)
    box = label[0].get_window_extent(renderer)
    for other in [fig._suptitle, *(ax.title for ax in fig.axes)]:
        assert not box.overlaps(other.get_window_extent(renderer)) and box.y0 >= other.get_window_extent(renderer).y1
    fig = figure("Curves (cifar10, smoke profile)")          # a title that names the run already
    save_figure(fig, tmp_path / "cifar10-smoke" / "pruning" / "b.png")
    assert not any("CIFAR-10" in t.get_text() for t in fig.texts)
    fig = figure("Elsewhere")
    save_figure(fig, tmp_path / "figures" / "c.png")
    assert [t.get_text() for t in fig.texts] == ["Elsewhere"]


def test_cam_grid_names_classes_explains_columns_and_has_a_colour_bar(tmp_path, monkeypatch):
    import common.figures as figures
    kept = []
    real = figures.save_figure
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: (kept.append(fig), real(fig, path))[1])
    images = torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8)
    cams = {m: np.random.default_rng(0).random((3, 32, 32)) for m in ("teacher", "S_I", "kd")}
    path = plot_cam_grid(images, cams, ["deer\ntest image 7", "cat\ntest image 9", "ship\ntest image 3"],
                         tmp_path / "cifar10-smoke" / "distillation" / "cams.png",
                         titles={"S_I": "S_I (student\ntrained alone)"})
    fig = kept[-1]
    grid = [ax for ax in fig.axes if ax.get_ylabel() or ax.get_title()]
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel() and "Grad-CAM" not in ax.get_ylabel()] == [
        "deer\ntest image 7", "cat\ntest image 9", "ship\ntest image 3"]
    assert [ax.get_title() for ax in grid if ax.get_title()] == ["image", "teacher", "S_I (student\ntrained alone)", "kd"]
    bars = [ax for ax in fig.axes if "Grad-CAM (normalised)" in ax.get_ylabel()]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, 1.0)
    assert_sane_png(path, min_width=500)


def test_labels_of_a_crowd_do_not_overlap():
    fig, ax = plt.subplots(figsize=(5, 4))
    xs, ys = [1, 1.15, 1.3, 1.45, 2, 2, 3], [5, 5.1, 5.05, 4.95, 6, 6, 4]
    ax.scatter(xs, ys)
    ax.set_xlim(0.5, 4)
    ax.set_ylim(3, 7)
    texts = ["alpha model", "beta model", "gamma model", "delta model", "twin one", "twin two", "lone"]
    anns = label_points(ax, xs, ys, texts)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in anns]
    assert len(anns) == 6                                   # the coincident twins share one label
    assert any(a.get_text() == "twin one\ntwin two" for a in anns)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


# ----------------------------------------------------------------------------- figures


def sensitivity_rows(layers, key="sparsity"):
    return [{"layer": n, key: s, "top1_acc": 60.0 - 40 * s * (i + 1) / len(layers)}
            for i, n in enumerate(layers) for s in (0.5, 0.9)]


def test_sensitivity_legend_names_the_layers_and_the_baseline(drawn, tmp_path):
    layers = [n for n, _ in prunable_layers(build_model("vgg11", num_classes=10, width=0.125))]
    path = pruning_plots.plot_sensitivity(sensitivity_rows(layers), "sparsity", 61.25, tmp_path / "s.png",
                                          UNSTRUCTURED.xlabel, UNSTRUCTURED.title)
    legend = [t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()]
    assert legend[:10] == PAPER_VGG11
    assert any("baseline" in t and "61.25" in t for t in legend[10:])
    assert not any(t.startswith(("stages.", "classifier.")) for t in legend)
    assert_sane_png(path)


def front_points():
    session = "pareto-test"
    base = dict(simulated="no", top1_std="", seeds="", timing_session=session, latency_class="c")
    points = [
        {**base, "family": "baseline", "model": "VGG-11", "top1_acc": 84.8, "val_top1_acc": 84.9,
         "size_bytes": 9_500_000, "latency_ms": 44.4},
        {**base, "family": "baseline", "model": "VGG-16", "top1_acc": 86.0, "val_top1_acc": 86.5,
         "size_bytes": 15_000_000, "latency_ms": 95.0},
        {**base, "family": "quantized", "model": "fp16 fp16 cast", "top1_acc": 84.84, "val_top1_acc": 84.94,
         "size_bytes": 4_775_000, "latency_ms": 466.0},
        {**base, "family": "quantized", "model": "int8 W8A8 static (torchao PT2E)", "top1_acc": 84.85,
         "val_top1_acc": 84.98, "size_bytes": 2_405_000, "latency_ms": 11.9},
        {**base, "family": "mixed precision", "model": "uniform int4", "top1_acc": 83.5, "val_top1_acc": 83.7,
         "size_bytes": 1_219_000, "latency_ms": "", "simulated": "yes", "timing_session": ""},
    ]
    for method, acc, std in (("independent", 83.27, 0.12), ("kd", 84.13, 0.23), ("crd", 83.84, 0.31)):
        points.append({**base, "family": "distilled", "model": f"student {method} (vgg16), mean of 3 seeds",
                       "top1_acc": acc, "val_top1_acc": acc, "size_bytes": 9_500_000, "latency_ms": 44.4,
                       "top1_std": std, "seeds": 3})
    return points


def test_pareto_has_log_axes_labelled_fronts_baselines_and_students_at_their_cost(drawn, tmp_path):
    points = front_points()
    path = pareto.plot_pareto(points, tmp_path / "pareto.png", "test")
    size_ax, latency_ax = drawn[-1].axes
    assert latency_ax.get_xscale() == "log" and size_ax.get_xscale() == "log"
    for ax, cost in ((size_ax, "size_bytes"), (latency_ax, "latency_ms")):
        usable = [p for p in points if p[cost] != ""]
        labels = {t for a in ax.texts for t in a.get_text().split("\n")}
        front = {pareto._label(p) for p, on in zip(usable, pareto.pareto_front(usable, cost)) if on}
        assert front and front <= labels and "int8 W8A8 static" in front
        assert {"independent", "kd", "crd", "VGG-11", "VGG-16"} <= labels     # every baseline is named
        # the students (all VGG-11s) stand at their measured cost, none moved sideways
        shared = 9.5 if cost == "size_bytes" else 44.4
        students = [a.xy[0] for a in ax.texts if set(a.get_text().split("\n")) & {"independent", "kd", "crd"}]
        assert students and all(x == pytest.approx(shared) for x in students)
        offsets = [o for c in ax.collections for o in c.get_offsets()]
        assert all(x == pytest.approx(shared) for x, y in offsets if y in (83.27, 84.13, 83.84))
        renderer = renderer_of(drawn[-1])
        boxes = [a.get_window_extent(renderer) for a in ax.texts if a.get_text().strip() and a.get_visible()
                 and a.get_color() != (0, 0, 0, 0)]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert_sane_png(path, min_width=1200)


def test_pareto_macs_view_keeps_caption_and_legend_apart(drawn, tmp_path):
    points = [{**p, "macs": 150_000_000 if p["model"] != "VGG-16" else 310_000_000} for p in front_points()]
    pareto.plot_pareto(points, tmp_path / "pareto_macs.png", "test", panels=pareto.MACS)
    fig = drawn[-1]
    renderer = renderer_of(fig)
    legend, caption = fig.legends[0].get_window_extent(renderer), fig.texts[0].get_window_extent(renderer)
    assert caption.y1 <= legend.y0 and legend.y1 <= fig.axes[0].get_window_extent(renderer).y0


def qat_rows():
    rows = []
    for fmt, accs, simulated in (("fp32", (84.94, 83.94, 84.74, 84.86), "no"), ("fp16", (84.94, 84.06, 84.86, 84.76), "yes"),
                                 ("bf16", (84.98, 83.94, 84.78, 84.84), "yes"), ("int4", (83.02, 82.9, 84.22, 84.48), "yes"),
                                 ("int8", (84.98, 83.86, 84.78, 84.62), "no")):
        rows += [{"format": fmt, "epoch": e, "val_top1_acc": a, "top1_acc": "", "simulated": simulated}
                 for e, a in enumerate(accs)]
    return rows


def test_qat_recovery_shows_every_series(drawn, tmp_path):
    path = quantization_plots.plot_qat_recovery(qat_rows(), 84.94, 0.5, tmp_path / "qat_recovery.png")
    ax = drawn[-1].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:5] == ["fp32 (fine-tune control)", "fp16", "bf16", "int4", "int8"]
    # equal readings of two formats at one epoch (fp32, fp16 at epoch 0) are drawn apart, never on top of each other
    marks = [(round(x, 3), y) for line in ax.get_lines() for x, y in zip(*line.get_data()) if line.get_marker() != "None"]
    assert len(set(marks)) == len(marks) == len(qat_rows())
    assert all(abs(x - round(x)) <= 2 * quantization_plots.QAT_OFFSET + 1e-9 for x, _ in marks)
    assert any("whole epochs" in t.get_text() for t in drawn[-1].texts)
    assert_sane_png(path)


def mixed_rows():
    def row(config, kind, bits, top1, total=None, size=None):
        return {"config": config, "kind": kind, "layer_bits": bits, "top1_acc": top1,
                "total_bits": total if total is not None else "", "size_bytes": size if size is not None else ""}
    return [row("uniform int8", "uniform", "-".join(["8"] * 10), 84.88, total=19_102_272),
            row("uniform int4", "uniform", "-".join(["4"] * 10), 83.5, total=9_610_432),
            row("uniform int2", "uniform", "-".join(["2"] * 10), 10.0, total=4_864_512),
            row("first/last fp16, rest int4", "first/last fp16", "16-" + "-".join(["4"] * 8) + "-16", 84.6,
                total=9_650_848),
            row("adaptive Hessian @ budget of rest-int4", "adaptive (Hessian)", "16-16-8-8-6-4-3-2-5-16", 82.8,
                total=9_641_632),
            row("fp32", "real fp32", "-".join(["32"] * 10), 84.8, size=9_532_939),
            row("int8 W8A8 (PT2E)", "real int8", "-".join(["8"] * 10), 84.85, size=2_405_081),
            row("int8 W8A8 (PT2E), first/last fp32", "real int8, first/last fp32",
                "32-" + "-".join(["8"] * 8) + "-32", 84.82, size=2_409_003)]


def test_mixed_precision_points_carry_their_bits(drawn, tmp_path):
    assert quantization_plots.bits_label("4-4-4") == "w4"
    assert quantization_plots.bits_label("16-4-4-16") == "16/4/16"
    assert quantization_plots.bits_label("16-8-4-16") == "16/8/4/16"
    path = quantization_plots.plot_mixed_precision(mixed_rows(), tmp_path / "mixed_precision.png")
    labels = {t for ax in drawn[-1].axes for a in ax.texts for t in a.get_text().split("\n")}
    assert {"w8", "w4", "w2", "16/4/16", "16/16/8/8/6/4/3/2/5/16", "w8, real int8", "32/8/32, real int8"} <= labels
    real = [c for ax in drawn[-1].axes for c in ax.collections if c.get_offsets().shape[0]]
    assert real and all(len(c.get_facecolors()) == 0 or c.get_facecolors()[0][3] == 0 for c in real)   # hollow
    assert_sane_png(path)


def scaling_rows():
    rows = []
    for model, params, base in (("vgg11", 1000, 60.0), ("vgg16", 2000, 62.0)):
        rows.append({"model": model, "params": params, "data_type": "float16", "bits": 16, "block": "-",
                     "method": "PTQ", "total_bits": 16 * params, "top1_acc": base})
        for dtype in ("int", "nf"):
            for block in ("per-channel", "g32"):
                for k, drop in ((2, 50.0), (4, 1.5)):
                    rows.append({"model": model, "params": params, "data_type": dtype, "bits": k, "block": block,
                                 "method": "PTQ", "total_bits": k * params + 50, "top1_acc": base - drop})
                rows.append({"model": model, "params": params, "data_type": dtype, "bits": 2, "block": block,
                             "method": "QAT (1 ep)", "total_bits": 2 * params + 50, "top1_acc": base - 5})
    return rows


def test_scaling_law_zooms_on_the_band_with_a_legend_and_caption(drawn, tmp_path):
    path = quantization_plots.plot_scaling_law(scaling_rows(), tmp_path / "scaling_law.png")
    fig = drawn[-1]
    tops, bottoms = fig.axes[0::2], fig.axes[1::2]
    assert len(tops) == 4 and all(ax.get_xscale() == "log" for ax in fig.axes)
    band = quantization_plots.accuracy_band([10.0, 62.0])
    assert all(ax.get_ylim() == pytest.approx(band) for ax in tops)
    assert all(ax.get_ylim()[0] <= 10.0 for ax in bottoms)      # the 2-bit points stay in view below
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["2-bit", "4-bit", "16-bit (float16)"]
    assert any(t.get_text().startswith("Each point: one trained model") for t in fig.texts)
    assert_sane_png(path)
    path = quantization_plots.plot_bits_vs_k(scaling_rows(), "vgg11", tmp_path / "scaling_law_vgg11.png")
    assert any("float16" in t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts())
    assert_sane_png(path)
