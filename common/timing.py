"""The one latency protocol of the study: every latency that a table or figure compares comes from here.

``time_interleaved`` times several models *in the same process, on the same device, in turns*:
each model gets ``warmup`` untimed calls (compilation happens there), then ``rounds`` rounds in
which every model runs once, in an order rotated each round, so a drift of the machine (another
process, frequency scaling) hits every model alike. The reported latency is the median over the
rounds; p10/p90 show the spread. Each timed call follows another model's call, so it finds the
caches as a process serving several models would (small batches read somewhat higher than with
back-to-back repeats of one model); every model of a session is measured under the same
conditions, which is what makes them comparable. On CUDA the clock is read only after
``torch.cuda.synchronize`` (a launch is not a run). Every row says where and how it was timed: device, device name, threads,
batch, input dtype, the kernel that ran, and ``timing_session``, an id shared by the rows timed
together. Rows of different sessions are never compared (``same_session``).

``InferenceCompiled`` is how a model is compiled for inference: ``torch.compile`` with Inductor's
freezing on (weights become constants; only then do the int8 weight-prepack passes of PT2E graphs
run), under ``inference_mode``. It counts the int8 conv/linear kernels Inductor put in at every
compilation (its ``qconv``/``qlinear`` weight-prepack counters), so that a row is labelled "real
int8" only when those kernels ran (``int8_kernels``).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from common.machine_load import MachineLoad
from common.results import device_description

INT8_COUNTERS = ("qconv_weight_prepack_matcher_count", "qlinear_weight_prepack_matcher_count")
RECOMPILE_LIMIT = 64     # many models of one class compiled in one process (guards are per instance)


def synchronize(device: torch.device | str) -> None:
    """Wait for every queued kernel on ``device`` (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inductor_counts() -> dict[str, int]:
    from torch._dynamo.utils import counters
    inductor = counters["inductor"]
    return {"graphs": int(counters["stats"]["unique_graphs"]),
            **{name: int(inductor[name]) for name in INT8_COUNTERS}}


class InferenceCompiled(nn.Module):
    """``torch.compile(model)`` for inference, with Inductor freezing on for every compilation.

    ``forward(x)`` runs the compiled model under ``inference_mode`` with
    ``torch._inductor.config.freezing = True`` (so a recompilation for a new batch size is frozen
    too). ``compilations`` lists, per compilation, how many int8 conv and linear kernels Inductor
    lowered (weight-prepack matches). The model stays on its device; inputs must be there too.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        model.eval()   # (an exported graph's patched .eval() returns None, so not chained)
        self.model = model
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        self.compiled = torch.compile(self.model, dynamic=False)
        self.compilations: list[dict[str, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before = _inductor_counts()
        with torch._inductor.config.patch(freezing=True), torch.inference_mode():
            out = self.compiled(x)
        after = _inductor_counts()
        if after["graphs"] > before["graphs"]:
            self.compilations.append({"int8_conv_kernels": after[INT8_COUNTERS[0]] - before[INT8_COUNTERS[0]],
                                      "int8_linear_kernels": after[INT8_COUNTERS[1]] - before[INT8_COUNTERS[1]]})
        return out

    def int8_kernels(self) -> int:
        """int8 conv + linear kernels in the *least* int8 compilation so far (0 if any compilation
        fell back to float kernels, or if the model has not been compiled yet)."""
        if not self.compilations:
            return 0
        return min(c["int8_conv_kernels"] + c["int8_linear_kernels"] for c in self.compilations)

    def kernel_summary(self) -> str:
        """'int8 oneDNN: 8 conv + 2 linear kernels (Inductor, freezing)' or a float description."""
        if not self.compilations:
            return "torch.compile (not yet compiled)"
        first = self.compilations[0]
        if self.int8_kernels() > 0:
            return (f"int8 oneDNN via Inductor (freezing): {first['int8_conv_kernels']} conv + "
                    f"{first['int8_linear_kernels']} linear int8 kernels")
        return "float kernels via Inductor (freezing)"


@dataclass
class Timed:
    """One model to time: ``runner(example)`` is one timed call (``example`` on the runner's
    device); ``kernel`` says what runs (e.g. 'fp32 conv (oneDNN), eager'); left None for an
    ``InferenceCompiled`` runner, it is that runner's ``kernel_summary()`` after the warm-up
    compiled it."""

    runner: nn.Module
    example: torch.Tensor
    kernel: str | None = None

    def kernel_columns(self) -> dict:
        """kernel (what ran) and int8_kernels (int8 conv+linear kernels compiled in; 0 eager)."""
        if isinstance(self.runner, InferenceCompiled):
            return {"kernel": self.kernel or self.runner.kernel_summary(),
                    "int8_kernels": self.runner.int8_kernels()}
        return {"kernel": self.kernel or "eager", "int8_kernels": 0}


def new_session_id(label: str) -> str:
    """A short id for the rows timed together: '<label>-<utc time>-<random>'."""
    return f"{label}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def time_interleaved(models: dict[str, Timed], session: str, warmup: int = 3, rounds: int = 15
                     ) -> dict[str, dict]:
    """Latency of each model, timed in turns in this process: name -> result columns.

    ``warmup`` (>= 1) untimed calls per model first (compilation included), then ``rounds`` rounds
    in which each model runs ``runner(example)`` once, the order rotated every round. Columns:
    latency_ms (median over rounds, milliseconds per call of one batch), latency_p10_ms,
    latency_p90_ms, latency_rounds, latency_batch, latency_device ('cpu' | 'cuda'),
    device_name, threads, input_dtype, kernel, int8_kernels, timing_session (``session`` and the
    device type: in a GPU run, models of a CPU-only backend timed beside CUDA ones get a session
    of their own, so the two are never compared), and how busy the machine was meanwhile
    (``MachineLoad``: load averages, own CPU per wall second, other processes' share of the
    cores; a warning is printed when others used more than ``common.machine_load.BUSY_FRACTION`` of them).
    """
    if warmup < 1 or rounds < 1:
        raise ValueError(f"need warmup >= 1 and rounds >= 1, got {warmup} and {rounds}")
    names = list(models)
    with torch.inference_mode():
        for name in names:
            m = models[name]
            m.runner.eval()
            for _ in range(warmup):
                m.runner(m.example)
            synchronize(m.example.device)
        times: dict[str, list[float]] = {name: [] for name in names}
        load = MachineLoad().start()
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                m = models[name]
                synchronize(m.example.device)
                start = time.perf_counter()
                m.runner(m.example)
                synchronize(m.example.device)
                times[name].append((time.perf_counter() - start) * 1e3)
        machine = load.stop()
    if load.busy:
        print(f"[timing] warning: other processes used {machine['other_cpu_fraction']:.0%} of the cores while "
              f"session {session} was timed (load average {machine['load_avg_before']} -> "
              f"{machine['load_avg_after']}); its latencies are not those of an idle machine: rerun alone",
              flush=True)
    out = {}
    for name in names:
        m, t = models[name], times[name]
        deciles = statistics.quantiles(t, n=10, method="inclusive") if len(t) > 1 else [t[0]]
        low, high = deciles[0], deciles[-1]
        out[name] = {"latency_ms": round(statistics.median(t), 3), "latency_p10_ms": round(low, 3),
                     "latency_p90_ms": round(high, 3), "latency_rounds": rounds,
                     "latency_batch": int(m.example.shape[0]), "latency_device": m.example.device.type,
                     "device_name": device_description(m.example.device),
                     "threads": torch.get_num_threads(),
                     "input_dtype": str(m.example.dtype).replace("torch.", ""), **m.kernel_columns(),
                     "timing_session": f"{session}-{m.example.device.type}", **machine}
    return out


def same_session(rows: Sequence[dict]) -> bool:
    """True when every row with a latency was timed in one session (comparable)."""
    sessions = {r.get("timing_session") for r in rows if r.get("latency_ms") not in ("", None)}
    return len(sessions) <= 1


def reference_session(rows: Sequence[dict]) -> str:
    """The timing session a table compares: that of its first timed row (every table puts its
    reference model, timed on the run's device, first); '' when nothing was timed."""
    return next((r.get("timing_session", "") for r in rows if r.get("latency_ms") not in ("", None)), "")


def one_session(rows: Sequence[dict], session: str | None = None) -> list[dict]:
    """``rows`` with ``latency_ms`` kept only where it was timed in ``session`` (default:
    ``reference_session``); a reading of another session (in a GPU run, the CPU-only int8
    backend) moves to ``other_session_latency_ms``, beside its ``timing_session`` and
    ``latency_device``, so no column compares readings of two sessions."""
    session = reference_session(rows) if session is None else session
    out = []
    for r in rows:
        timed = r.get("latency_ms") not in ("", None)
        if timed and r.get("timing_session", "") != session:
            r = {**r, "latency_ms": "", "other_session_latency_ms": r["latency_ms"]}
        out.append(r)
    return out
