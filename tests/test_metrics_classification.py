"""Classification, calibration and bootstrap metrics against scikit-learn and by hand, and their
edge cases: a class absent, NaN scores, single-class resamples."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score

from medlab.metrics import (binary_rates, bootstrap_ci, brier_score, confusion, expected_calibration_error, fit_temperature,
                            paired_bootstrap, predictive_values, reliability_curve, roc_auc, sigmoid,
                            threshold_for_sensitivity, threshold_for_specificity)


def random_scores(seed, n=200):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, y * 1.2 + rng.normal(size=n)


@pytest.mark.parametrize("seed", range(5))
def test_counts_rates_and_auc_match_sklearn(seed):
    y, s = random_scores(seed)
    c = confusion(y, (s >= 0.5).astype(int))
    tn, fp, fn, tp = confusion_matrix(y, s >= 0.5).ravel()
    assert (c["tn"], c["fp"], c["fn"], c["tp"]) == (tn, fp, fn, tp)
    rates = binary_rates(y, s, threshold=0.5)
    assert rates["sensitivity"] == pytest.approx(tp / (tp + fn)) and rates["ppv"] == pytest.approx(tp / (tp + fp))
    assert rates["specificity"] == pytest.approx(tn / (tn + fp)) and rates["npv"] == pytest.approx(tn / (tn + fn))
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_edge_cases_have_defined_results_or_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="one class"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="no positive cases"):
        binary_rates([0, 0], [0.1, 0.9], threshold=0.5)
    with pytest.raises(ValueError, match="0 or 1"):
        confusion([0, 2], [0, 1])
    rates = binary_rates([0, 1], [0.1, 0.2], threshold=0.5)  # nothing called positive
    assert np.isnan(rates["ppv"]) and rates["npv"] == 0.5


def test_predictive_values_follow_bayes():
    ppv, npv = predictive_values(0.9, 0.8, [0.5, 0.05])
    assert ppv[0] == pytest.approx(0.45 / (0.45 + 0.1)) and ppv[1] < ppv[0] and npv[1] > npv[0]
    with pytest.raises(ValueError, match="prevalence"):
        predictive_values(0.9, 0.8, 1.5)


@pytest.mark.parametrize("seed", range(3))
def test_operating_points_reach_their_targets(seed):
    y, s = random_scores(seed)
    t = threshold_for_sensitivity(y, s, target=0.9)
    assert binary_rates(y, s, threshold=t)["sensitivity"] >= 0.9
    assert binary_rates(y, s, threshold=np.nextafter(t, np.inf))["sensitivity"] < 0.9
    t = threshold_for_specificity(y, s, target=0.95)
    assert binary_rates(y, s, threshold=t)["specificity"] >= 0.95


@pytest.mark.parametrize("seed", range(3))
def test_calibration_matches_sklearn_and_by_hand(seed):
    y, s = random_scores(seed, 500)
    p = sigmoid(s)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))
    curve = reliability_curve(y, p, n_bins=10)
    frequency, confidence = calibration_curve(y, p, n_bins=10, strategy="uniform")
    used = curve["count"] > 0
    np.testing.assert_allclose(curve["frequency"][used], frequency)
    np.testing.assert_allclose(curve["confidence"][used], confidence)
    by_hand = sum(abs(p[(p >= a) & (p < a + 0.1) if a < 0.9 else (p >= a)].mean() - y[(p >= a) & (p < a + 0.1) if a < 0.9 else (p >= a)].mean())
                  * ((p >= a) & (p < a + 0.1) if a < 0.9 else (p >= a)).sum()
                  for a in np.arange(0, 1, 0.1).round(1) if ((p >= a) & (p < a + 0.1) if a < 0.9 else (p >= a)).any()) / len(p)
    assert expected_calibration_error(y, p) == pytest.approx(by_hand)
    with pytest.raises(ValueError, match="sigmoid"):
        brier_score(y, s)


def test_temperature_scaling_softens_overconfidence_and_keeps_the_ranking():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    true_logit = (2 * y - 1) * 1.0 + rng.normal(size=2000)
    overconfident = 4 * true_logit  # the calibrated log-odds of N(±1, 1) classes are 2 * true_logit
    t = fit_temperature(y, overconfident)
    assert 1.8 < t < 2.2
    assert expected_calibration_error(y, sigmoid(overconfident / t)) < expected_calibration_error(y, sigmoid(overconfident))
    assert roc_auc(y, overconfident / t) == pytest.approx(roc_auc(y, overconfident))


def test_bootstrap_by_patient_is_wider_and_contains_the_estimate():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(60), 4)  # 4 images per patient, nearly identical
    y = np.repeat(rng.integers(0, 2, 60), 4)
    s = np.repeat(y[::4] + rng.normal(size=60), 4) + rng.normal(0, 0.05, 240)
    by_image = bootstrap_ci(roc_auc, y, s, n_resamples=400)
    by_patient = bootstrap_ci(roc_auc, y, s, groups=patients, n_resamples=400)
    assert by_patient["low"] <= by_patient["estimate"] <= by_patient["high"]
    assert by_patient["high"] - by_patient["low"] > 1.5 * (by_image["high"] - by_image["low"])


def test_bootstrap_skips_single_class_resamples_and_refuses_too_many():
    y = np.array([0] * 30 + [1])
    s = np.linspace(0, 1, 31)
    with pytest.raises(ValueError, match="undefined on"):
        bootstrap_ci(roc_auc, y, s, n_resamples=200)
    y = np.array([0] * 15 + [1] * 15)
    result = bootstrap_ci(roc_auc, y, np.linspace(0, 1, 30), n_resamples=200)
    assert result["skipped"] == 0 and result["estimate"] == 1.0


def test_paired_bootstrap_sees_a_real_difference_and_not_a_tiny_one():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    a = y + rng.normal(0, 1.0, 200)
    better = y + rng.normal(0, 0.5, 200)
    nearly = a + rng.normal(0, 0.05, 200)
    clear = paired_bootstrap(roc_auc, y, a, better, n_resamples=400)
    assert clear["low"] > 0 and clear["p_not_better"] < 0.05
    tiny = paired_bootstrap(roc_auc, y, a, nearly, n_resamples=400)
    assert tiny["low"] < 0 < tiny["high"]
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap(roc_auc, y, a, better[:10])


def test_reliability_bins_are_sklearns_at_the_edges_and_keep_empty_bins():
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0.0, 0.1, 0.5, 0.55, 1.0])
    curve = reliability_curve(y, p, n_bins=10)
    assert curve["count"].tolist() == [2, 0, 0, 0, 1, 1, 0, 0, 0, 1]  # right-closed: 0.1 in the first bin
    frequency, confidence = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(curve["frequency"][curve["count"] > 0], frequency)
    np.testing.assert_allclose(curve["confidence"][curve["count"] > 0], confidence)
    assert np.isnan(curve["frequency"][1]) and np.isnan(curve["confidence"][1])


def test_confusion_equals_sklearn_and_options_are_keywords():
    y, s = random_scores(0, 300)
    tn, fp, fn, tp = confusion_matrix(y, (s >= 0.5).astype(int)).ravel()
    assert confusion(y, (s >= 0.5).astype(int)) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    assert confusion([1, 1], [1, 1]) == {"tp": 2, "fp": 0, "tn": 0, "fn": 0}  # one class present
    with pytest.raises(TypeError):
        binary_rates(y, s, 0.5)
    with pytest.raises(TypeError):
        threshold_for_sensitivity(y, s, 0.9)
    with pytest.raises(TypeError):
        reliability_curve(y, sigmoid(s), 10)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        fit_temperature(s, y)  # logits first: the old order is refused, not misread
