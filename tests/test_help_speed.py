"""``--help`` of every script answers without importing torch (imports deferred to ``main``).

Importing torch alone takes seconds; a script's parser needs none of it (``common.flags`` and the
torch-free name lists of each task). Each script's ``--help`` runs as a user runs it, under
``python -X importtime``, and the modules it imported are read from that report: none may be
torch. No wall time is asserted; the absence of torch is what keeps ``--help`` fast. The scripts
are read from the stage declaration's text (``study/stages.py``, not imported, since it imports
torch), together with every numbered script on disk.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("pruning", "quantization", "distillation", "combined")


def _text(node: ast.expr, names: dict[str, str]) -> str:
    """The string an expression of the declaration spells: a literal, one of its short names
    (``P = "pruning/"``), or a sum of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left, names) + _text(node.right, names)
    raise ValueError(f"study/stages.py: cannot read {ast.unparse(node)!r} as a stage name")


def declared_scripts(path: Path = ROOT / "study" / "stages.py") -> list[str]:
    """The ``script`` of every stage of ``STAGES``, read from the declaration's source:
    ``Stage(name, script, ...)``, or ``_stage(name, ...)``, whose script is ``<name>.py``."""
    tree = ast.parse(path.read_text())
    names: dict[str, str] = {}
    stages = None
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            names.update({t.id: v.value for t, v in zip(target.elts, value.elts)
                          if isinstance(t, ast.Name) and isinstance(v, ast.Constant) and isinstance(v.value, str)})
        elif isinstance(target, ast.Name) and target.id == "STAGES":
            stages = value
    assert isinstance(stages, ast.List), "study/stages.py: no STAGES = [...] list"
    scripts = []
    for call in stages.elts:
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name), ast.unparse(call)
        if call.func.id == "Stage":
            scripts.append(_text(call.args[1], names))
        else:
            assert call.func.id == "_stage", ast.unparse(call)
            scripts.append(_text(call.args[0], names) + ".py")
    return scripts


def help_commands() -> dict[str, list[str]]:
    """Label -> the arguments after ``python`` that print a script's help: every declared
    stage (a script inside the library as ``-m``, as the runner runs it), every numbered script
    of the task folders, the runner and the plan."""
    scripts = dict.fromkeys([*declared_scripts(),
                             *(str(p.relative_to(ROOT)) for t in TASKS for p in sorted((ROOT / t).glob("0*.py")))])
    commands = {s: (["-m", s.removesuffix(".py").replace("/", ".")] if s.startswith("common/") else [s])
                for s in scripts}
    return {**commands, "study.runner": ["-m", "study.runner"], "study.plan": ["-m", "study.plan"]}


COMMANDS = help_commands()


def imported_modules(importtime_report: str) -> list[str]:
    """The modules named in a ``python -X importtime`` report (its ``import time:`` lines)."""
    return [line.rsplit("|", 1)[1].strip() for line in importtime_report.splitlines()
            if line.startswith("import time:") and line.count("|") == 2 and "imported package" not in line]


@pytest.mark.parametrize("label", sorted(COMMANDS))
def test_help_imports_no_torch(label):
    proc = subprocess.run([sys.executable, "-X", "importtime", *COMMANDS[label], "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:"), proc.stdout[:500]
    modules = imported_modules(proc.stderr)
    assert "argparse" in modules    # the report was read
    assert [m for m in modules if m.split(".")[0] == "torch"] == [], f"{label} --help imported torch"


def test_the_scripts_read_from_the_declarations_text_are_its_stages():
    from study.stages import STAGES    # imports torch: here, to check the reading above once

    assert declared_scripts() == [stage.script for stage in STAGES]
    assert {s.script for s in STAGES} <= set(COMMANDS)


def test_the_report_reader_sees_torch_when_it_is_imported():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import torch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch" in imported_modules(proc.stderr)
