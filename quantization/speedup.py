"""int8's speed-up read from a PTQ table, against fp32 compiled and against the fastest float
format the machine runs (no torch: the READMEs and the report read it from ``ptq.csv``).

Only latencies of one timing session are compared (``common.timing``): the int8 PT2E row, the
fp32 ``torch.compile`` row and every real-kernel float row (fp32, fp16, bf16; eager or compiled)
timed in the int8 row's session.
"""

from __future__ import annotations

INT8_SCHEME = "W8A8 static (torchao PT2E)"
FP32_COMPILED_SCHEME = "fp32 (torch.compile)"
FLOAT_FORMATS = ("fp32", "fp16", "bf16")


def _ms(row: dict) -> float | None:
    value = row.get("latency_ms")
    return float(value) if value not in ("", None) else None


def int8_speedups(rows: list[dict]) -> dict | None:
    """From PTQ rows (``quantization/ptq.csv``): the real int8 PT2E row's latency (ms, batch 256)
    and its speed-up (a ratio of latencies) against fp32 compiled and against the fastest float
    row of its timing session, with that row's scheme (e.g. 'bf16 cast (torch.compile)'); None when the int8 row is not
    a real, timed one or no float row shares its session."""
    int8 = next((r for r in rows if r.get("scheme") == INT8_SCHEME and r.get("simulated") == "no"
                 and _ms(r) is not None), None)
    if int8 is None:
        return None
    session = int8.get("timing_session")
    floats = [r for r in rows if r.get("format") in FLOAT_FORMATS and r.get("simulated") == "no"
              and _ms(r) is not None and r.get("timing_session") == session]
    if not floats:
        return None
    fastest = min(floats, key=_ms)
    fp32 = next((r for r in floats if r.get("scheme") == FP32_COMPILED_SCHEME), None)
    return {"int8_ms": _ms(int8),
            "fp32_compiled_ms": _ms(fp32) if fp32 else None,
            "vs_fp32_compiled": _ms(fp32) / _ms(int8) if fp32 else None,
            "fastest_float": fastest["scheme"],
            "fastest_float_ms": _ms(fastest),
            "vs_fastest_float": _ms(fastest) / _ms(int8)}
