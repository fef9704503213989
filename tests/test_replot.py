"""``study.replot`` redraws every figure it can from the CSVs alone (the rows of
``test_figures``' figures), reads older CSVs, and leaves every CSV and JSON as it was."""

import hashlib
import json

import pytest

from common.figures import paper_layer_names
from common.models import build_model
from pruning.methods import prunable_layers
from pruning.study import STRUCTURED, UNSTRUCTURED
from study import replot
from test_figures import (PAPER_VGG11, assert_sane_png, front_points, mixed_rows, qat_rows, scaling_rows,
                          sensitivity_rows)


def digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.suffix in (".csv", ".json")}


def write_run(run, write_csv, macs=True, layer_names=True):
    """A run folder with every CSV (and sidecar value) that ``study.replot`` draws from."""
    write_csv(run / "quantization" / "scaling_law.csv", scaling_rows())
    write_csv(run / "combined" / "pareto_points.csv",
              [{**p, "macs": 150_000_000} if macs else p for p in front_points()])
    model = build_model("vgg11", num_classes=10, width=0.125)
    layers = [n for n, _ in prunable_layers(model)]
    for kind, layer_set in ((UNSTRUCTURED, layers), (STRUCTURED, layers[:8])):
        rows = sensitivity_rows(layer_set, kind.x_key)
        if layer_names:
            names = paper_layer_names(prunable_layers(model))
            rows = [{"layer": r["layer"], "layer_name": names[r["layer"]], **r} for r in rows]
        csv_path = write_csv(run / "pruning" / f"{kind.name}_sensitivity.csv", rows)
        csv_path.with_suffix(".json").write_text(json.dumps({"base_val_top1": 60.5}))
    qat = write_csv(run / "quantization" / "qat.csv", qat_rows())
    qat.with_suffix(".json").write_text(json.dumps({"within_points": 0.5}))
    write_csv(run / "quantization" / "qat_summary.csv", [{"format": "fp32", "fp32_val_top1": 84.94}])
    write_csv(run / "quantization" / "mixed_precision.csv", mixed_rows())
    write_csv(run / "quantization" / "outliers_per_layer.csv",
              [{"layer": n, "scope": scope, "quantizer": q, "drop_points": 0.1 * i}
               for i, n in enumerate(layers) for scope in ("weights", "activations") for q in ("no clip", "clip")])
    sweep = write_csv(run / "pruning" / "accuracy_vs_sparsity.csv",
                      [{"overall_sparsity": s, "top1_before_finetune": 60 - 50 * s ** 4, "top1_acc": 60 - s}
                       for s in (0.5, 0.7, 0.9)])
    sweep.with_suffix(".json").write_text(json.dumps({"original_top1": 60.2}))


def test_replot_redraws_every_figure_from_the_csvs_alone(tmp_path, write_csv, drawn):
    run = tmp_path / "cifar10-smoke"
    write_run(run, write_csv)
    before = digest(run)
    replot.main(["--profile", "smoke", "--dataset", "cifar10", "--results-dir", str(tmp_path)])
    assert digest(run) == before
    for figure in replot.FIGURES:
        assert_sane_png(run / figure.png)
    written, missing = replot.replot("cifar10", "smoke", tmp_path)
    assert len(written) == len(replot.FIGURES) and not missing
    # every figure names its run, once (common.figures.save_figure)
    assert all(sum(t.get_text() == "CIFAR-10, smoke profile" for t in fig.texts) == 1 for fig in drawn)
    qat = [fig for fig in drawn if any(ax.get_title().startswith("Recovery under QAT") for ax in fig.axes)]
    assert qat and len(qat[-1].axes[0].get_legend().get_texts()) >= 5


def test_replot_reads_older_csvs_and_skips_what_they_cannot_draw(tmp_path, write_csv, drawn):
    """Sensitivity CSVs written before ``layer_name`` existed still get the paper's names; a
    pareto_points.csv without MACs draws pareto.png and skips pareto_macs.png, by name."""
    write_run(tmp_path / "cifar10-smoke", write_csv, macs=False, layer_names=False)
    written, missing = replot.replot("cifar10", "smoke", tmp_path)
    assert missing == ["combined/pareto_macs.png: combined/pareto_points.csv lacks its columns"]
    assert len(written) == len(replot.FIGURES) - 1
    sensitivity = [fig for fig in drawn if "sensitivity" in fig.axes[0].get_title()]
    legend = [t.get_text() for t in sensitivity[0].axes[0].get_legend().get_texts()]
    assert legend[:10] == PAPER_VGG11


def test_replot_skips_a_missing_csv_and_fails_when_nothing_is_there(tmp_path, write_csv):
    write_csv(tmp_path / "cifar10-smoke" / "quantization" / "scaling_law.csv", scaling_rows())
    written, missing = replot.replot("cifar10", "smoke", tmp_path)
    assert [p.name for p in written] == ["scaling_law.png", "scaling_law_vgg11.png"]
    assert "combined/pareto_points.csv" in missing and "quantization/qat.csv" in missing
    with pytest.raises(SystemExit):
        replot.main(["--profile", "cpu", "--dataset", "cifar10", "--results-dir", str(tmp_path)])
