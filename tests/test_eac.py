"""E-Net enhancing: F + F_first ⊙ A with A max-pooled to the features, on a small VGG and on VGG16."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core import attention as att
from core.faces import detect_faces
from core.images import sample_photo
from models.eac import EACFeatures, Enhance, random_vgg16_features


def small_vgg() -> nn.Sequential:
    """Four groups (1, 1, 2 and 2 convs) of 4 channels, like VGG's `features`."""
    layers, channels = [], 3
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for convs in (1, 1, 2, 2):
            for _ in range(convs):
                layers += [nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(inplace=True)]
                channels = 4
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers).eval()


@pytest.fixture(scope="module")
def vgg16() -> EACFeatures:
    return EACFeatures(random_vgg16_features())


def test_enhance_adds_the_features_weighted_by_the_pooled_map():
    features = torch.rand(2, 5, 4, 4)
    assert torch.equal(Enhance()(features, torch.zeros(2, 1, 16, 16)), features)
    assert torch.allclose(Enhance()(features, torch.ones(2, 1, 16, 16)), 2 * features)
    attention = torch.zeros(2, 1, 16, 16)
    attention[:, :, 5, 6] = 0.5  # one pixel in the 4x4 block (1, 1): max pooling keeps it
    enhanced = Enhance()(features, attention)
    expected = features.clone()
    expected[:, :, 1, 1] *= 1.5
    assert torch.allclose(enhanced, expected)
    first = torch.rand(2, 5, 4, 4)
    assert torch.allclose(Enhance()(features, attention, first)[:, :, 1, 1],
                          features[:, :, 1, 1] + 0.5 * first[:, :, 1, 1])


def test_groups_three_and_four_are_enhanced_and_feed_on():
    network = EACFeatures(small_vgg())
    image = torch.rand(1, 3, 64, 64)
    attention = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        out = network(image, attention, until=4)
        plain = network(image, torch.zeros(1, 1, 64, 64), until=4)
    assert set(out) == {3, 4}
    for group, side in ((3, 16), (4, 8)):
        maps = out[group]
        assert maps.first.shape == maps.last.shape == maps.enhanced.shape == (1, 4, side, side)
        assert maps.attention.shape == (1, 1, side, side)
        assert torch.allclose(maps.enhanced, maps.last + maps.first * maps.attention)
        assert torch.equal(plain[group].enhanced, plain[group].last)
    # conv4 sees pool(conv3_all), so the attention reaches it through conv3 as well.
    assert not torch.allclose(out[4].first, plain[4].first)
    with torch.inference_mode():
        assert set(network(image, attention, until=3)) == {3}
    assert network.conv_names(3) == ("conv3_1", "conv3_2")


def test_vgg16_groups(vgg16):
    assert vgg16.conv_names(3) == ("conv3_1", "conv3_3")
    assert vgg16.conv_names(4) == ("conv4_1", "conv4_3")
    assert not vgg16.features.training


def test_enhance_face_on_the_sample(vgg16):
    photo = sample_photo()
    face = detect_faces(photo)[0]
    view = att.enhance_face(photo, face, vgg16, 3, ["AU12"])
    assert view.crop.shape == (224, 224, 3) and view.crop_map.shape == (224, 224)
    assert view.layers == ("conv3_1", "conv3_3")
    assert view.before.shape == view.after.shape == (256, 56, 56) and view.attention.shape == (56, 56)
    # AU12 is the two lip corners: in the lower half of the aligned face, one each side.
    rows, cols = np.nonzero(view.attention > 0.9)
    assert rows.min() > 28 and cols.min() < 28 < cols.max()
    outside = view.attention == 0
    np.testing.assert_array_equal(view.after[:, outside], view.before[:, outside])
    channel = view.strongest_channel()
    assert (view.after[channel] - view.before[channel]).mean() >= (view.after - view.before).mean(axis=(1, 2)).max()


def test_enhance_face_with_the_bundled_model():
    from core.checkpoint import BUNDLED_CHECKPOINT, load_checkpoint
    from models.eac import flat_features

    network = EACFeatures(flat_features(load_checkpoint(BUNDLED_CHECKPOINT).build()))
    photo = sample_photo()
    face = detect_faces(photo)[0]
    view = att.enhance_face(photo, face, network, 4, None, arch="face_vgg")
    assert view.layers == ("conv4_1", "conv4_2")
    assert view.before.shape == view.after.shape == (256, 6, 6) and view.attention.shape == (6, 6)
    assert (view.after >= view.before - 1e-6).all(), "ReLU features only grow where the map is positive"
