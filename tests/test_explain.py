"""Saliency maps and the checks that measure them: pointing game, mass inside, sanity, deletion."""

import numpy as np
import pytest
import torch
from torch import nn

from medlab import explain
from medlab.models import small_cnn


class Spot(nn.Module):
    """A 'model' whose logit is the mean intensity of a fixed square: its evidence is known."""

    def __init__(self, size=16, square=(4, 8)):
        super().__init__()
        weight = torch.zeros(1, 1, size, size)
        weight[..., square[0]:square[1], square[0]:square[1]] = 1.0
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.dirac_(self.conv.weight)
        self.register_buffer("weight", weight / weight.sum())

    def forward(self, x):
        return (torch.relu(self.conv(x)) * self.weight).sum(dim=(1, 2, 3))[:, None] * 10


@pytest.fixture
def spot_images():
    torch.manual_seed(0)
    images = torch.rand(3, 1, 16, 16) * 0.2  # a dim background, and a bright square the logit reads
    images[..., 4:8, 4:8] += 0.7
    return images


def _square(n=3, size=16):
    mask = np.zeros((n, size, size), bool)
    mask[:, 4:8, 4:8] = True
    return mask


@pytest.mark.parametrize("method", explain.METHODS)
def test_every_method_finds_the_evidence_of_a_model_whose_evidence_is_known(method, spot_images):
    maps = explain.saliency(Spot(), spot_images, method=method, layer="conv")
    assert maps.shape == (3, 16, 16) and maps.dtype == np.float32
    assert explain.pointing_game(maps, _square()).all()
    assert (explain.energy_inside(maps, _square()) > 4 * explain.area_fraction(_square())).all()


def test_integrated_gradients_add_up_to_the_change_of_the_logit():
    torch.manual_seed(1)
    model, x = small_cnn(widths=(4, 8)).eval(), torch.rand(4, 1, 16, 16)
    attributions = explain.integrated_gradients(model, x, steps=128)
    with torch.no_grad():
        change = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    np.testing.assert_allclose(attributions.sum(dim=(1, 2)), change, rtol=0.05, atol=1e-4)


def test_grad_cam_agrees_with_monai():
    import monai.visualize as mv

    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    for seed in range(50):  # an untrained network whose maps are not 0 everywhere
        torch.manual_seed(seed)
        model = small_cnn(widths=(4, 8, 8)).eval()
        ours = explain.grad_cam(model, x, layer="1")
        if (ours.amax(dim=(1, 2)) > 0).all():
            break
    theirs = mv.GradCAM(nn_module=model, target_layers="1")(x, class_idx=0)[:, 0]
    shown = ours.amax(dim=(1, 2)) > 0  # a map that is 0 everywhere MONAI shows as 1 everywhere
    assert shown.any()
    np.testing.assert_allclose(ours[shown], 1 - theirs[shown], atol=1e-5)  # MONAI scales the maximum to 0
    ours_pp = explain.grad_cam(model, x, layer="1", plus=True)
    theirs_pp = torch.cat([mv.GradCAMpp(nn_module=model, target_layers="1")(x[i:i + 1], class_idx=0)[:, 0]
                           for i in range(3)])
    shown = ours_pp.amax(dim=(1, 2)) > 0
    np.testing.assert_allclose(ours_pp[shown], 1 - theirs_pp[shown], atol=1e-4)


def test_guided_backprop_leaves_the_model_as_it_was():
    torch.manual_seed(3)
    model, x = small_cnn(widths=(4, 8)).eval(), torch.rand(2, 1, 16, 16)
    explain.guided_backprop(model, x)
    assert all(type(m) is not explain._GuidedReLUModule for m in model.modules())


def test_saliency_names_what_is_wrong():
    model = small_cnn(widths=(4, 8))
    with pytest.raises(ValueError, match="unknown saliency method 'lime'"):
        explain.saliency(model, torch.rand(1, 1, 16, 16), method="lime")
    with pytest.raises(ValueError, match="needs the name of a convolutional layer"):
        explain.saliency(model, torch.rand(1, 1, 16, 16), method="gradcam")
    with pytest.raises(ValueError, match="has no layer 'head'"):
        explain.grad_cam(model, torch.rand(1, 1, 16, 16), layer="head")
    with pytest.raises(ValueError, match=r"float tensor \(N, C, H, W\)"):
        explain.saliency(model, torch.rand(16, 16), method="gradient")
    with pytest.raises(ValueError, match=r"one logit per image, \(N, 1\)"):
        explain.saliency(small_cnn(widths=(4,), outputs=2), torch.rand(1, 1, 16, 16), method="gradient")


def test_pointing_game_energy_and_chance():
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :2] = True
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0], maps[1, 3, 3] = 1.0, 1.0
    maps[1, 0, 0] = 0.5
    assert explain.pointing_game(maps, masks).tolist() == [True, False]
    np.testing.assert_allclose(explain.energy_inside(maps, masks), [1.0, 0.5 / 1.5])
    np.testing.assert_allclose(explain.area_fraction(masks), [0.25, 0.25])
    assert explain.energy_inside(np.ones((2, 4, 4)), masks) == pytest.approx([0.25, 0.25])
    assert explain.energy_inside(-np.ones((2, 4, 4)), masks).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="at least one pixel"):
        explain.pointing_game(maps, np.zeros((2, 4, 4), bool))
    with pytest.raises(ValueError, match=r"\(N, H, W\) and alike"):
        explain.energy_inside(maps[0], masks)


def test_rank_correlation():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8))
    r = explain.rank_correlation(a, np.stack([a[0] * 2 + 1, -a[1], rng.random((8, 8))]))
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and abs(r[2]) < 0.4
    assert np.isnan(explain.rank_correlation(np.ones((1, 4, 4)), a[:1, :4, :4])).all()


def test_cascading_randomization_goes_from_the_output_back_and_spares_the_model():
    torch.manual_seed(4)
    model = small_cnn(widths=(4, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = explain.cascading_randomization(model, seed=0)
    assert [name for name, _ in steps] == ["4", "1.1", "1.0", "0.1", "0.0"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    first, last = steps[0][1].state_dict(), steps[-1][1].state_dict()
    assert not torch.equal(first["4.weight"], before["4.weight"]) and torch.equal(first["0.0.weight"], before["0.0.weight"])
    assert not torch.equal(last["0.0.weight"], before["0.0.weight"])


def test_deletion_curve_falls_faster_along_the_true_evidence(spot_images):
    model = Spot()
    truth = np.broadcast_to(_square().astype(float), (3, 16, 16))
    along = explain.deletion_curve(model, spot_images, truth, steps=8, fill=0.0)
    against = explain.deletion_curve(model, spot_images, 1 - truth, steps=8, fill=0.0)
    assert along.shape == (9,) and along[0] == pytest.approx(against[0]) and along[-1] == pytest.approx(0.5)
    assert along.mean() < against.mean() and along[1] == pytest.approx(0.5)
    twins = spot_images.clone()
    twins[..., 4:8, 4:8] = 0.1  # the same images without the bright square
    towards_twin = explain.deletion_curve(model, spot_images, truth, steps=8, fill=twins)
    assert towards_twin[-1] < towards_twin[0] and np.allclose(towards_twin[1:], towards_twin[-1])
    with pytest.raises(ValueError, match=r"maps must be \(N, H, W\)"):
        explain.deletion_curve(model, spot_images, truth[:2])
    with pytest.raises(ValueError, match="fill images must have the images' shape"):
        explain.deletion_curve(model, spot_images, truth, fill=twins[:2])
