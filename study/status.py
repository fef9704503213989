"""What the runner prints about its stages, and the parse of it: one status line per stage, the
time left, and whether other processes are slowing the machine down.

A stage that runs prints one line, begun when it starts and ended when it finishes::

    [run_all] 5/21 pruning/04_structured_final (pruning/structured_final.csv is missing): ok in 57 s, about 6 min left
    [run_all] 6/21 pruning/05_weight_histograms (its code changed: pruning/plots.py): failed in 12 s

(with ``--verbose`` the stage's output comes between a ``... running`` line and the same line);
stages found up to date in a row share one line::

    [run_all] 1-4/21 up to date, skipped: baselines pruning/01_unstructured_sensitivity ... (FORCE=1 reruns them)

``parse_status_lines`` reads them back (the device check does). The time left is the cost plan's
projection of the stages still to run (``study.plan.projected_stage_seconds``) plus, for each of
them, the mean time the finished stages of this run took beyond their projection (process
start-up, data loading, figures: what the plan does not count); without a plan, that mean
alone. No module here imports torch.
"""

from __future__ import annotations

import os
import re
import statistics
from dataclasses import dataclass, field

from common.machine_load import MachineLoad

PREFIX = "[run_all]"
BUSY_MIN_SECONDS = 5.0   # shorter stages are not judged (too few clock ticks to tell)

_RAN = re.compile(r"^\[run_all\] (\d+)/(\d+) (\S+?)(?: \(.*\))?: (ok|failed) in (\d+) s")
_SKIPPED = re.compile(r"^\[run_all\] (\d+)(?:-(\d+))?/(\d+) up to date, skipped: (.*?) \(FORCE=1")


def stage_head(index: int, total: int, name: str, why: str | None = None) -> str:
    """``[run_all] k/N NAME (why)``: the start of a stage's status line."""
    return f"{PREFIX} {index}/{total} {name}" + (f" ({why})" if why else "")


def stage_end(ok: bool, seconds: float, left: str = "", busy: str = "") -> str:
    """``: ok in 57 s, about 6 min left; <busy note>``: the end of a stage's status line."""
    return (f": {'ok' if ok else 'failed'} in {round(seconds)} s" + (f", {left}" if left else "")
            + (f"; {busy}" if busy else ""))


def skipped_line(first: int, last: int, total: int, names: list[str]) -> str:
    """One line for the stages ``first..last`` (1-based) found up to date in a row."""
    span = f"{first}" if first == last else f"{first}-{last}"
    return f"{PREFIX} {span}/{total} up to date, skipped: {' '.join(names)} (FORCE=1 reruns them)"


def parse_status_lines(output: str) -> list[dict]:
    """The runner's status lines in ``output`` -> rows (stage, status ok|failed|skipped, seconds),
    in order; every other line is ignored."""
    rows = []
    for line in output.splitlines():
        if ran := _RAN.match(line):
            rows.append({"stage": ran[3], "status": ran[4], "seconds": int(ran[5])})
        elif skipped := _SKIPPED.match(line):
            rows += [{"stage": name, "status": "skipped", "seconds": 0} for name in skipped[4].split()]
    return rows


def minutes_text(seconds: float) -> str:
    """'about 40 s' / 'about 6 min' / 'about 2.3 h'."""
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5)} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


@dataclass
class TimeLeft:
    """The time left of a run: the plan's projected seconds per stage (may be empty) and the
    stages still to run; ``finished`` records each finished stage's measured seconds."""

    projected: dict[str, float]
    to_run: list[str]
    overheads: list[float] = field(default_factory=list)

    def finished(self, name: str, seconds: float) -> None:
        """Stage ``name`` took ``seconds``: it is no longer to run, and what it took beyond its
        projection is counted for the rest (a stage not planned to run counts for nothing)."""
        if name in self.to_run:
            self.to_run.remove(name)
            self.overheads.append(max(0.0, seconds - self.projected.get(name, 0.0)))

    def skip(self, name: str) -> None:
        """Stage ``name`` turned out up to date: it is no longer to run."""
        if name in self.to_run:
            self.to_run.remove(name)

    def text(self) -> str:
        """'about 6 min left', 'done' when nothing is left, '' when nothing is known yet."""
        if not self.to_run:
            return ""
        if not self.overheads and not self.projected:
            return ""
        extra = statistics.fmean(self.overheads) if self.overheads else 0.0
        return minutes_text(sum(self.projected.get(n, 0.0) + extra for n in self.to_run)) + " left"


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def busy_at_start() -> str:
    """A note when other processes already load the machine (a 1-minute load average of at least
    half the cores, and at least one), else ''."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    n = cores()
    if load < max(1.0, 0.5 * n):
        return ""
    return (f"note: this machine is busy (load {load:.1f} on {n} cores before the run starts): every time printed "
            f"and every latency measured will be slower than on quiet cores")


def busy_note(load: MachineLoad) -> str:
    """'machine busy: other processes took 45% of the cores (times are slower)' after
    ``load.stop()`` when they took more than ``common.machine_load.BUSY_FRACTION``, else ''."""
    if not load.busy:
        return ""
    return f"machine busy: other processes took {load.others:.0%} of the cores (times are slower)"
