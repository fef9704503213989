"""What a stage does, in counts: its trainings and its evaluation work, for a profile.

The stage declaration (``study.stages``) gives every stage a ``work(stage, settings)`` function
that returns a ``StageWork``; the cost plan prices it (``study.plan``) and the runner records it
in the stage's completion record (``study.records``), so a changed profile setting reruns exactly
the stages whose work it changes. Trainings that a stage runs as ``common.jobs.Job``s are read
from the very jobs the stage runs (``training_of``); the others are described here by the
functions that train them (``baseline_job``, ``finetune_job``, ``qat_job``).

Counting needs only the profile and the standard CIFAR split sizes: no data is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.flags import DEFAULT_SEED
from common.data import CIFAR_TEST_IMAGES, CIFAR_TRAIN_IMAGES
from common.jobs import Job
from common.profiles import Profile

NO_TEACHER = "none"
CHANNEL_PRUNED = "vgg11-channel-pruned"     # the pruning study's 70% channel-pruned VGG-11
COLOUR_SUFFIX = "-colour"                   # a teacher fine-tuned with colour jitter, e.g. vgg16-colour
SEED = DEFAULT_SEED                         # run_all passes no --seed: every script runs at its default


@dataclass(frozen=True)
class Sizes:
    """Images per split for a profile (counts, not loaded)."""

    train: int          # the training split
    val: int            # the validation split (carved from train)
    test: int           # the test split evaluated
    calibration: int    # quantization calibration subset of train
    per_epoch: int      # images ``fit`` draws per epoch (whole batches of ``batch_size``)

    @classmethod
    def of(cls, profile: Profile) -> "Sizes":
        """Split sizes of ``profile`` on CIFAR (50,000 train images, 10,000 test images)."""
        from quantization.study import CALIBRATION_IMAGES

        available = CIFAR_TRAIN_IMAGES - profile.val_images
        train = min(profile.train_images or available, available)
        test = min(profile.test_images or CIFAR_TEST_IMAGES, CIFAR_TEST_IMAGES)
        per_epoch = (train // profile.batch_size) * profile.batch_size if train >= profile.batch_size else train
        return cls(train, profile.val_images, test, min(CALIBRATION_IMAGES, train), per_epoch)


@dataclass(frozen=True)
class Training:
    """One training (one ``fit`` call) and the evaluations that belong to it."""

    stage: str
    name: str                   # checkpoint name (cached) or fit's label (not cached)
    model: str                  # vgg11 | vgg16 | vgg19 | vgg11-channel-pruned
    epochs: int
    images_per_epoch: int
    teacher: str = NO_TEACHER   # none | vgg16 | vgg19 | vgg16-colour (a teacher forward per step)
    variant: str = "plain"      # plain | fake-quant | pt2e-qat (study.throughput)
    eval_images: int = 0        # validation after every epoch and the readings before/after it
    cached: bool = True         # a checkpoint later stages reuse: counted once, by name

    @property
    def train_images(self) -> int:
        """Images through the training step over all epochs."""
        return self.epochs * self.images_per_epoch

    @property
    def eval_variant(self) -> str:
        """How its evaluations run: through fake-quantizers for a QAT model, else plain."""
        return "plain" if self.variant == "plain" else "fake-quant"


@dataclass(frozen=True)
class Evaluation:
    """Forward work of a stage outside trainings: ``images`` through ``model``."""

    stage: str
    what: str
    model: str
    images: int
    variant: str = "plain"          # plain | fake-quant (activation fake-quantizers)
    training_pass: bool = False     # priced as training steps (Hessian-vector products)


@dataclass
class StageWork:
    """What one stage asks for: trainings (cached ones may have been trained earlier) and forwards."""

    jobs: list[Training] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)


@dataclass(frozen=True)
class PlanSettings:
    """What a stage's work depends on besides its code: the profile, the stage's own arguments
    (``study.stages.Stage.arguments``) and the DKD candidate chosen on validation."""

    profile: Profile
    dkd_selected: str | None = None     # None: not known before the students stage ran
    stages: tuple = ()                  # the declaration (``study.stages.STAGES``): a stage's work
                                        # may read another's, e.g. the students later stages use

    def stage(self, name: str):
        """The declared stage called ``name``."""
        return next(stage for stage in self.stages if stage.name == name)

    @property
    def sizes(self) -> Sizes:
        return Sizes.of(self.profile)


def training_of(stage: str, job: Job, s: PlanSettings) -> Training:
    """The ``Training`` a stage's ``Job`` does: ``job.model`` for the profile's ``job.epochs_of``
    epochs, validated after every epoch and read on test once (``train_and_cache``)."""
    z = s.sizes
    epochs = getattr(s.profile, job.epochs_of)
    return Training(stage, job.key or job.label, job.model, epochs, z.per_epoch,
                    teacher=job.teacher or NO_TEACHER, eval_images=epochs * z.val + z.test)


def baseline_job(stage: str, model: str, s: PlanSettings) -> Training:
    """``get_baseline`` run inline: the profile's epochs, validation every epoch, test once."""
    from common.baselines import baseline_jobs

    return training_of(stage, baseline_jobs([model], seed=SEED)[0], s)


def finetune_job(stage: str, name: str, model: str, s: PlanSettings, cached: bool,
                 epochs: int | None = None) -> Training:
    """``pruning.study.finetune_and_measure``: validation and test before, validation every
    epoch, test after (epochs default to the profile's finetune_epochs)."""
    z = s.sizes
    epochs = epochs or s.profile.finetune_epochs
    return Training(stage, name, model, epochs, z.per_epoch, eval_images=(epochs + 1) * z.val + 2 * z.test,
                    cached=cached)


def qat_job(stage: str, name: str, model: str, variant: str, epochs: int, s: PlanSettings,
            validate: bool, readings: int) -> Training:
    """``quantization.study.qat_finetune``: validation every epoch when ``validate``, plus
    ``readings`` test-sized readings after it. Nothing caches a QAT model."""
    z = s.sizes
    return Training(stage, name, model, epochs, z.per_epoch, variant=variant,
                    eval_images=(epochs * z.val if validate else 0) + readings * z.test, cached=False)


def readings(stage: str, what: str, model: str, count: int, s: PlanSettings, variant: str = "plain",
             splits: str = "val+test") -> Evaluation:
    """``count`` readings of ``model`` on ``splits`` ('val', 'test' or 'val+test')."""
    z = s.sizes
    per = {"val": z.val, "test": z.test, "val+test": z.val + z.test}[splits]
    return Evaluation(stage, f"{what} ({count} x {splits})", model, count * per, variant)


def calibrations(stage: str, what: str, count: int, s: PlanSettings, model: str = "vgg11") -> Evaluation:
    """``count`` calibration passes over the training subset of ``quantization.study``."""
    return Evaluation(stage, f"{what} ({count} x calibration)", model, count * s.sizes.calibration)
