"""The distillation study's shared pieces: teachers, cached students, and their measurements.

Every student is a VGG-11 of the profile's width trained from the same seeded initialisation
with the same recipe (the profile's ``student_epochs``, augmentation, schedule and seed): the
independent student S_I differs from a distilled one only in its loss. Students are cached in
``checkpoints/<dataset>-<profile>/student_<method>_<teacher>_seed<seed>.pt`` and retrained when
their key (``common.cache``) changes: recipe, method settings, data, or the teacher's weights.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import torch
import torch.nn.functional as F
from torch import nn

from common.baselines import finetune_recipe, get_baseline, train_and_cache
from common.cache import KEY, weights_sha256
from common.checkpoints import announce, save_checkpoint
from common.cli import RunContext
from common.data import num_classes
from common.jobs import Job
from common.resume import resume_path
from common.models import VGG, build_model
from common.numerics import machine_kind
from common.results import device_description, git_commit, read_rows, read_sidecar
from common.training import Recipe, accuracy_from_logits, fit, predict_logits, trained_seconds
from distillation.methods import METHODS, build_distiller
from distillation.methods.dkd import DKD
from distillation.names import STUDENT_METHODS, TEACHER, TUNED_DKD

TASK = "distillation"
STUDENT = "vgg11"
SOFT_TEMPERATURE = 4.0          # temperature of the softened probabilities in alignment measures

# The students of the main comparison: name -> (method, overrides of its published settings), by
# distillation.names.STUDENT_METHODS: the six methods as published, and "dkd_tuned" (TUNED_DKD):
# DKD with the settings of DKD_GRID that reach the best validation top-1 (the published beta 8
# diverges on the cpu profile's 10-epoch one-cycle schedule, so its weight and warm-up are chosen
# on the held-out validation split, never on test).
STUDENTS: dict[str, tuple[str, dict]] = {name: (method, {}) for name, method in STUDENT_METHODS.items()}

# DKD candidates, name -> overrides of the published settings (alpha 1, beta 8, T 4, warm-up
# 20/240 of training). beta scales NCKD (its gradients grow with beta); alpha = beta = 1 is KD
# without the teacher-confidence suppression of NCKD (the DKD paper writes KD as
# TCKD + (1 - p_t) NCKD); a longer warm-up ramps the DKD term in more slowly.
DKD_GRID: dict[str, dict] = {
    "dkd": {},
    "dkd_beta1": {"beta": 1.0},
    "dkd_beta2": {"beta": 2.0},
    "dkd_beta4": {"beta": 4.0},
    "dkd_warmup30": {"warmup_fraction": 0.3},
    "dkd_warmup60": {"warmup_fraction": 0.6},
}


def student_recipe(ctx: RunContext) -> Recipe:
    """The recipe every student (S_I and distilled) shares: the profile's student_epochs."""
    return Recipe.from_profile(ctx.profile, epochs=ctx.profile.student_epochs, seed=ctx.seed,
                               compile=ctx.compile, step=ctx.train_step)


def get_teacher(ctx: RunContext, name: str = TEACHER) -> tuple[VGG, dict]:
    """A trained baseline used as teacher (cached or trained by the foundation); its metadata
    gains ``weights_sha256`` (``common.cache.weights_sha256``), which identifies it."""
    model, meta = get_baseline(ctx, name)
    return model, {**meta, "weights_sha256": weights_sha256(model)}


def student_name(variant: str, teacher_label: str, seed: int) -> str:
    """The checkpoint name of a student: ``student_<variant or method>_<teacher label>_seed<seed>``
    (teacher label 'none' for a method without a teacher)."""
    return f"student_{variant}_{teacher_label}_seed{seed}"


def study_student_name(name: str, seed: int, teacher: str, dkd_selected: str | None = None) -> str:
    """The checkpoint ``study_student`` ``name`` trains at ``seed`` from the baseline ``teacher``
    ('' for ``dkd_tuned`` before its candidate is chosen)."""
    if name == TUNED_DKD:
        return student_name(dkd_selected, teacher, seed) if dkd_selected else ""
    method, _ = STUDENTS[name]
    return student_name(name, teacher if METHODS[method].needs_teacher else "none", seed)


def get_student(ctx: RunContext, method: str, teacher: VGG | None = None,
                teacher_meta: dict | None = None, teacher_label: str | None = None,
                force: bool = False, variant: str | None = None, **hparams) -> tuple[VGG, dict]:
    """The VGG-11 student trained with ``method`` (a key of ``METHODS``) from ``teacher``.

    Cached under ``student_<variant or method>_<teacher_label>_seed<seed>``, keyed
    (``common.cache``) by the method, ``hparams`` (overrides of its published defaults), the
    student recipe, the data, the sha256 of the teacher's weights and this module's code. Returns
    (student in eval mode on ctx.device, metadata with test top-1/top-5 and train_seconds).
    """
    label = teacher_label or ("none" if teacher is None else teacher_meta["name"].split("_seed")[0])
    name = student_name(variant or method, label, ctx.seed)
    recipe = student_recipe(ctx)
    key = ctx.artefact_key({"method": method, "hparams": hparams, "recipe": recipe.cache_key()},
                           {} if teacher is None else {"teacher": weights_sha256(teacher)}, __name__)
    path = ctx.checkpoint(name)
    if not force and (hit := ctx.cached_checkpoint(name, key)):
        return hit
    splits = ctx.splits
    torch.manual_seed(ctx.seed)  # every student starts from the same initial weights
    student = build_model(STUDENT, num_classes(ctx.dataset), ctx.profile.width).to(ctx.device)
    total_steps = recipe.epochs * max(1, len(splits.train_images) // recipe.batch_size)
    extra = {"train_size": len(splits.train_images)} if method == "crd" else {}
    distiller = build_distiller(method, student, teacher, total_steps, **extra, **hparams).to(ctx.device)
    history = fit(distiller, splits, recipe, ctx.device, loss_fn=distiller.loss_fn(),
                  params=distiller.trainable_parameters(), progress=ctx.progress, desc=name,
                  resume=resume_path(path), resume_key=key, keep_state=True)
    seconds = trained_seconds(history)
    test = ctx.evaluate(student, "test")
    meta = {"name": name, "dataset": ctx.dataset, "profile": ctx.profile.name, KEY: key,
            "method": variant or method, "teacher": label, "seed": ctx.seed, "epochs": recipe.epochs,
            "val_top1_acc": history[-1]["val_top1_acc"], "test_top1_acc": test["top1_acc"],
            "test_top5_acc": test["top5_acc"], "train_seconds": seconds, "history": history,
            "device": device_description(ctx.device), "machine": machine_kind(ctx.device),
            "git_commit": git_commit(), "trained_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save_checkpoint(path, student, meta)
    resume_path(path).unlink(missing_ok=True)   # the student is cached: its training state goes
    announce(name, f"trained in {seconds:.0f}s, test top-1 {test['top1_acc']:.2f}% -> {path}")
    return student.eval(), meta


def dkd_candidate(ctx: RunContext, name: str, teacher: VGG, teacher_meta: dict) -> tuple[VGG, dict]:
    """The DKD student with the settings of the DKD_GRID candidate ``name`` (cached as
    ``student_<name>_<teacher>_seed<seed>``; the published 'dkd' is the plain DKD student)."""
    return get_student(ctx, "dkd", teacher, teacher_meta, variant=name, **DKD_GRID[name])


def study_student(ctx: RunContext, name: str, teacher: VGG, teacher_meta: dict,
                  dkd_selected: str | None = None) -> tuple[VGG, dict]:
    """The student ``name`` of ``STUDENTS`` (from ``teacher`` when its method needs one).

    ``dkd_tuned`` is the DKD_GRID candidate ``dkd_selected`` at ctx.seed; without one, the
    candidates are trained (or loaded) at ctx.seed and the best on validation is taken
    (``tune_dkd``). Its metadata is labelled ``dkd_tuned`` with ``selected`` naming the candidate.
    """
    if name == TUNED_DKD:
        selected = dkd_selected or tune_dkd(ctx, teacher, teacher_meta)[0]
        student, meta = dkd_candidate(ctx, selected, teacher, teacher_meta)
        return student, {**meta, "method": TUNED_DKD, "selected": selected}
    method, hparams = STUDENTS[name]
    if not METHODS[method].needs_teacher:
        teacher, teacher_meta = None, None
    return get_student(ctx, method, teacher, teacher_meta, variant=name if name != method else None,
                       **hparams)


# ----------------------------------------------------------------------------- jobs
# Each function trains (or loads) one student into the checkpoint cache; a stage runs a list of
# them through ``common.jobs.run_jobs`` (concurrently with --jobs N) and then reads every student
# from the cache. Teachers are named, not passed: a worker process loads its own (cached) copy.

def train_study_student(ctx: RunContext, name: str, seed: int, teacher: str,
                        dkd_selected: str | None = None) -> None:
    """Job: ``study_student`` ``name`` at ``seed`` from the baseline ``teacher`` of ctx.seed."""
    teacher_model, teacher_meta = get_teacher(ctx, teacher)
    study_student(ctx.but(seed=seed), name, teacher_model, teacher_meta, dkd_selected)


def train_dkd_candidate(ctx: RunContext, candidate: str, teacher: str) -> None:
    """Job: the DKD_GRID candidate ``candidate`` at ctx.seed from the baseline ``teacher``."""
    dkd_candidate(ctx, candidate, *get_teacher(ctx, teacher))


def train_method_student(ctx: RunContext, method: str, teacher: str | None,
                         colour: bool = False) -> None:
    """Job: the ``method`` student at ctx.seed from the baseline ``teacher`` (None: a method
    without one, e.g. 'independent'), or from its colour-jitter fine-tune with ``colour``
    (labelled ``<teacher>-colour``)."""
    if teacher is None:
        get_student(ctx, method)
        return
    teacher_model, teacher_meta = get_teacher(ctx, teacher)
    if colour:
        teacher_model, teacher_meta = get_colour_teacher(ctx, teacher_model, teacher_meta)
    get_student(ctx, method, teacher_model, teacher_meta,
                teacher_label=colour_label(teacher) if colour else None)


def colour_label(teacher: str) -> str:
    """How students of the colour-jitter fine-tune of ``teacher`` name their teacher."""
    return f"{teacher}-colour"


def _needs_teacher(name: str) -> bool:
    return name == TUNED_DKD or METHODS[STUDENTS[name][0]].needs_teacher


def student_jobs(names, seeds, teacher: str, dkd_selected: str | None = None) -> list[Job]:
    """One ``train_study_student`` job per seed and student name (seed-major order), keyed by the
    checkpoint it writes (``study_student_name``; '' for ``dkd_tuned`` before its candidate is
    chosen)."""
    return [Job("distillation.study:train_study_student",
                {"name": n, "seed": s, "teacher": teacher, "dkd_selected": dkd_selected},
                f"{n} seed {s}", study_student_name(n, s, teacher, dkd_selected), model=STUDENT,
                teacher=teacher if _needs_teacher(n) else "none", epochs_of="student_epochs")
            for s in seeds for n in names]


def dkd_candidate_jobs(teacher: str, seed: int) -> list[Job]:
    """One ``train_dkd_candidate`` job per DKD_GRID candidate, at ``seed`` (the run's)."""
    return [Job("distillation.study:train_dkd_candidate", {"candidate": c, "teacher": teacher}, c,
                student_name(c, teacher, seed), model=STUDENT, teacher=teacher, epochs_of="student_epochs")
            for c in DKD_GRID]


def students_stage_jobs(names, seeds, teacher: str, tuning_seed: int, dkd_selected: str | None = None,
                        tune: bool = True) -> tuple[list[Job], list[Job]]:
    """The trainings of distillation/01, in two batches: (every student that does not wait for
    the DKD choice, plus the DKD candidates at ``tuning_seed`` when the stage makes the choice
    (``tune``); ``dkd_tuned`` at every seed, run once the choice is made). Before the choice is
    known (``dkd_selected`` None), ``dkd_tuned`` at the tuning seed is one of the candidates and is
    left out, and at the other seeds it is keyed by the placeholder '<selected DKD candidate>'."""
    plain = [n for n in names if n != TUNED_DKD]
    first = student_jobs(plain, seeds, teacher)
    if TUNED_DKD not in names:
        return first, []
    first += dkd_candidate_jobs(teacher, tuning_seed) if tune else []
    if dkd_selected is not None:
        return first, student_jobs([TUNED_DKD], seeds, teacher, dkd_selected)
    tuned = [dataclasses.replace(job, key=student_name("<selected DKD candidate>", teacher, seed),
                                 waits_for="the DKD choice on validation")
             for seed, job in zip(seeds, student_jobs([TUNED_DKD], seeds, teacher)) if seed != tuning_seed]
    return first, tuned


def method_student_jobs(methods, teachers, colour: bool = False, seed: int = 0) -> list[Job]:
    """One ``train_method_student`` job per teacher and method (None: a method without one),
    at the run's ``seed``, keyed by the student's checkpoint."""
    def label(teacher: str | None) -> str:   # how the student names its teacher
        return "none" if teacher is None else colour_label(teacher) if colour else teacher

    return [Job("distillation.study:train_method_student",
                {"method": m, "teacher": t, "colour": colour}, f"{m} from {label(t)}",
                student_name(m, label(t), seed), model=STUDENT, teacher=label(t), epochs_of="student_epochs")
            for t in teachers for m in methods]


def colour_stage_jobs(methods, teacher: str, seed: int = 0) -> list[Job]:
    """The student jobs of distillation/04: S_I, then ``methods`` from ``teacher`` and from its
    colour-jitter fine-tune."""
    return (method_student_jobs(["independent"], [None], seed=seed) + method_student_jobs(methods, [teacher], seed=seed)
            + method_student_jobs(methods, [teacher], colour=True, seed=seed))


def written_with(sidecar: dict, ctx: RunContext, teacher_meta: dict) -> bool:
    """Whether a results file's provenance ``sidecar`` was written with this run's profile
    settings, data and this very teacher: the sha256 of its weights (``teacher_weights_sha256``, set by
    ``get_teacher``), not its accuracy (a retrained teacher can match it, or miss it by one image
    on a GPU, whatever its weights)."""
    return (sidecar.get("profile_settings") == ctx.profile.as_dict() and sidecar.get("data") == ctx.data_key
            and sidecar.get("teacher") == teacher_meta["architecture"]
            and sidecar.get("teacher_weights_sha256") == teacher_meta["weights_sha256"])


def teacher_provenance(teacher_meta: dict) -> dict:
    """What a results file records of its teacher: name, test top-1 and the weights' sha256."""
    return {"teacher": teacher_meta["architecture"], "teacher_top1": teacher_meta["test_top1_acc"],
            "teacher_weights_sha256": teacher_meta["weights_sha256"]}


def _grid_settings(name: str) -> dict:
    """Alpha, beta, temperature and warm-up fraction of the DKD_GRID candidate ``name``."""
    settings = {k: v for k, v in DKD.__init__.__kwdefaults__.items() if k != "ce_weight"}
    return {**settings, **DKD_GRID[name]}


def recorded_dkd_selection(ctx: RunContext, teacher_meta: dict) -> str | None:
    """The candidate selected in an existing ``dkd_tuning.csv`` of this run folder, if that file
    was written at ctx.seed with this teacher, this profile and exactly the current DKD_GRID
    (names and settings); else None (the grid must then be trained to choose)."""
    path = ctx.results_dir(TASK) / "dkd_tuning.csv"
    rows = read_rows(path)
    sidecar = read_sidecar(path)
    if not rows or not written_with(sidecar, ctx, teacher_meta) or sidecar.get("seed") != ctx.seed:
        return None
    if [r["candidate"] for r in rows] != list(DKD_GRID) or any(
            float(r[k]) != float(v) for r in rows for k, v in _grid_settings(r["candidate"]).items()):
        return None
    selected = [r["candidate"] for r in rows if r["selected"] == "True"]
    return selected[0] if len(selected) == 1 else None


def kept_student_rows(ctx: RunContext, teacher_meta: dict, seeds: list[int]) -> tuple[list[dict], dict]:
    """Rows of the existing ``students.csv`` whose seed is not in ``seeds``, so that seeds can be
    trained in separate runs (as baselines are). Kept only when that file was written with this
    teacher and profile and the rows used this profile's student epochs; otherwise none are kept
    and the reason is printed. Returns (rows without dataset/profile columns, the file's
    provenance)."""
    path = ctx.results_dir(TASK) / "students.csv"
    rows, sidecar = read_rows(path), read_sidecar(path)
    others = [r for r in rows if int(r["seed"]) not in seeds]
    if not others:
        return [], {}
    epochs = str(ctx.profile.student_epochs)
    if not written_with(sidecar, ctx, teacher_meta) or any(r["epochs"] != epochs for r in others):
        print(f"[students] not keeping the seeds of {path}: another teacher or recipe wrote it")
        return [], {}
    print(f"[students] keeping seeds {sorted({int(r['seed']) for r in others})} from {path}")
    return [{k: v for k, v in r.items() if k not in ("dataset", "profile")} for r in others], sidecar


def diverged(meta: dict, classes: int) -> bool:
    """Whether a student ended at chance: validation top-1 within 1 point of 100/classes %."""
    return meta["val_top1_acc"] <= 100.0 / classes + 1.0


def tune_dkd(ctx: RunContext, teacher: VGG, teacher_meta: dict) -> tuple[str, list[dict]]:
    """Train (or load) every DKD_GRID candidate at ctx.seed and pick the best on validation.

    Returns (name of the candidate with the highest final validation top-1, ties to the first in
    DKD_GRID order; one dkd_tuning.csv row per candidate: settings, val and test top-1, diverged,
    selected). Test accuracy is reported, never used to choose.
    """
    rows = []
    for name in DKD_GRID:
        _, meta = dkd_candidate(ctx, name, teacher, teacher_meta)
        rows.append({"candidate": name, **_grid_settings(name), "seed": ctx.seed,
                     "val_top1_acc": round(meta["val_top1_acc"], 2), "top1_acc": meta["test_top1_acc"],
                     "diverged": diverged(meta, num_classes(ctx.dataset)),
                     "train_seconds": round(meta["train_seconds"], 1)})
    best = max(rows, key=lambda r: r["val_top1_acc"])["candidate"]
    for row in rows:
        row["selected"] = row["candidate"] == best
    print(f"[dkd] selected on validation: {best} ({DKD_GRID[best] or 'published settings'})")
    return best, rows


def student_row(meta: dict) -> dict:
    """students.csv row of a cached student's metadata."""
    return {"method": meta["method"], "teacher": meta["teacher"], "seed": meta["seed"],
            "epochs": meta["epochs"], "top1_acc": meta["test_top1_acc"], "top5_acc": meta["test_top5_acc"],
            "val_top1_acc": round(meta["val_top1_acc"], 2), "train_seconds": round(meta["train_seconds"], 1),
            "selected_settings": meta.get("selected", "")}


@torch.inference_mode()
def alignment(student: nn.Module, teacher: nn.Module, images: torch.Tensor, dataset: str,
              temperature: float = SOFT_TEMPERATURE) -> dict:
    """How close ``student`` is to ``teacher`` on uint8 ``images`` [N,3,32,32]:
    kl_to_teacher = KL(p_T || p_S) of probabilities softened by ``temperature`` (nats, batch
    mean); top1_agreement = % of images with the same top-1 class; prob_cosine = mean cosine
    similarity of the temperature-1 probability vectors."""
    s = predict_logits(student, images, dataset)
    t = predict_logits(teacher, images, dataset)
    kl = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean")
    agreement = 100.0 * int((s.argmax(1) == t.argmax(1)).sum()) / len(s)
    cosine = F.cosine_similarity(F.softmax(s, 1), F.softmax(t, 1), dim=1).mean()
    return {"kl_to_teacher": float(kl), "top1_agreement": agreement, "prob_cosine": float(cosine),
            "temperature": temperature}


def methods_needing_teacher() -> list[str]:
    """Method names whose class needs a teacher (all but S_I and label smoothing)."""
    return [name for name, cls in METHODS.items() if cls.needs_teacher]


JITTER_SEED = 1234   # the same colour jitter of the test images for every model


def get_colour_teacher(ctx: RunContext, teacher: VGG, teacher_meta: dict) -> tuple[VGG, dict]:
    """``teacher`` fine-tuned with colour-jitter augmentation (the profile's finetune_epochs, the
    fine-tune recipe plus colour jitter), cached as ``<teacher>_colour_seed<seed>`` and keyed by
    the sha256 of ``teacher``'s weights (its ``base teacher``): a retrained teacher retrains it."""
    recipe = finetune_recipe(ctx).but(color_jitter=True)
    name = teacher_meta["name"].replace("_seed", "_colour_seed")
    base = weights_sha256(teacher)
    return train_and_cache(ctx, name, copy.deepcopy(teacher), recipe, inputs={"base teacher": base},
                           code_of=__name__, finetuned_from=base, architecture=teacher_meta.get("architecture"))


def clean_and_jitter_top1(model: nn.Module, ctx: RunContext) -> dict:
    """Test top-1 (%) on clean images and on the same images colour-jittered (fixed seed)."""
    images, labels = ctx.splits.test_images, ctx.splits.test_labels
    generator = torch.Generator(device=images.device).manual_seed(JITTER_SEED)
    clean = accuracy_from_logits(predict_logits(model, images, ctx.dataset), labels)["top1_acc"]
    jitter = accuracy_from_logits(predict_logits(model, images, ctx.dataset, jitter_generator=generator),
                                  labels)["top1_acc"]
    return {"top1_clean": clean, "top1_jitter": jitter, "jitter_drop_points": round(clean - jitter, 2)}
