"""The README's numbers come from files: generated blocks are replaced from CSVs, never typed."""

import pytest

from common import readme
from common.results import write_results


def test_render_replaces_only_the_named_block():
    text = "a\n<!-- BEGIN generated:x -->\nold\n<!-- END generated:x -->\nb\n"
    out = readme.render(text, {"x": "new\n"})
    assert out == "a\n<!-- BEGIN generated:x -->\nnew\n<!-- END generated:x -->\nb\n"
    assert readme.render(out, {"x": "new\n"}) == out  # idempotent
    with pytest.raises(ValueError, match="'y'"):
        readme.render(text, {"y": "z"})


def test_results_block_reads_the_baselines_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    assert "No results" in readme.results_block("cifar10-cpu")
    write_results([{"model": "vgg11", "width": 0.5, "epochs": 3, "top1_acc": 12.34}],
                  tmp_path / "cifar10-cpu" / "baselines" / "baselines.csv",
                  {"dataset": "cifar10", "profile": "cpu"})
    block = readme.results_block("cifar10-cpu")
    assert "| vgg11 | 0.5 | 3 | 12.34 |" in block


def test_profiles_block_lists_every_profile():
    block = readme.profiles_block()
    assert all(f"| {name} |" in block for name in ("smoke", "cpu", "full"))
