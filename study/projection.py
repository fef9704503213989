"""Projected seconds of a plan's work: training and evaluated images over measured images/s.

``project`` prices every training and evaluation of a ``study.plan.Work`` with a throughput
table (``study.throughput``); in the pooled stages (those that run their trainings as jobs) the
trainings run on ``workers`` processes that together train ``speedup`` times as fast as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from study.throughput import ThroughputTable
from study.work import NO_TEACHER


@dataclass
class Projection:
    """Projected seconds per training, per evaluation and per stage, and the figures used."""

    job_rows: list[dict]
    evaluation_rows: list[dict]
    stage_rows: list[dict]
    figures: list[dict]          # every throughput figure used, measured or estimated
    total_seconds: float

    @property
    def total_minutes(self) -> float:
        return self.total_seconds / 60


def _figure_row(kind: str, model: str, teacher: str, variant: str, figure) -> dict:
    return {"pass": kind, "model": model, "teacher": teacher, "variant": variant,
            "images_per_second": round(figure.images_per_second, 1),
            "source": "estimated" if figure.estimated else "measured", "note": figure.note}


def concurrent_seconds(job_seconds: Sequence[float], workers: int, speedup: float) -> float:
    """Wall seconds of independent jobs (each ``job_seconds`` when alone) on ``workers``
    processes that together train ``speedup`` times as fast as one: the work divided by the
    speedup, but never less than the longest job run at a worker's share (``speedup/workers``)."""
    if not job_seconds:
        return 0.0
    if workers <= 1:
        return float(sum(job_seconds))
    return max(sum(job_seconds) / speedup, max(job_seconds) * workers / speedup)


def project(work, throughput: ThroughputTable, workers: int = 1, speedup: float = 1.0) -> Projection:
    """Seconds = training images / training images/s of (model, teacher, variant) + evaluated
    images / inference images/s of the model (Hessian passes at its training images/s).
    In the pooled stages the trainings run on ``workers`` processes that train ``speedup`` times as
    fast together as one (``concurrent_seconds``); elsewhere one at a time.
    Raises MissingThroughput when a needed model has no figure at all."""
    figures: dict[tuple, dict] = {}

    def train_rate(model: str, teacher: str, variant: str) -> float:
        figure = throughput.training(model, teacher, variant)
        figures.setdefault(("train", model, teacher, variant), _figure_row("train", model, teacher, variant, figure))
        return figure.images_per_second

    def infer_rate(model: str, variant: str) -> float:
        figure = throughput.inference(model, variant)
        figures.setdefault(("infer", model, NO_TEACHER, variant), _figure_row("infer", model, NO_TEACHER, variant, figure))
        return figure.images_per_second

    jobs = []
    for j in work.jobs:
        train_s = j.train_images / train_rate(j.model, j.teacher, j.variant)
        eval_s = j.eval_images / infer_rate(j.model, j.eval_variant) if j.eval_images else 0.0
        jobs.append({"stage": j.stage, "job": j.name, "model": j.model, "epochs": j.epochs,
                     "images_per_epoch": j.images_per_epoch, "teacher": j.teacher, "variant": j.variant,
                     "eval_images": j.eval_images, "train_seconds": train_s, "eval_seconds": eval_s,
                     "projected_minutes": round((train_s + eval_s) / 60, 2)})
    evaluations = []
    for e in work.evaluations:
        rate = train_rate(e.model, NO_TEACHER, "plain") if e.training_pass else infer_rate(e.model, e.variant)
        evaluations.append({"stage": e.stage, "what": e.what, "model": e.model, "variant": e.variant,
                            "images": e.images, "seconds": e.images / rate})
    stages = stage_subtotals(work, jobs, evaluations, workers, speedup)
    return Projection(jobs, evaluations, stages, list(figures.values()),
                      sum(r["projected_seconds"] for r in stages))


def stage_subtotals(work, jobs: list[dict], evaluations: list[dict], workers: int = 1,
                    speedup: float = 1.0) -> list[dict]:
    """Per stage (run_all order): trainings, their epochs, training and evaluated images,
    cached trainings reused, projected seconds and minutes (the pooled stages' trainings on
    ``workers`` processes, ``concurrent_seconds``)."""
    rows = []
    for stage in work.stages:
        mine = [j for j in jobs if j["stage"] == stage]
        evals = [e for e in evaluations if e["stage"] == stage]
        each = [j["train_seconds"] + j["eval_seconds"] for j in mine]
        pooled = stage in work.pooled
        seconds = (concurrent_seconds(each, workers, speedup) if pooled else sum(each)) + sum(e["seconds"] for e in evals)
        rows.append({"stage": stage, "trainings": len(mine), "epochs": sum(j["epochs"] for j in mine),
                     "train_images": sum(j["epochs"] * j["images_per_epoch"] for j in mine),
                     "eval_images": sum(j["eval_images"] for j in mine) + sum(e["images"] for e in evals),
                     "reused_trainings": len(work.reused.get(stage, [])),
                     "projected_seconds": round(seconds, 1), "projected_minutes": round(seconds / 60, 2)})
    return rows


def needed_keys(work) -> tuple[set[tuple[str, str, str]], set[tuple[str, str]]]:
    """(training keys (model, teacher, variant), inference keys (model, variant)) the projection reads."""
    train = {(j.model, j.teacher, j.variant) for j in work.jobs}
    train |= {(e.model, NO_TEACHER, "plain") for e in work.evaluations if e.training_pass}
    infer = {(j.model, j.eval_variant) for j in work.jobs if j.eval_images}
    infer |= {(e.model, e.variant) for e in work.evaluations if not e.training_pass}
    infer |= {(j.teacher, "plain") for j in work.jobs if j.teacher != NO_TEACHER}   # estimates use it
    return train, infer


