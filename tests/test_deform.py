"""The known deformations behind lab 09: the truth a registration is scored on."""

import numpy as np
import pytest

from medlab.phantoms import CT_LABELS
from medlab.phantoms.deform import landmarks, registration_pair, sample_displacement, smooth_displacement, warp
from medlab.registration import jacobian_determinant

SPACING = (3.0, 2.0)


def test_a_pure_translation_moves_every_pixel_by_the_same_millimetres():
    u = smooth_displacement((20, 30), spacing=SPACING, amplitude_mm=0.0, translation_mm=(6.0, -4.0))
    assert u.shape == (2, 20, 30) and u.dtype == np.float32
    np.testing.assert_allclose(u[0], 6.0, atol=1e-5)
    np.testing.assert_allclose(u[1], -4.0, atol=1e-5)


def test_a_rotation_turns_about_the_centre_by_the_angle():
    shape = (41, 41)
    u = smooth_displacement(shape, spacing=(1.0, 1.0), amplitude_mm=0.0, rotation_deg=90.0)
    assert np.allclose(u[:, 20, 20], 0.0, atol=1e-4)  # the centre stays
    # the point 10 mm "down" the y axis from the centre goes 10 mm along x
    np.testing.assert_allclose(u[:, 30, 20], (-10.0, 10.0), atol=1e-4)


def test_the_smooth_deformation_has_the_amplitude_asked_for_and_does_not_fold():
    for seed in range(5):  # lab 09's test pairs: 96 x 96 pixels of 3.6 mm, 5 mm, 7 knots
        u = smooth_displacement((96, 96), spacing=(3.6, 3.6), amplitude_mm=5.0, knots=7, seed=seed, rotation_deg=8.0)
        rigid = smooth_displacement((96, 96), spacing=(3.6, 3.6), amplitude_mm=0.0, rotation_deg=8.0)
        assert np.allclose((u - rigid).std(axis=(1, 2)), 5.0, rtol=0.05)
        assert jacobian_determinant(u, spacing=(3.6, 3.6)).min() > 0.5
    assert not np.array_equal(u, smooth_displacement((96, 96), spacing=(3.6, 3.6), amplitude_mm=5.0, knots=7,
                                                     seed=0, rotation_deg=8.0))


def test_warp_pulls_the_image_from_the_displaced_point():
    image = np.zeros((10, 10), np.float32)
    image[4, 6] = 1.0
    u = smooth_displacement((10, 10), spacing=SPACING, amplitude_mm=0.0, translation_mm=(0.0, 2 * SPACING[1]))
    out = warp(image, u, spacing=SPACING, order=0)
    assert out[4, 4] == 1.0 and out.sum() == 1.0 and out.dtype == np.float32


def test_nearest_neighbour_keeps_label_values_and_linear_would_not():
    labels = np.zeros((16, 16), np.uint8)
    labels[:, 8:] = 8
    u = smooth_displacement((16, 16), spacing=SPACING, amplitude_mm=0.0, translation_mm=(0.0, 1.0))
    assert set(np.unique(warp(labels, u, spacing=SPACING, order=0))) <= {0, 8}
    assert len(np.unique(warp(labels.astype(np.float32), u, spacing=SPACING, order=1))) > 2


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="displacement must be"):
        warp(np.zeros((8, 8)), np.zeros((2, 4, 4)), spacing=SPACING)
    with pytest.raises(ValueError, match="spacing must give 2"):
        smooth_displacement((8, 8), spacing=(1.0,))
    with pytest.raises(ValueError, match="NaN"):
        warp(np.zeros((8, 8)), np.full((2, 8, 8), np.nan), spacing=SPACING)
    with pytest.raises(ValueError, match="translation_mm"):
        smooth_displacement((8, 8), spacing=SPACING, translation_mm=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="unknown modality"):
        registration_pair(modality="PET")


def test_landmarks_lie_inside_the_body_and_include_organ_centroids():
    pair = registration_pair(seed=1, shape=(64, 64), spacing=(5.0, 5.0), landmark_count=10)
    pixels = np.rint(pair.landmarks / 5.0).astype(int)
    assert len(pair.landmarks) > 10
    assert np.all(pair.fixed_labels[pixels[:, 0], pixels[:, 1]] != CT_LABELS.index("background"))
    assert len(landmarks(pair.fixed_labels, spacing=(5.0, 5.0), count=0)) == len(pair.landmarks) - 10


def test_the_targets_are_where_the_true_transform_takes_the_landmarks():
    pair = registration_pair(seed=2, shape=(64, 64), spacing=(5.0, 5.0), rotation_deg=5.0, translation_mm=(4.0, 2.0))
    np.testing.assert_allclose(pair.targets - pair.landmarks,
                               sample_displacement(pair.displacement, pair.landmarks, spacing=(5.0, 5.0)))
    # the fixed image is the baseline warped: warping the moving CT's anatomy through u gives the fixed labels
    moved = warp(pair.moving_labels, pair.displacement, spacing=(5.0, 5.0), order=0, fill=0)
    organs = pair.fixed_labels != CT_LABELS.index("lesion")
    assert np.mean(moved[organs] == pair.fixed_labels[organs]) > 0.95


def test_an_mr_pair_shares_the_anatomy_and_not_the_intensities():
    ct, mr = registration_pair(seed=0, shape=(48, 48), spacing=(7.0, 7.0)), registration_pair(
        seed=0, shape=(48, 48), spacing=(7.0, 7.0), modality="T1")
    np.testing.assert_array_equal(ct.fixed, mr.fixed)
    np.testing.assert_array_equal(ct.displacement, mr.displacement)
    assert mr.moving.max() < 5 and ct.moving.min() < -500
