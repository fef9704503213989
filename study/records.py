"""Completion records: a stage is up to date when it was run with the same work, never by timestamps.

After a stage's script exits 0 and every output it declares exists, the runner writes
``results/<dataset>-<profile>/stages/<task>/<script>.json`` last. It holds what the stage was run with:

- ``command``: its script and its own flags (not the machine's: data folder, device, workers);
- ``work``: its trainings and evaluations as counted from the profile (``study.stage_work``), and
  ``recipe``, the profile settings every training shares (width, batch size, learning rate, weight
  decay), so a changed profile setting reruns exactly the stages whose work it changes;
- ``reads``: the sha256 of every results file it read;
- ``checkpoints``: the sha256 of each checkpoint it read, where present (which teacher or
  baseline the numbers came from; a checkpoint is a cache, so it decides nothing);
- ``outputs``: the sha256 of every file it wrote, and the git commit and dirty flag of the code.

A stage reruns when an output or its record is missing, or the command, work, recipe or any read
file's content differ. Code changes are not tracked: rerun with ``FORCE=1`` after editing a stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from common.profiles import Profile
from common.results import git_state
from study.stages import Stage
from study.work import PlanSettings

RECIPE_FIELDS = ("width", "batch_size", "lr", "weight_decay")
DECIDING = ("command", "work", "recipe", "reads")     # what must be equal for a stage to be up to date


def file_sha256(path: Path) -> str:
    """sha256 (hex) of the bytes of ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_path(run_dir: Path, stage: Stage) -> Path:
    """``<run_dir>/stages/<task>/<script>.json`` (e.g. ``stages/pruning/01_unstructured_sensitivity.json``,
    ``stages/baselines/baselines.json``): one folder deeper than the results' sidecars, which
    readers of ``<task>/*.json`` take for provenance."""
    return run_dir / "stages" / stage.task / f"{stage.name.split('/')[-1]}.json"


def _hashes(folder: Path, names) -> dict[str, str]:
    return {name: file_sha256(folder / name) for name in names if (folder / name).exists()}


def expected(stage: Stage, profile: Profile, settings: PlanSettings, run_dir: Path) -> dict:
    """The deciding part of ``stage``'s record for a run now: command, work, recipe and the
    hashes of the results files it reads (as they are on disk now; a missing one is absent)."""
    work = stage.work(stage, settings)
    return {"command": [stage.script, *stage.own_args(profile)],
            "work": {"trainings": [{k: v for k, v in asdict(t).items() if k != "stage"} for t in work.jobs],
                     "evaluations": [{k: v for k, v in asdict(e).items() if k != "stage"} for e in work.evaluations]},
            "recipe": {k: getattr(profile, k) for k in RECIPE_FIELDS},
            "reads": _hashes(run_dir, stage.reads)}


def why_rerun(stage: Stage, profile: Profile, settings: PlanSettings, run_dir: Path) -> str | None:
    """Why ``stage`` must run ('<output> is missing', 'no completion record', 'its work
    changed: ...'), or None when it is up to date. Errors are raised, never taken as up to date."""
    missing = stage.missing_outputs(run_dir)
    if missing:
        return f"{missing[0]} is missing"
    path = record_path(run_dir, stage)
    if not path.exists():
        return f"no completion record ({path.relative_to(run_dir)})"
    recorded = json.loads(path.read_text())
    now = expected(stage, profile, settings, run_dir)
    changed = [key for key in DECIDING if recorded.get(key) != now[key]]
    if not changed:
        return None
    if "reads" in changed:
        differ = sorted(k for k in set(now["reads"]) | set(recorded.get("reads", {}))
                        if now["reads"].get(k) != recorded.get("reads", {}).get(k))
        return f"{', '.join(differ)} changed since it ran"
    return f"its {' and '.join(changed)} changed since it ran"


def write_record(stage: Stage, profile: Profile, settings: PlanSettings, run_dir: Path,
                 checkpoint_dir: Path | None, seconds: float, note: str = "") -> Path:
    """Write ``stage``'s completion record (atomically, after its outputs): ``expected`` plus the
    hashes of its outputs and of the checkpoints it read (none when ``checkpoint_dir`` is None: the
    models it ran with are not known), the code's git state and the time."""
    record = {"stage": stage.name, "profile": profile.name, **expected(stage, profile, settings, run_dir),
              "outputs": _hashes(run_dir, stage.outputs),
              "checkpoints": _hashes(checkpoint_dir, [f"{c}.pt" for c in stage.checkpoints]) if checkpoint_dir else {},
              **git_state(), "wall_seconds": round(seconds, 1),
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if note:
        record["note"] = note
    path = record_path(run_dir, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(partial, path)
    return path


def forget(stage: Stage, run_dir: Path) -> None:
    """Remove ``stage``'s record before it runs: a run that stops half-way leaves it to rerun."""
    record_path(run_dir, stage).unlink(missing_ok=True)
