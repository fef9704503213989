"""Tensor-side augmentation keeps shapes, really changes pixels, and crops real windows."""

import torch
import torch.nn.functional as F

from common.augment import BatchTransform, color_jitter, random_crop, random_flip


def batch(n=16, seed=0):
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_random_crop_is_a_window_of_the_padded_image():
    x = batch()
    out = random_crop(x, 4, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(len(x)):
        windows = [(dy, dx) for dy in range(9) for dx in range(9)
                   if torch.equal(padded[i, :, dy:dy + 32, dx:dx + 32], out[i])]
        assert windows, f"image {i} is not a crop of its padded source"
    assert not torch.equal(out, x)  # 16 images all at offset (4,4) has probability 81^-16


def test_random_flip_mirrors_about_half():
    x = batch(200)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((flipped | kept).all())
    assert 60 < int(flipped.sum()) < 140


def test_color_jitter_changes_colours_within_range():
    x = batch().float() / 255
    out = color_jitter(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().mean() > 0.01


def test_color_jitter_with_zero_strength_is_identity():
    x = batch().float() / 255
    out = color_jitter(x, 0, 0, 0, 0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-6)


def test_hue_rotation_keeps_gray_pixels_gray():
    gray = torch.full((4, 3, 8, 8), 0.5)
    out = color_jitter(gray, 0, 0, 0, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, gray, atol=1e-5)


def test_batch_transform_normalises_to_channels_last_float():
    x = batch()
    plain = BatchTransform("cifar10")(x)
    assert plain.dtype == torch.float32 and plain.is_contiguous(memory_format=torch.channels_last)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    assert torch.allclose(plain, (x.float() / 255 - mean) / std, atol=1e-5)
    augmented = BatchTransform("cifar10", augment=True, generator=torch.Generator().manual_seed(0))(x)
    assert augmented.shape == plain.shape and not torch.allclose(augmented, plain)
