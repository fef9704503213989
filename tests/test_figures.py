"""The figures read without their CSV: the paper's layer names, log axes with readable ticks,
labelled points that do not overlap, the baseline in the sensitivity legend, the Pareto plot's
log latency axis and told-apart students, the scaling law's zoomed band; and ``study.replot``
redraws them from CSVs alone, leaving every CSV and JSON as it was."""

import hashlib
import json

import matplotlib.image
import pytest

import combined.pareto as pareto
import pruning.plots as pruning_plots
import quantization.plots as quantization_plots
from common.figures import label_points, paper_layer_names, plt, readable_log_axis, spread_sideways
from common.models import build_model
from pruning.methods import prunable_layers
from pruning.study import STRUCTURED, UNSTRUCTURED
from study import replot

PAPER_VGG11 = [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2"]


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting modules save, kept for inspection (they are still written)."""
    figures = []
    for module in (pareto, pruning_plots, quantization_plots):
        real = module.save_figure

        def keep(fig, path, real=real):
            figures.append(fig)
            return real(fig, path)
        monkeypatch.setattr(module, "save_figure", keep)
    return figures


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


def test_spread_sideways_keeps_the_centre_and_order():
    xs = spread_sideways([10.0] * 5, width=0.1)
    assert xs == sorted(xs) and len(set(xs)) == 5
    assert xs[2] == pytest.approx(10.0) and xs[0] * xs[-1] == pytest.approx(100.0)
    assert spread_sideways([3.0]) == [3.0]


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


def test_pareto_has_log_axes_labelled_fronts_and_students_apart(drawn, tmp_path):
    points = front_points()
    path = pareto.plot_pareto(points, tmp_path / "pareto.png", "test")
    size_ax, latency_ax = drawn[-1].axes
    assert latency_ax.get_xscale() == "log" and size_ax.get_xscale() == "log"
    for ax, cost in ((size_ax, "size_bytes"), (latency_ax, "latency_ms")):
        usable = [p for p in points if p[cost] != ""]
        labels = {t for a in ax.texts for t in a.get_text().split("\n")}
        front = {p["model"] for p, on in zip(usable, pareto.pareto_front(usable, cost)) if on}
        assert front and front <= labels
        assert {"independent", "kd", "crd"} <= labels
        students = [a.xy[0] for a in ax.texts if a.get_text() in ("independent", "kd", "crd")]
        assert len(set(students)) == 3        # spread sideways, each error bar on its own
        shared = 9.5 if cost == "size_bytes" else 44.4
        assert min(students) < shared < max(students)
    assert_sane_png(path, min_width=1200)


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


# ----------------------------------------------------------------------------- replot


def digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.suffix in (".csv", ".json")}


def test_replot_redraws_every_figure_from_the_csvs_alone(tmp_path, write_csv):
    run = tmp_path / "cifar10-smoke"
    write_csv(run / "quantization" / "scaling_law.csv", scaling_rows())
    write_csv(run / "combined" / "pareto_points.csv", front_points())
    layers = [n for n, _ in prunable_layers(build_model("vgg11", num_classes=10, width=0.125))]
    for kind, layer_set in ((UNSTRUCTURED, layers), (STRUCTURED, layers[:8])):
        csv_path = write_csv(run / "pruning" / f"{kind.name}_sensitivity.csv", sensitivity_rows(layer_set, kind.x_key))
        csv_path.with_suffix(".json").write_text(json.dumps({"base_val_top1": 60.5}))
    before = digest(run)
    replot.main(["--profile", "smoke", "--dataset", "cifar10", "--results-dir", str(tmp_path)])
    assert digest(run) == before
    for figure in replot.FIGURES:
        assert_sane_png(run / figure.png)
    written, missing = replot.replot("cifar10", "smoke", tmp_path)
    assert len(written) == len(replot.FIGURES) and not missing


def test_replot_skips_a_missing_csv_and_fails_when_nothing_is_there(tmp_path, write_csv):
    write_csv(tmp_path / "cifar10-smoke" / "quantization" / "scaling_law.csv", scaling_rows())
    written, missing = replot.replot("cifar10", "smoke", tmp_path)
    assert [p.name for p in written] == ["scaling_law.png", "scaling_law_vgg11.png"]
    assert "combined/pareto_points.csv" in missing
    with pytest.raises(SystemExit):
        replot.main(["--profile", "cpu", "--dataset", "cifar10", "--results-dir", str(tmp_path)])
