"""CIFAR VGGs: shapes, width multiplier, feature maps, rebuild from config."""

import pytest
import torch

from common.models import VGG_STAGES, build_model, count_parameters, model_from_config


@pytest.mark.parametrize("name,convs", [("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16)])
def test_output_shape_and_depth(name, convs):
    model = build_model(name, num_classes=100, width=0.125).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert len(model.convs()) == convs


def test_width_multiplier_scales_every_layer():
    half = build_model("vgg16", num_classes=10, width=0.5)
    widths = [c.out_channels for c in half.convs()]
    assert widths == [round(c / 2) for stage in VGG_STAGES["vgg16"] for c in stage]
    assert half.classifier[1].in_features == 256 and half.classifier[1].out_features == 256
    full = build_model("vgg16", num_classes=10, width=1.0)
    assert 3.5 < count_parameters(full) / count_parameters(half) < 4.1  # params scale ~ width^2


def test_features_come_from_the_same_forward():
    model = build_model("vgg11", num_classes=10, width=0.25).eval()
    x = torch.randn(3, 3, 32, 32)
    logits, feats = model.forward_with_features(x)
    assert [tuple(f.shape) for f in feats] == [(3, 16, 32, 32), (3, 32, 16, 16), (3, 64, 8, 8),
                                              (3, 128, 4, 4), (3, 128, 2, 2)]
    assert torch.equal(logits, model(x))
    assert all(bool((f >= 0).all()) for f in feats)  # post-ReLU


def test_rebuild_from_config_gives_the_same_function():
    model = build_model("vgg13", num_classes=10, width=0.25).eval()
    copy = model_from_config(model.config)
    copy.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), copy.eval()(x))


def test_unknown_model_and_bad_width():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet18")
    with pytest.raises(ValueError, match="width"):
        build_model("vgg11", width=0)


def test_macs_are_counted_on_the_model_as_a_hand_count_gives_them():
    from common.measure import count_macs

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 8, 1), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 10))
    by_hand = 32 * 32 * 4 * (3 * 3 * 3) + 16 * 16 * 8 * 4 + 8 * 10   # out pixels x out channels x kernel
    assert count_macs(net) == by_hand == 118_864
    assert net.training                                                # the count leaves the mode as it was
    assert count_macs(build_model("vgg11", 100, 1.0)) > count_macs(build_model("vgg11", 100, 0.5)) > 0
