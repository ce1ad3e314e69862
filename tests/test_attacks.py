"""FGSM and PGD under an L∞ budget, and the same attacks from IBM ART."""

import numpy as np
import pytest
import torch
from torch import nn

from medlab import attacks
from medlab.models import small_cnn


@pytest.fixture
def model_and_data():
    torch.manual_seed(0)
    model = small_cnn(widths=(4, 8)).eval()
    return model, torch.rand(6, 1, 16, 16), torch.tensor([0.0, 1.0] * 3)


def _loss(model, x, y):
    with torch.no_grad():
        return nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y).item()


def test_attacks_stay_in_the_budget_and_the_range_and_raise_the_loss(model_and_data):
    model, x, y = model_and_data
    for adv in (attacks.fgsm(model, x, y, eps=0.03), attacks.pgd(model, x, y, eps=0.03, steps=5),
                attacks.pgd(model, x, y, eps=0.03, steps=5, random_start=True, generator=torch.Generator().manual_seed(0))):
        assert adv.shape == x.shape and (adv - x).abs().max() <= 0.03 + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
        assert _loss(model, adv, y) > _loss(model, x, y)
    assert _loss(model, attacks.pgd(model, x, y, eps=0.03, steps=10), y) >= _loss(model, attacks.fgsm(model, x, y, eps=0.03), y)
    assert torch.equal(attacks.pgd(model, x, y, eps=0.0), x)


def test_one_pgd_step_of_the_whole_budget_is_fgsm(model_and_data):
    model, x, y = model_and_data
    torch.testing.assert_close(attacks.pgd(model, x, y, eps=0.02, steps=1, step_size=0.02), attacks.fgsm(model, x, y, eps=0.02))


def test_ours_agree_with_art(model_and_data):
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    model, x, y = model_and_data
    classifier = attacks.art_classifier(model, input_shape=(1, 16, 16), device=torch.device("cpu"))
    art_fgsm = FastGradientMethod(classifier, eps=0.02).generate(x.numpy(), y=y.long().numpy())
    np.testing.assert_allclose(art_fgsm, attacks.fgsm(model, x, y, eps=0.02).numpy(), atol=1e-6)
    art_pgd = ProjectedGradientDescent(classifier, eps=0.02, eps_step=0.005, max_iter=10, num_random_init=0,
                                       verbose=False).generate(x.numpy(), y=y.long().numpy())
    ours = attacks.pgd(model, x, y, eps=0.02, steps=10, step_size=0.005).numpy()
    assert np.mean(np.isclose(art_pgd, ours, atol=1e-5)) > 0.99  # sign() of a gradient near 0 may differ


def test_two_logits_give_binary_cross_entropy():
    z = torch.randn(5, 1)
    y = torch.tensor([0, 1, 1, 0, 1])
    two = attacks.TwoLogits(nn.Identity())(z)
    torch.testing.assert_close(nn.functional.cross_entropy(two, y),
                               nn.functional.binary_cross_entropy_with_logits(z[:, 0], y.float()))


def test_attacks_name_what_is_wrong(model_and_data):
    model, x, y = model_and_data
    with pytest.raises(ValueError, match="6 images but 2 labels"):
        attacks.fgsm(model, x, y[:2], eps=0.01)
    with pytest.raises(ValueError, match="eps must be a number >= 0"):
        attacks.pgd(model, x, y, eps=-1)
    with pytest.raises(ValueError, match=r"float tensor \(N, C, H, W\)"):
        attacks.fgsm(model, x[0], y, eps=0.01)
