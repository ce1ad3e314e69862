"""Metrics on hostile input: a number in the documented range, or a ValueError that says why.

Generated labels, scores, masks, boxes and options mix valid values with NaN, infinities,
wrong shapes, text and out-of-range options; no metric may raise anything but ``ValueError``
or return a value outside its documented range.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlab import metrics

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)

_NUMBER = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, 1.0, float("nan"), float("inf"), -float("inf")]))
_OPTION = st.one_of(st.none(), st.booleans(), _NUMBER, st.integers(-2, 12), st.text(max_size=2))


def _labels(n):
    return st.one_of(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n),
                     st.lists(st.sampled_from([0, 1, 2, 0.5, float("nan")]), min_size=n, max_size=n))


@st.composite
def _binary_case(draw):
    n = draw(st.integers(0, 12))
    y = draw(_labels(n))
    m = draw(st.sampled_from([n, n, n, max(n - 1, 0)]))
    s = draw(st.lists(_NUMBER, min_size=m, max_size=m))
    return y, s


def _refused_or(check, call):
    try:
        value = call()
    except ValueError as exc:
        assert str(exc)
        return
    check(value)


def _unit(value):
    assert 0.0 <= value <= 1.0


@SETTINGS
@given(case=_binary_case(), target=_OPTION)
def test_operating_points(case, target):
    y, s = case

    def check_sensitivity(threshold):
        assert sum((np.asarray(s)[np.asarray(y) == 1] >= threshold)) >= target * sum(np.asarray(y) == 1) - 1e-9

    _refused_or(check_sensitivity, lambda: metrics.threshold_for_sensitivity(y, s, target=target))
    _refused_or(lambda t: None, lambda: metrics.threshold_for_specificity(y, s, target=target))
    _refused_or(lambda rates: [_unit(v) for k, v in rates.items() if not math.isnan(v)],
                lambda: metrics.binary_rates(y, s, threshold=target))


@SETTINGS
@given(case=_binary_case(), n_bins=_OPTION)
def test_classification_and_calibration(case, n_bins):
    y, s = case
    _refused_or(_unit, lambda: metrics.roc_auc(y, s))
    _refused_or(_unit, lambda: metrics.brier_score(y, s))
    _refused_or(_unit, lambda: metrics.expected_calibration_error(y, s, n_bins=n_bins))
    _refused_or(lambda t: None if t > 0 else pytest.fail("temperature must be positive"),
                lambda: metrics.fit_temperature(y, s))


@SETTINGS
@given(case=_binary_case(), n_resamples=_OPTION, confidence=_OPTION)
def test_bootstrap(case, n_resamples, confidence):
    y, s = case
    n = n_resamples if isinstance(n_resamples, int) and not isinstance(n_resamples, bool) and 0 < n_resamples else 5
    _refused_or(lambda ci: ci["low"] <= ci["high"],
                lambda: metrics.bootstrap_ci(metrics.roc_auc, y, s, n_resamples=min(n, 20), confidence=confidence))


@SETTINGS
@given(sensitivity=_OPTION, specificity=_OPTION, prevalence=st.one_of(_OPTION, st.lists(_NUMBER, max_size=3)))
def test_predictive_values(sensitivity, specificity, prevalence):
    def check(values):
        for v in np.concatenate([np.atleast_1d(values[0]), np.atleast_1d(values[1])]):
            assert math.isnan(v) or 0 <= v <= 1

    _refused_or(check, lambda: metrics.predictive_values(sensitivity, specificity, prevalence))


_MASK = st.one_of(
    st.integers(2, 6).flatmap(lambda k: st.lists(st.lists(st.sampled_from([0, 1]), min_size=k, max_size=k),
                                                 min_size=k, max_size=k)),
    st.lists(st.sampled_from([0, 1, 0.5, float("nan")]), max_size=5),
    st.just([[0, 1], [1, 1]]),
)


@SETTINGS
@given(pred=_MASK, truth=_MASK, spacing=st.one_of(_OPTION, st.lists(_NUMBER, max_size=3)), tolerance=_OPTION)
def test_segmentation(pred, truth, spacing, tolerance):
    _refused_or(_unit, lambda: metrics.dice(truth, pred))
    _refused_or(_unit, lambda: metrics.iou(truth, pred))
    _refused_or(lambda d: None if d >= 0 else pytest.fail("negative distance"),
                lambda: metrics.hausdorff95(truth, pred, spacing=spacing))
    _refused_or(_unit, lambda: metrics.surface_dice(truth, pred, tolerance_mm=tolerance, spacing=spacing))


_BOX = st.lists(_NUMBER, min_size=0, max_size=9)


@st.composite
def _image(draw):
    boxes = draw(st.one_of(_BOX, st.lists(st.lists(st.floats(0, 20), min_size=4, max_size=4), max_size=3)))
    boxes = [sorted(b[:2]) + sorted(b[2:]) if isinstance(b, list) and len(b) == 4 else b for b in boxes] \
        if boxes and isinstance(boxes[0], list) else boxes
    boxes = [[b[0], b[2], b[1], b[3]] if isinstance(b, list) and len(b) == 4 else b for b in boxes] \
        if boxes and isinstance(boxes[0], list) else boxes
    n = len(boxes) if boxes and isinstance(boxes[0], list) else draw(st.integers(0, 3))
    scores = draw(st.lists(_NUMBER, min_size=n, max_size=n))
    return draw(st.sampled_from([(boxes, scores), boxes, "x"]))


@SETTINGS
@given(images=st.lists(_image(), min_size=1, max_size=3), truths=st.lists(_BOX, min_size=1, max_size=3),
       iou_threshold=_OPTION)
def test_detection(images, truths, iou_threshold):
    _refused_or(_unit, lambda: metrics.average_precision(truths, images, iou_threshold=iou_threshold))
    _refused_or(lambda f: [_unit(v) for v in f], lambda: metrics.froc(truths, images, iou_threshold=iou_threshold))


@pytest.mark.parametrize("target", [0.0, -0.1, 1.5, float("nan"), "0.9", True])
def test_operating_point_targets_outside_0_1_are_refused(target):
    with pytest.raises(ValueError, match="target sensitivity must be a number in \\(0, 1\\]"):
        metrics.threshold_for_sensitivity([0, 1, 1], [0.1, 0.5, 0.9], target=target)
    with pytest.raises(ValueError, match="target specificity"):
        metrics.threshold_for_specificity([0, 0, 1], [0.1, 0.5, 0.9], target=target)


def test_sensitivity_target_is_met_at_the_highest_threshold():
    y, s = [0, 1, 1, 1, 1], [0.1, 0.2, 0.6, 0.7, 0.9]
    assert metrics.threshold_for_sensitivity(y, s, target=1.0) == 0.2
    assert metrics.threshold_for_sensitivity(y, s, target=0.75) == 0.6
    assert metrics.threshold_for_sensitivity(y, s, target=0.01) == 0.9


def test_boxes_of_the_wrong_shape_are_refused_not_reshaped():
    with pytest.raises(ValueError, match=r"\(D, 4\).*shape \(2, 6\)"):
        metrics.match_detections(np.zeros((0, 4)), np.zeros((2, 6)), [0.5, 0.4, 0.3])


def test_a_metric_that_is_nan_on_a_resample_is_skipped_not_averaged():
    calls = iter([float("nan")] + [0.5] * 200)
    with pytest.raises(ValueError, match="undefined on"):
        metrics.bootstrap_ci(lambda y, s: float("nan"), [0, 1] * 5, [0.1, 0.9] * 5, n_resamples=20)
    ci = metrics.bootstrap_ci(lambda y, s: next(calls), [0, 1] * 5, [0.1, 0.9] * 5, n_resamples=40)
    assert ci["skipped"] == 1 and ci["low"] == ci["high"] == 0.5
