"""Completion records: a stage is up to date when it ran with the same inputs, never by timestamps.

After a stage's script exits 0 and every output it declares exists, the runner writes
``results/<dataset>-<profile>/stages/<task>/<script>.json`` last. It holds what the stage ran
with -- Snakemake's rerun triggers (params, input, code), by content:

- ``command``: its script and its own flags (not the machine's: data folder, device, workers);
- ``work``: its trainings and evaluations as counted from the profile (``study.stage_work``), and
  ``recipe``, the profile settings every training shares (width, batch size, learning rate, weight
  decay), so a changed profile setting reruns exactly the stages whose work it changes;
- ``data``: the sha256 of the dataset's files and the split sizes (``common.data.split_key``);
- ``code``: the normalised-source sha256 of its script and of every project module it imports
  (``common.code``: a comment or docstring edit changes nothing);
- ``reads``: the sha256 of every results file it read;
- ``checkpoints``: the sha256 of every checkpoint it loaded or saved (``common.checkpoints`` logs
  them while the stage runs);
- ``outputs``: the sha256 of every file it wrote;
- and, to read, not to decide: the git commit and dirty flag, and the kind of machine.

A stage reruns when an output or its record is missing; when a data output (not a figure, which
``study.replot`` may redraw) is not what it wrote (edited, damaged, copied in); when its command, work, recipe, data, code or a read file
differ; or when a checkpoint it used is present with other content (retrained). A missing
checkpoint decides nothing: checkpoints are not committed, and a fresh clone has none.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common.code import code_hashes
from common.data import split_key
from common.profiles import Profile
from common.results import file_sha256, git_state
from study.stages import Stage
from study.work import PlanSettings

RECIPE_FIELDS = ("width", "batch_size", "lr", "weight_decay")     # the profile settings every training shares
DECIDING = ("command", "work", "recipe", "data", "code", "reads")   # equal, or the stage reruns
FIGURES = (".png", ".pdf")    # drawn from the CSVs (``study.replot`` redraws them): not checked as data


@dataclass(frozen=True)
class RunFolders:
    """Where a run's results, checkpoints, data and logs are."""

    run_dir: Path           # results/<dataset>-<profile>/
    checkpoint_dir: Path    # checkpoints/<dataset>-<profile>/
    dataset: str
    data_dir: Path
    log_dir: Path | None = None     # the stages' logs (the runner's --log-dir)

    def data_key(self, profile: Profile) -> dict:
        """``common.data.split_key`` of this run's data under ``profile`` (files hashed, not loaded)."""
        return split_key(self.dataset, self.data_dir, profile.val_images, profile.train_images, profile.test_images)


def record_path(run_dir: Path, stage: Stage) -> Path:
    """``<run_dir>/stages/<task>/<script>.json`` (e.g. ``stages/pruning/01_unstructured_sensitivity.json``,
    ``stages/baselines/baselines.json``): one folder deeper than the results' sidecars, which
    readers of ``<task>/*.json`` take for provenance."""
    return run_dir / "stages" / stage.task / f"{stage.name.split('/')[-1]}.json"


def checkpoint_log_path(run_dir: Path, stage: Stage) -> Path:
    """Where the stage's processes list the checkpoints they load or save while it runs."""
    return record_path(run_dir, stage).with_suffix(".checkpoints.log")


def _hashes(folder: Path, names) -> dict[str, str]:
    return {name: file_sha256(folder / name) for name in names if (folder / name).exists()}


def expected(stage: Stage, profile: Profile, settings: PlanSettings, where: RunFolders) -> dict:
    """The deciding part of ``stage``'s record for a run now (``DECIDING``), with the hashes of
    the results files it reads as they are on disk now (a missing one is absent)."""
    work = stage.work(stage, settings)
    return {"command": [stage.script],
            "work": {"trainings": [{k: v for k, v in asdict(t).items() if k != "stage"} for t in work.jobs],
                     "evaluations": [{k: v for k, v in asdict(e).items() if k != "stage"} for e in work.evaluations]},
            "recipe": {k: getattr(profile, k) for k in RECIPE_FIELDS},
            "data": where.data_key(profile),
            "code": code_hashes(stage.script),
            "reads": _hashes(where.run_dir, stage.reads)}


def _differing(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def why_rerun(stage: Stage, profile: Profile, settings: PlanSettings, where: RunFolders) -> str | None:
    """Why ``stage`` must run ('<output> is missing', 'its code changed: quantization/pt2e.py',
    ...), or None when it is up to date. Errors are raised, never taken as up to date."""
    missing = stage.missing_outputs(where.run_dir)
    if missing:
        return f"{missing[0]} is missing"
    path = record_path(where.run_dir, stage)
    if not path.exists():
        return f"no completion record ({path.relative_to(where.run_dir)})"
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"its completion record {path.relative_to(where.run_dir)} is damaged"
    if not isinstance(recorded, dict) or "code" not in recorded:
        return "its record holds no code or checkpoint hashes (written before they were recorded)"
    written = {name: sha for name, sha in recorded.get("outputs", {}).items() if not name.endswith(FIGURES)}
    altered = _differing(written, _hashes(where.run_dir, written))
    if altered:
        return f"{altered[0]} is not the file it wrote (edited, damaged or copied in)"
    now = expected(stage, profile, settings, where)
    changed = [key for key in DECIDING if recorded.get(key) != now[key]]
    if "code" in changed:
        return f"its code changed: {', '.join(_differing(recorded['code'], now['code']))}"
    if "reads" in changed:
        return f"{', '.join(_differing(now['reads'], recorded.get('reads', {})))} changed since it ran"
    if changed:
        return f"its {' and '.join(changed)} changed since it ran"
    used = recorded.get("checkpoints", {})
    retrained = sorted(name for name, sha in used.items()
                       if (where.checkpoint_dir / name).exists() and file_sha256(where.checkpoint_dir / name) != sha)
    if retrained:
        return f"checkpoint {retrained[0]} was retrained since it ran"
    return None


def used_checkpoints(log: Path, checkpoint_dir: Path) -> dict[str, str]:
    """The checkpoints listed in a stage's log (``common.checkpoints.log_use``), by path relative
    to ``checkpoint_dir``, each with the last sha256 logged (a checkpoint retrained during the
    stage counts as it ended)."""
    used: dict[str, str] = {}
    folder = checkpoint_dir.resolve()
    if log.exists():
        for line in log.read_text().splitlines():
            name, _, sha = line.rpartition("\t")
            path = Path(name)
            used[path.relative_to(folder).as_posix() if path.is_relative_to(folder) else name] = sha
    return dict(sorted(used.items()))


def write_record(stage: Stage, profile: Profile, settings: PlanSettings, where: RunFolders, seconds: float,
                 machine: dict) -> Path:
    """Write ``stage``'s completion record (atomically, after its outputs): ``expected`` plus the
    hashes of its outputs and of the checkpoints its log lists, the code's git state, the kind of
    ``machine`` it ran on and the time; the log is removed."""
    log = checkpoint_log_path(where.run_dir, stage)
    record = {"stage": stage.name, "profile": profile.name, **expected(stage, profile, settings, where),
              "outputs": _hashes(where.run_dir, stage.outputs),
              "checkpoints": used_checkpoints(log, where.checkpoint_dir),
              **git_state(), "machine": machine, "wall_seconds": round(seconds, 1),
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = record_path(where.run_dir, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(partial, path)
    log.unlink(missing_ok=True)
    return path


def forget(stage: Stage, run_dir: Path) -> Path:
    """Remove ``stage``'s record before it runs (a run that stops half-way leaves it to rerun) and
    start its checkpoint log afresh; returns the log's path, for the stage's environment."""
    record_path(run_dir, stage).unlink(missing_ok=True)
    log = checkpoint_log_path(run_dir, stage)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    return log
