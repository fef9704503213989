"""Students over seeds: per-method mean and spread of test top-1, and gains paired by seed.

Pure Python on ``students.csv`` rows, so the script that writes ``students_summary.csv`` and the
report's table compute the same numbers.
"""

from __future__ import annotations

import statistics

INDEPENDENT = "independent"


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def seed_summary(rows: list[dict]) -> list[dict]:
    """students.csv rows (one per method and seed; ``top1_acc`` in %, ``train_seconds``) -> one
    row per (method, teacher), in first-seen order: ``seeds``; ``top1_mean`` and ``top1_std``
    (sample std, 0 for one seed); ``gain_mean`` and ``gain_std``: points of top-1 over the
    independent student of the same seed, paired so that what a seed's shared initialisation and
    batch order do to every student cancels (blank when no seed of the method has an S_I row);
    ``val_top1_mean`` (blank without validation readings), for choices among methods;
    ``train_seconds_mean``; ``selected_settings`` of the first seed. All rounded to 2 decimals."""
    independent = {str(r["seed"]): float(r["top1_acc"]) for r in rows if r["method"] == INDEPENDENT}
    out = []
    for method, teacher in dict.fromkeys((r["method"], r["teacher"]) for r in rows):
        group = [r for r in rows if (r["method"], r["teacher"]) == (method, teacher)]
        top1_mean, top1_std = _mean_std([float(r["top1_acc"]) for r in group])
        gains = [float(r["top1_acc"]) - independent[str(r["seed"])] for r in group
                 if str(r["seed"]) in independent]
        gain = [round(v, 2) for v in _mean_std(gains)] if gains else ["", ""]
        seconds = [float(r["train_seconds"]) for r in group if r.get("train_seconds") not in (None, "")]
        vals = [float(r["val_top1_acc"]) for r in group if r.get("val_top1_acc") not in (None, "")]
        out.append({"method": method, "teacher": teacher, "seeds": len(group),
                    "top1_mean": round(top1_mean, 2), "top1_std": round(top1_std, 2),
                    "gain_mean": gain[0], "gain_std": gain[1],
                    "val_top1_mean": round(statistics.fmean(vals), 2) if vals else "",
                    "train_seconds_mean": round(statistics.fmean(seconds), 1) if seconds else "",
                    "selected_settings": group[0].get("selected_settings", "")})
    return out
