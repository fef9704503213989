"""How busy the machine was while a block ran: the one reading of other processes' CPU share,
used by the latency protocol (``common.timing``) and by the runner's stage lines. No torch.

The machine's busy CPU seconds come from Linux ``/proc/stat``; "own" CPU is this process's
(``time.process_time()``), or, for a block that runs child processes (the runner and its stage
scripts), this process's plus its finished children's (``getrusage``). Elsewhere the share
reads '' (unknown) and nothing is judged busy.
"""

from __future__ import annotations

import os
import resource
import time

BUSY_FRACTION = 0.25   # other processes using more than this share of all cores: a busy machine


def busy_cpu_seconds() -> float | None:
    """CPU seconds every process of the machine has used since boot (Linux ``/proc/stat``;
    None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)   # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(children: bool = False) -> float:
    """CPU seconds this process used; with ``children``, plus those of its finished children
    (a stage script and its workers)."""
    if not children:
        return time.process_time()
    return sum(u.ru_utime + u.ru_stime
               for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


class MachineLoad:
    """``start()``, the block, then ``stop()`` -> columns load_avg_before / load_avg_after
    (1-minute load averages), own_cpu_per_wall (own CPU seconds per wall second: about the
    thread count of a block that ran unhindered) and other_cpu_fraction (the share of all cores
    that *other* processes used meanwhile; '' where the OS does not say, or the block was shorter
    than ``min_seconds``: too few clock ticks to tell). After ``stop()``, ``busy`` is True above
    ``BUSY_FRACTION``. ``children``: count this process's finished children as its own.
    ``seconds``: the block's wall seconds on the clock its share was judged by (so far, until
    ``stop()``)."""

    def __init__(self, children: bool = False, min_seconds: float = 0.0):
        self.children, self.min_seconds = children, min_seconds
        self.busy, self.others, self._seconds = False, "", None

    @property
    def seconds(self) -> float:
        """Wall seconds since ``start()``; after ``stop()``, those of the block it measured."""
        return time.perf_counter() - self.wall if self._seconds is None else self._seconds

    def start(self) -> "MachineLoad":
        self.load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        self.wall, self.own, self.machine = (time.perf_counter(), own_cpu_seconds(self.children),
                                             busy_cpu_seconds())
        return self

    def stop(self) -> dict:
        wall = self._seconds = time.perf_counter() - self.wall
        own = own_cpu_seconds(self.children) - self.own
        machine = busy_cpu_seconds()
        others = ""
        if machine is not None and self.machine is not None and wall > 0 and wall >= self.min_seconds:
            others = round(max(0.0, (machine - self.machine - own) / (wall * (os.cpu_count() or 1))), 3)
        self.others = others
        self.busy = others != "" and others > BUSY_FRACTION
        after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return {"load_avg_before": "" if self.load_before is None else round(self.load_before, 2),
                "load_avg_after": "" if after is None else round(after, 2),
                "own_cpu_per_wall": round(own / wall, 2) if wall > 0 else "",
                "other_cpu_fraction": others}
