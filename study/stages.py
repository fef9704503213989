"""The study, stated once: every stage of ``./run_all.sh`` in order, what it runs, writes and reads.

Each ``Stage`` names its script, every results file it writes, the results files and checkpoints
it reads, the flags of its own that run_all passes for a profile, and its work: the trainings and
evaluations it does (``study.stage_work``), for a stage that runs its trainings as
``common.jobs.Job``s read from the very function the stage's script calls (``jobs``). The runner
(``study.runner``), its completion records (``study.records``), the cost plan (``study.plan``), the
SLURM launcher (``study.launch``) and the device check all read this list; none restates it.

Paths of ``outputs`` and ``reads`` are relative to ``results/<dataset>-<profile>/``; figures are
named by their PNG (a PDF is written beside it). ``checkpoints`` and ``reads`` decide which stages
run first (``producers``); whether a stage is up to date is decided by its completion record
(``study.records``), which holds the hashes of every checkpoint the stage really used.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from common.baselines import baseline_jobs, baseline_name
from common.jobs import Job
from common.profiles import Profile
from common.results import PROJECT_ROOT
from distillation.names import student_seeds
from distillation.study import colour_stage_jobs, method_student_jobs, students_stage_jobs
from pruning.study import FINAL_TARGET, final_name
from study import stage_work as w
from study.work import SEED, PlanSettings, StageWork


@dataclass(frozen=True)
class Stage:
    """One stage of the study (a numbered script, or ``common.train`` for the baselines)."""

    name: str                                   # e.g. pruning/01_unstructured_sensitivity
    script: str                                 # its file, relative to the project root
    outputs: tuple[str, ...]                    # every results file it writes
    work: Callable[["Stage", PlanSettings], StageWork]   # its trainings and evaluations, counted
    reads: tuple[str, ...] = ()                 # results files it reads (hashed in its record)
    checkpoints: tuple[str, ...] = ()           # checkpoints it reads (caches)
    jobs: Callable[[argparse.Namespace, PlanSettings], list[Job]] | None = None   # its pooled trainings

    def missing_outputs(self, run_dir) -> list[str]:
        """Its declared outputs that do not exist under ``run_dir`` (results/<dataset>-<profile>/)."""
        return [o for o in self.outputs if not (run_dir / o).exists()]

    @property
    def task(self) -> str:
        """The results folder it writes into (baselines, pruning, ...)."""
        return self.name.split("/")[0]

    @property
    def module(self) -> str | None:
        """The module to run with ``python -m`` for a script inside a package of the library."""
        return self.script.removesuffix(".py").replace("/", ".") if self.script.startswith("common/") else None

    def command(self, python: str) -> list[str]:
        """The command that runs it (without the run's shared flags): the script with no flags of
        its own, since its defaults are the study's."""
        head = ["-m", self.module] if self.module else [self.script]
        return [python, *head]

    def arguments(self, profile: Profile) -> argparse.Namespace:
        """Its parsed arguments as run_all runs it: the script's own parser (``build_parser``)
        with the profile alone, so defaults are read from the script, not restated."""
        return load_script(self.script).build_parser().parse_args(["--profile", profile.study_name])


@lru_cache(maxsize=None)
def load_script(relative: str):
    """Import a stage's script (``pruning/08_accuracy_vs_sparsity.py``) as a module, without running it."""
    path = PROJECT_ROOT / relative
    spec = importlib.util.spec_from_file_location(f"_stage_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _students_jobs(a: argparse.Namespace, s: PlanSettings) -> list[Job]:
    seeds = student_seeds(a.seeds, a.seed, s.profile.study_name)   # as the script, which makes the DKD choice
    first, tuned = students_stage_jobs(a.methods, seeds, a.teacher, a.seed, s.dkd_selected, tune=a.seed in seeds)
    return first + tuned


VGG11, VGG16, VGG19 = (baseline_name(m, SEED) for m in ("vgg11", "vgg16", "vgg19"))
UNSTRUCTURED70, STRUCTURED70 = (final_name(k, FINAL_TARGET, SEED) for k in ("unstructured", "structured"))
P, Q, D, C = "pruning/", "quantization/", "distillation/", "combined/"
STUDENTS_CSV = D + "students.csv"


def _stage(name: str, outputs, work, reads=(), checkpoints=(VGG11,), **kw) -> Stage:
    return Stage(name, f"{name}.py", tuple(outputs), work, tuple(reads), tuple(checkpoints), **kw)


STAGES: list[Stage] = [
    Stage("baselines", "common/train.py", ("baselines/baselines.csv", "baselines/curves.csv", "baselines/curves.png"),
          w.baselines,
          jobs=lambda a, s: baseline_jobs(a.models, a.seed, a.force)),
    # Pruning (VGG-11)
    _stage(P + "01_unstructured_sensitivity", [P + "unstructured_sensitivity.csv", P + "unstructured_sensitivity.png"],
           w.pruning_sensitivity),
    _stage(P + "02_unstructured_final", [P + "unstructured_final.csv", P + "unstructured_final_curves.csv"], w.pruning_final,
           reads=[P + "unstructured_sensitivity.csv"]),
    _stage(P + "03_structured_sensitivity", [P + "structured_sensitivity.csv", P + "structured_sensitivity.png"],
           w.pruning_sensitivity),
    _stage(P + "04_structured_final", [P + "structured_final.csv", P + "structured_final_curves.csv"], w.pruning_final,
           reads=[P + "structured_sensitivity.csv"]),
    _stage(P + "05_weight_histograms", [P + "weight_stats.csv", P + "weight_histograms.png",
                                        P + "weight_histograms_structured.png"], w.pruning_cached_models,
           checkpoints=[VGG11, UNSTRUCTURED70, STRUCTURED70]),
    _stage(P + "06_compare_models", [P + "pruned_models.csv"], w.pruning_compare,
           checkpoints=[VGG11, UNSTRUCTURED70, STRUCTURED70]),
    _stage(P + "07_gradcam", [P + "gradcam_pruning.csv", P + "gradcam_pruning.png"], w.pruning_cached_models,
           checkpoints=[VGG11, UNSTRUCTURED70, STRUCTURED70]),
    _stage(P + "08_accuracy_vs_sparsity", [P + "accuracy_vs_sparsity.csv", P + "accuracy_vs_sparsity.png",
                                           P + "accuracy_vs_sparsity_curves.csv"],
           w.pruning_accuracy_vs_sparsity, reads=[P + "unstructured_sensitivity.csv"]),
    # Quantization (VGG-11; the scaling law also quantizes VGG-16/19 and the channel-pruned VGG-11)
    _stage(Q + "01_ptq", [Q + "ptq.csv"], w.quantization_ptq),
    _stage(Q + "02_qat", [Q + "qat.csv", Q + "qat_summary.csv", Q + "qat_recovery.png", Q + "qat_training_curves.csv",
                          Q + "qat_training_curves.png"], w.quantization_qat),
    _stage(Q + "03_scaling_law", [Q + "scaling_law.csv", Q + "scaling_law_frontier.csv", Q + "scaling_law.png",
                                  Q + "scaling_law_vgg11.png"], w.quantization_scaling_law,
           checkpoints=[VGG11, VGG16, VGG19, STRUCTURED70]),
    _stage(Q + "04_mixed_precision", [Q + "hessian_trace.csv", Q + "mixed_precision.csv", Q + "mixed_precision.png"],
           w.quantization_mixed_precision),
    _stage(Q + "05_outliers", [Q + "outliers_stats.csv", Q + "outliers_distributions.png", Q + "outliers_clipping.png",
                               Q + "outliers.csv", Q + "outliers_per_layer.csv", Q + "outliers_per_layer.png"],
           w.quantization_outliers),
    # Distillation (VGG-16 -> VGG-11; VGG-19 for the teacher-size comparison)
    _stage(D + "01_students", [D + "dkd_tuning.csv", STUDENTS_CSV, D + "student_curves.csv", D + "student_curves.png"], w.distillation_students,
           checkpoints=[VGG16], jobs=_students_jobs),
    _stage(D + "02_alignment", [D + "alignment.csv"], w.distillation_alignment, reads=[STUDENTS_CSV],
           checkpoints=[VGG16]),
    _stage(D + "03_gradcam", [D + "gradcam_localization.csv", D + "gradcam_localization_summary.csv",
                              D + "gradcam_localization.png"], w.distillation_cached_students,
           reads=[STUDENTS_CSV], checkpoints=[VGG16]),
    _stage(D + "04_color_invariance", [D + "color_invariance.csv", D + "color_invariance_curves.csv"],
           w.distillation_colour, reads=[STUDENTS_CSV],
           checkpoints=[VGG16], jobs=lambda a, s: colour_stage_jobs(a.methods, a.teacher, a.seed)),
    _stage(D + "05_teacher_size", [D + "teacher_size.csv", D + "teacher_size_curves.csv"],
           w.distillation_teacher_size, reads=[STUDENTS_CSV],
           checkpoints=[VGG16, VGG19], jobs=lambda a, s: method_student_jobs([a.method], a.teachers, seed=a.seed)),
    # Synthesis: the techniques composed; every model on one accuracy/size/latency chart
    _stage(C + "01_pipelines", [C + "pipelines.csv"], w.combined_pipelines,
           reads=[P + "unstructured_sensitivity.csv", STUDENTS_CSV], checkpoints=[VGG11, VGG16, STRUCTURED70]),
    _stage(C + "02_pareto", [C + "pareto_points.csv", C + "pareto.png", C + "pareto_macs.png"], w.combined_pareto,
           reads=["baselines/baselines.csv", P + "pruned_models.csv", Q + "ptq.csv", Q + "mixed_precision.csv",
                  STUDENTS_CSV, C + "pipelines.csv"], checkpoints=[VGG11, UNSTRUCTURED70, STRUCTURED70]),
]

REPORT = "report/build.py"     # rebuilt after every run from the results above (seconds)


def stage_named(name: str) -> Stage:
    """The stage called ``name``; SystemExit listing the stages for an unknown one."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise SystemExit(f"error: no stage {name!r}; the stages are: {', '.join(s.name for s in STAGES)}")


def producers(settings: PlanSettings) -> dict[str, Stage]:
    """Which stage writes each results file, and which first trains each checkpoint some stage
    declares it reads (the first stage whose work lists it as cached: the baselines, pruning/02
    and 04's finals), for the runner's dependency order. Stages' work is computed in order only
    until every declared checkpoint has its maker: the later stages' work is never needed here."""
    made: dict[str, Stage] = {}
    for stage in STAGES:
        for output in stage.outputs:
            made.setdefault(output, stage)
    wanted = {name for stage in STAGES for name in stage.checkpoints}
    for stage in STAGES:
        if not wanted:
            break
        for training in stage.work(stage, settings).jobs:
            if training.cached:
                made.setdefault(training.name, stage)
                wanted.discard(training.name)
    return made
