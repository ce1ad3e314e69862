"""Segmentation metrics: against MONAI and scikit-learn on random masks, by hand on simple shapes,
and on the empty-mask cases."""

import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_iou
from scipy import ndimage as ndi
from sklearn.metrics import jaccard_score

from medlab.metrics import dice, hausdorff95, iou, segmentation_scores, surface_dice


def random_masks(seed, shape):
    rng = np.random.default_rng(seed)
    smooth = lambda: ndi.gaussian_filter(rng.normal(size=shape), 2) > 0.05  # noqa: E731
    return smooth(), smooth()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape", [(32, 32), (12, 20, 16)])
def test_overlap_matches_monai_and_sklearn(seed, shape):
    pred, truth = random_masks(seed, shape)
    as_monai = lambda m: torch.as_tensor(m)[None, None].float()  # noqa: E731
    assert dice(truth, pred) == pytest.approx(float(compute_dice(as_monai(pred), as_monai(truth))), abs=1e-6)
    assert iou(truth, pred) == pytest.approx(float(compute_iou(as_monai(pred), as_monai(truth))), abs=1e-6)
    assert iou(truth, pred) == pytest.approx(jaccard_score(truth.ravel(), pred.ravel()), abs=1e-12)
    d = dice(truth, pred)
    assert iou(truth, pred) == pytest.approx(d / (2 - d))


def test_distances_use_the_spacing():
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    shifted = np.roll(truth, 2, axis=1)  # 2 columns along x
    assert hausdorff95(truth, shifted) == pytest.approx(2.0)
    assert hausdorff95(truth, shifted, spacing=(1.0, 0.5)) == pytest.approx(1.0)
    assert hausdorff95(truth, shifted, spacing=(3.0, 0.5)) == pytest.approx(1.0)  # rows do not move
    assert surface_dice(truth, shifted, tolerance_mm=2.0) == pytest.approx(1.0)
    assert 0.0 < surface_dice(truth, shifted, tolerance_mm=1.0) < 1.0
    assert surface_dice(truth, shifted, tolerance_mm=1.0, spacing=0.5) == pytest.approx(1.0)


def test_hausdorff95_ignores_a_few_outliers_where_the_maximum_does_not():
    truth = np.zeros((64, 64), bool)
    truth[10:50, 10:50] = True
    pred = truth.copy()
    pred[60, 60] = True  # one stray pixel far away
    assert hausdorff95(truth, pred) < 2.0
    monai_max = __import__("monai").metrics.compute_hausdorff_distance(
        torch.as_tensor(pred)[None, None], torch.as_tensor(truth)[None, None], include_background=True)
    assert float(monai_max) == pytest.approx(math.hypot(11, 11), abs=1e-4)


def test_three_dimensional_masks_with_anisotropic_spacing():
    truth = np.zeros((10, 20, 20), bool)
    truth[3:7, 5:15, 5:15] = True
    taller = np.zeros_like(truth)
    taller[2:8, 5:15, 5:15] = True  # one slice more on each end
    assert hausdorff95(truth, taller, spacing=(5.0, 1.0, 1.0)) == pytest.approx(5.0)


def test_empty_masks_have_defined_values():
    empty, full = np.zeros((8, 8), bool), np.ones((8, 8), bool)
    assert (dice(empty, empty), iou(empty, empty), hausdorff95(empty, empty), surface_dice(empty, empty, tolerance_mm=1)) == (1, 1, 0, 1)
    for a, b in ((empty, full), (full, empty)):
        assert (dice(a, b), iou(a, b), surface_dice(a, b, tolerance_mm=1)) == (0, 0, 0)
        assert hausdorff95(a, b) == math.inf


def test_bad_inputs_get_clear_errors():
    mask = np.zeros((8, 8), bool)
    with pytest.raises(ValueError, match="differ in shape"):
        dice(np.zeros((8, 9), bool), mask)
    with pytest.raises(ValueError, match="binary"):
        dice(mask, np.full((8, 8), 0.7))
    with pytest.raises(ValueError, match="2D"):
        dice(np.zeros(8, bool), np.zeros(8, bool))
    with pytest.raises(ValueError, match="spacing"):
        hausdorff95(mask | np.eye(8, dtype=bool), np.eye(8, dtype=bool), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="tolerance"):
        surface_dice(mask, mask, tolerance_mm=-1)
    with pytest.raises(KeyError, match="heart"):
        segmentation_scores({"lung": mask, "heart": mask}, {"lung": mask})


def test_segmentation_scores_per_structure_and_tensors():
    pred, truth = random_masks(0, (24, 24))
    scores = segmentation_scores({"a": truth}, {"a": torch.as_tensor(pred)}, spacing=(2.0, 2.0))
    assert set(scores["a"]) == {"dice", "iou", "hd95_mm", "surface_dice"}
    assert scores["a"]["dice"] == pytest.approx(dice(truth, pred))


def test_truth_comes_first_and_units_are_keywords():
    truth, pred = random_masks(3, (32, 32))
    with pytest.raises(ValueError, match="the predicted mask must be binary"):
        dice(truth, np.where(pred, 0.7, 0.0))
    with pytest.raises(TypeError):
        hausdorff95(truth, pred, (1.0, 1.0))
    with pytest.raises(TypeError):
        surface_dice(truth, pred, 2.0)
    with pytest.raises(ValueError, match="spacing"):
        hausdorff95(np.zeros((4, 4), bool), np.zeros((4, 4), bool), spacing=(1.0, -1.0))
