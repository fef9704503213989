"""CIFAR-10/100 as uint8 tensors in memory, a seeded validation split, and a batch iterator.

The loader reads the standard "python version" pickles itself (torchvision is used only to
download them): ``cifar-10-batches-py/`` or ``cifar-100-python/`` under the data root, which is
``--data-dir``, else ``$CIFAR_DIR``, else ``./data``. Augmentation happens on whole batches of
tensors on the training device (``common.augment``), never per image.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from common.errors import UserError
from common.flags import DATASET_NAMES
from common.results import file_sha256

DATASETS = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "label_key": "labels",
        "num_classes": 10,
        # Per-channel mean/std of the training pixels in [0,1] (standard constants).
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "label_key": "fine_labels",
        "num_classes": 100,
        "mean": (0.5071, 0.4865, 0.4409),
        "std": (0.2673, 0.2564, 0.2762),
    },
}
assert tuple(sorted(DATASETS)) == tuple(sorted(DATASET_NAMES)), "--dataset's choices (common.flags) are these"


class DatasetNotFoundError(UserError, FileNotFoundError):
    """The CIFAR pickles are not where they were looked for and could not be downloaded."""


# Images per split of both CIFAR datasets (the validation split is carved from train): what a cost
# plan counts without loading the data.
CIFAR_TRAIN_IMAGES = 50_000
CIFAR_TEST_IMAGES = 10_000

# The class names of each dataset in label order, as the datasets' own meta files list them
# (cifar-10-batches-py/batches.meta 'label_names', cifar-100-python/meta 'fine_label_names').
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)


def class_names(name: str) -> tuple[str, ...]:
    """The class names of 'cifar10' or 'cifar100', indexed by label (no pixels are read)."""
    _spec(name)
    return CIFAR10_CLASSES if name == "cifar10" else CIFAR100_CLASSES


def num_classes(name: str) -> int:
    """Number of classes of 'cifar10' (10) or 'cifar100' (100)."""
    return _spec(name)["num_classes"]


def _spec(name: str) -> dict:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Data root: the argument if given, else ``$CIFAR_DIR``, else ``./data``."""
    return Path(data_dir or os.environ.get("CIFAR_DIR") or "data")


def _missing_files(name: str, root: Path) -> list[Path]:
    spec = _spec(name)
    folder = root / spec["folder"]
    return [folder / f for f in spec["train"] + spec["test"] if not (folder / f).is_file()]


# Set (to 1) in the environment of jobs on other machines (``study.launch``): the submitting process
# fetched the data once before it submitted anything, so a job that does not find it stops with
# one line instead of downloading it again, perhaps at the same time as its array's other jobs.
NO_DOWNLOAD = "CIFAR_NO_DOWNLOAD"


def _download(name: str, root: Path) -> None:
    """Fetch the official archive with torchvision (it verifies the md5 of the download)."""
    from torchvision import datasets  # imported here: only needed when online and missing

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    root.mkdir(parents=True, exist_ok=True)
    cls(str(root), train=True, download=True)


def ensure_dataset(name: str, root: str | os.PathLike, download: bool = True) -> Path:
    """Return the dataset folder, downloading it first when missing (and allowed: ``download``
    and no ``$CIFAR_NO_DOWNLOAD``, which a submitted job has).

    Raises DatasetNotFoundError with the expected path when it is missing and cannot be fetched.
    """
    root = Path(root)
    spec = _spec(name)
    missing = _missing_files(name, root)
    if missing and os.environ.get(NO_DOWNLOAD, "0") not in ("", "0"):
        raise DatasetNotFoundError(
            f"{name}: this job found no data in {root / spec['folder']}/ and does not download it "
            f"(${NO_DOWNLOAD} is set: the submitting run fetches it once); put it on a file system "
            f"the nodes share and point --data-dir at it")
    if missing and download:
        print(f"[data] {name} not found under {root}; downloading with torchvision ...")
        try:
            _download(name, root)
        except Exception as exc:  # offline, DNS failure, md5 mismatch ...
            print(f"[data] download failed: {exc}")
        missing = _missing_files(name, root)
    if missing:
        raise DatasetNotFoundError(
            f"{name}: expected the pickled 'python version' in {root / spec['folder']}/ "
            f"(missing: {', '.join(p.name for p in missing)}). Put the extracted folder "
            f"'{spec['folder']}' there, or point --data-dir / $CIFAR_DIR at its parent "
            f"(torchvision downloads it there when the machine is online)."
        )
    return root / spec["folder"]


def load_cifar(name: str, root: str | os.PathLike, split: str,
               download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a whole split from the pickles.

    Returns ``images`` uint8 [N,3,32,32] (RGB) and ``labels`` int64 [N]
    (N = 50000 train / 10000 test for the real datasets).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    spec = _spec(name)
    folder = ensure_dataset(name, root, download=download)
    chunks, labels = [], []
    for fname in spec[split]:
        try:
            with open(folder / fname, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            chunks.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(entry[spec["label_key"]])
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
            raise UserError(f"{folder / fname} is damaged ({type(exc).__name__}: {str(exc)[:80]}); delete "
                            f"{folder} and download or rebuild it") from None
    images = torch.from_numpy(np.concatenate(chunks))
    return images, torch.tensor(labels, dtype=torch.int64)


@dataclass
class CifarSplits:
    """Train / validation / test tensors of one dataset (uint8 images, int64 labels)."""

    name: str
    num_classes: int
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    key: dict = field(default_factory=dict)   # what decides these splits (``split_key``)

    def to(self, device: torch.device | str) -> "CifarSplits":
        """Move every tensor to ``device`` (the whole dataset lives on the training device)."""
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(self).items()}
        return CifarSplits(**moved)

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` of 'train', 'val' or 'test'."""
        return getattr(self, f"{which}_images"), getattr(self, f"{which}_labels")


VAL_SPLIT_SEED = 20240101  # fixed: the validation split never changes with the run's seed


def files_sha256(name: str, root: str | os.PathLike) -> str | None:
    """One sha256 of the dataset's train and test pickles under ``root`` (each file's sha256, in
    order): the data a model is trained on. None when a file is missing."""
    spec = _spec(name)
    folder = Path(root) / spec["folder"]
    digest = hashlib.sha256()
    for fname in spec["train"] + spec["test"]:
        path = folder / fname
        if not path.is_file():
            return None
        digest.update(f"{fname}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def split_key(name: str, root: str | os.PathLike, val_images: int, train_images: int | None = None,
              test_images: int | None = None) -> dict:
    """Everything that decides the splits ``load_splits`` returns: the dataset, the sha256 of its
    files, the split sizes and the seed that draws them. Part of every cached artefact's key
    (``common.cache``) and of every completion record."""
    return {"dataset": name, "files_sha256": files_sha256(name, root), "train_images": train_images,
            "val_images": val_images, "test_images": test_images, "split_seed": VAL_SPLIT_SEED}


def load_splits(name: str, root: str | os.PathLike, val_images: int,
                train_images: int | None = None, test_images: int | None = None,
                download: bool = True) -> CifarSplits:
    """Load train/test and carve a fixed, seeded validation split out of train.

    ``val_images`` images are held out of training; ``train_images`` / ``test_images`` cap the
    rest (a seeded subset, for the smoke profile); None keeps everything.
    """
    x_train, y_train = load_cifar(name, root, "train", download=download)
    x_test, y_test = load_cifar(name, root, "test", download=download)
    if val_images >= len(x_train):
        raise ValueError(f"val_images={val_images} leaves no training images (train has {len(x_train)})")
    gen = torch.Generator().manual_seed(VAL_SPLIT_SEED)
    order = torch.randperm(len(x_train), generator=gen)
    val_idx, train_idx = order[:val_images], order[val_images:]
    if train_images is not None:
        train_idx = train_idx[:train_images]
    if test_images is not None:
        test_order = torch.randperm(len(x_test), generator=gen)[:test_images]
        x_test, y_test = x_test[test_order], y_test[test_order]
    return CifarSplits(
        name=name, num_classes=num_classes(name),
        train_images=x_train[train_idx], train_labels=y_train[train_idx],
        val_images=x_train[val_idx], val_labels=y_train[val_idx],
        test_images=x_test, test_labels=y_test,
        key=split_key(name, root, val_images, train_images, test_images),
    )


def iterate_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                    transform: Callable[[torch.Tensor], torch.Tensor],
                    shuffle: bool = False, generator: torch.Generator | None = None,
                    drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(transform(images[idx]), labels[idx])`` batches from tensors already on device.

    ``transform`` maps a uint8 batch [B,3,32,32] to the model's input (augmentation and
    normalisation, see ``common.augment``). ``generator`` seeds the shuffle (CPU generator).
    """
    n = len(images)
    order = torch.randperm(n, generator=generator).to(images.device) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        yield transform(images[idx]), labels[idx]
