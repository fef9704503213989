"""The CIFAR loader reads the real pickle layouts, splits deterministically and fails clearly."""

from pathlib import Path

import pytest
import torch

from common import data
from common.data import DatasetNotFoundError, load_cifar, load_splits, resolve_data_dir
from tests.conftest import TEST_IMAGES, TRAIN_PER_BATCH


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_load_cifar_shapes_and_dtypes(cifar_root, name, classes):
    images, labels = load_cifar(name, cifar_root, "train")
    assert images.shape == (5 * TRAIN_PER_BATCH, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (5 * TRAIN_PER_BATCH,) and labels.dtype == torch.int64
    assert 0 <= labels.min() and labels.max() < classes
    test_images, test_labels = load_cifar(name, cifar_root, "test")
    assert test_images.shape == (TEST_IMAGES, 3, 32, 32) and len(test_labels) == TEST_IMAGES


def test_pixels_come_back_as_rgb_planes(cifar_root):
    import pickle
    with open(cifar_root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="latin1")["data"]
    images, _ = load_cifar("cifar10", cifar_root, "train")
    assert torch.equal(images[0, 0].flatten(), torch.from_numpy(raw[0, :1024]))   # red plane
    assert torch.equal(images[0, 2].flatten(), torch.from_numpy(raw[0, 2048:]))   # blue plane


def test_validation_split_is_fixed_and_disjoint(cifar_root):
    a = load_splits("cifar10", cifar_root, val_images=100)
    b = load_splits("cifar10", cifar_root, val_images=100)
    assert torch.equal(a.val_images, b.val_images) and torch.equal(a.train_labels, b.train_labels)
    assert len(a.val_images) == 100 and len(a.train_images) == 5 * TRAIN_PER_BATCH - 100
    train_rows = {bytes(x.numpy()) for x in a.train_images}
    assert not any(bytes(x.numpy()) in train_rows for x in a.val_images)


def test_subsets_cap_train_and_test(cifar_root):
    s = load_splits("cifar100", cifar_root, val_images=50, train_images=200, test_images=64)
    assert (len(s.train_images), len(s.val_images), len(s.test_images)) == (200, 50, 64)
    assert s.num_classes == 100


def test_missing_dataset_names_the_expected_path(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_cifar("cifar100", tmp_path, "train", download=False)
    assert str(tmp_path / "cifar-100-python") in str(err.value)


def test_failed_download_gives_the_clear_error(tmp_path, monkeypatch):
    def offline(name, root):
        raise OSError("no network")
    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_cifar("cifar10", tmp_path, "test")


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR_DIR", str(tmp_path))
    assert resolve_data_dir("elsewhere") == Path("elsewhere")
    assert resolve_data_dir(None) == tmp_path
    monkeypatch.delenv("CIFAR_DIR")
    assert str(resolve_data_dir(None)) == "data"


def test_unknown_dataset_and_split_are_refused(cifar_root):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_cifar("mnist", cifar_root, "train")
    with pytest.raises(ValueError, match="split"):
        load_cifar("cifar10", cifar_root, "val")


def test_a_submitted_job_never_downloads_missing_data(tmp_path, monkeypatch):
    monkeypatch.setenv(data.NO_DOWNLOAD, "1")
    monkeypatch.setattr(data, "_download", lambda name, root: pytest.fail("a job downloaded the data"))
    with pytest.raises(data.DatasetNotFoundError, match="does not download it"):
        data.ensure_dataset("cifar10", tmp_path)


def test_class_names_of_each_dataset_without_its_pixels():
    assert data.class_names("cifar10")[4] == "deer" and len(data.class_names("cifar10")) == data.num_classes("cifar10")
    names = data.class_names("cifar100")
    assert len(set(names)) == data.num_classes("cifar100") and list(names) == sorted(names)   # the meta file's order
    with pytest.raises(ValueError, match="unknown dataset"):
        data.class_names("mnist")
