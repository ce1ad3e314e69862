"""Uncertainty from several predictions per case, and selective prediction."""

import numpy as np
import pytest
import torch

from medlab import uncertainty
from medlab.models import small_cnn


def test_entropy_and_mutual_information():
    agree, disagree = np.array([[0.5], [0.5]]), np.array([[0.0], [1.0]])
    assert uncertainty.predictive_entropy(agree)[0] == pytest.approx(np.log(2))
    assert uncertainty.mutual_information(agree)[0] == pytest.approx(0.0, abs=1e-12)
    assert uncertainty.mutual_information(disagree)[0] == pytest.approx(np.log(2), rel=1e-6)
    assert uncertainty.predictive_entropy(np.array([[1.0]]))[0] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match=r"\(K, N\) probabilities"):
        uncertainty.predictive_entropy([0.1, 0.2])
    with pytest.raises(ValueError, match="apply a sigmoid"):
        uncertainty.mutual_information([[2.0, 0.1]])


def test_mc_dropout_varies_ensembles_and_views_stack():
    torch.manual_seed(0)
    model, x, device = small_cnn(widths=(4, 8), dropout=0.5), torch.rand(5, 1, 16, 16), torch.device("cpu")
    samples = uncertainty.mc_dropout_probabilities(model, x, passes=8, device=device)
    assert samples.shape == (8, 5) and samples.std(axis=0).max() > 0 and not model.training
    again = uncertainty.mc_dropout_probabilities(model, x, passes=8, device=device)
    np.testing.assert_array_equal(samples, again)
    members = uncertainty.ensemble_probabilities([model, small_cnn(widths=(4, 8))], x, device=device)
    assert members.shape == (2, 5)
    views = uncertainty.tta_probabilities(model, x, views=[lambda b: b, lambda b: b.flip(-1)], device=device)
    assert views.shape == (2, 5) and not model.training
    with pytest.raises(ValueError, match="no dropout layer"):
        uncertainty.mc_dropout_probabilities(small_cnn(widths=(4, 8)), x, device=device)


def test_referring_the_uncertain_cases_raises_accuracy():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.7, 0.3, 0.45, 0.55])  # the last two are wrong, and near 0.5
    u = -np.abs(p - 0.5)
    curve = uncertainty.accuracy_coverage(y, p, u)
    np.testing.assert_allclose(curve["coverage"], np.arange(1, 7) / 6)
    assert curve["accuracy"][-1] == pytest.approx(4 / 6) and curve["accuracy"][3] == pytest.approx(1.0)
    assert uncertainty.selective_accuracy(y, p, u, coverage=4 / 6) == pytest.approx(1.0)
    assert uncertainty.selective_accuracy(y, p, u, coverage=1.0) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="6 cases but 2 uncertainties"):
        uncertainty.accuracy_coverage(y, p, u[:2])
