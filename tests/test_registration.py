"""medlab.registration: point fits, SimpleITK registration in the project's conventions, and the
sanity measures of a deformation."""

import numpy as np
import pytest
import torch

from medlab import registration as reg
from medlab.phantoms.deform import registration_pair, smooth_displacement

SPACING = (3.6, 3.6)


def _rotation(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def test_the_rigid_fit_recovers_a_rotation_and_translation_exactly():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 100, (6, 2))
    q = p @ _rotation(12).T + [5.0, -3.0]
    matrix, offset = reg.rigid_fit(p, q)
    np.testing.assert_allclose(matrix, _rotation(12), atol=1e-10)
    np.testing.assert_allclose(reg.apply_affine(p, matrix, offset), q, atol=1e-9)


def test_the_fit_never_returns_a_reflection_and_finds_a_scale_when_asked():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 100, (8, 3))
    mirrored = p * [1, 1, -1]
    matrix, _ = reg.rigid_fit(p, mirrored)
    assert np.linalg.det(matrix) > 0
    matrix, offset = reg.rigid_fit(p, 1.5 * p + 2.0, scale=True)
    np.testing.assert_allclose(matrix, 1.5 * np.eye(3), atol=1e-9)
    np.testing.assert_allclose(offset, 2.0, atol=1e-8)


def test_point_errors_are_euclidean_distances():
    np.testing.assert_allclose(reg.point_errors([[0, 0], [1, 1]], [[3, 4], [1, 1]]), [5.0, 0.0])


def test_bad_points_are_named():
    with pytest.raises(ValueError, match="paired"):
        reg.rigid_fit(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2 point pairs"):
        reg.rigid_fit(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        reg.point_errors([[np.nan, 0.0]], [[0.0, 0.0]])


def test_sitk_axis_order_is_converted_both_ways():
    spacing = (3.0, 2.0)  # anisotropic, so that a swap of the axes shows
    u = smooth_displacement((20, 30), spacing=spacing, amplitude_mm=3.0, translation_mm=(6.0, -4.0), seed=1)
    t = reg.displacement_transform(u, spacing=spacing)
    point = np.array([[30.0, 24.0]])  # pixel (10, 12)
    np.testing.assert_allclose(reg.transform_points(point, transform=t), point + u[:, 10, 12], atol=1e-5)
    np.testing.assert_allclose(reg.displacement_field(transform=t, shape=(20, 30), spacing=spacing), u, atol=1e-5)
    image = reg.to_sitk(np.zeros((20, 30)), spacing=(2.0, 1.0))
    assert image.GetSize() == (30, 20) and image.GetSpacing() == (1.0, 2.0)
    # resampling through a shift of one pixel along x moves the content one column, whatever the spacing
    square = np.zeros((20, 30), np.float32)
    square[5:8, 10:14] = 1.0
    shift = reg.displacement_transform(smooth_displacement((20, 30), spacing=spacing, amplitude_mm=0.0,
                                                           translation_mm=(0.0, spacing[1])), spacing=spacing)
    np.testing.assert_allclose(reg.resample(square, transform=shift, spacing=spacing)[5:8, 9:13], 1.0)


def test_resampling_labels_uses_nearest_neighbours():
    labels = np.zeros((16, 16), np.uint8)
    labels[:, 8:] = 8
    u = smooth_displacement((16, 16), spacing=SPACING, amplitude_mm=0.0, translation_mm=(0.0, 1.3))
    t = reg.displacement_transform(u, spacing=SPACING)
    out = reg.resample(labels, transform=t, spacing=SPACING, labels=True)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 8}
    assert len(np.unique(reg.resample(labels.astype(np.float32), transform=t, spacing=SPACING))) > 2


@pytest.fixture(scope="module")
def pair():
    return registration_pair(seed=5, rotation_deg=6.0, translation_mm=(8.0, -6.0), amplitude_mm=5.0, knots=7)


def test_affine_then_bspline_registration_lowers_the_target_error(pair):
    none = reg.point_errors(pair.targets, pair.landmarks).mean()
    affine = reg.register(pair.fixed, pair.moving, spacing=pair.spacing, transform="affine", metric="mean_squares")
    after_affine = reg.point_errors(pair.targets, reg.transform_points(pair.landmarks, transform=affine)).mean()
    bspline = reg.register(pair.fixed, pair.moving, spacing=pair.spacing, transform="bspline", metric="mean_squares",
                           initial=affine, mesh_size=4, iterations=50, levels=(2, 1))
    after_bspline = reg.point_errors(pair.targets, reg.transform_points(pair.landmarks, transform=bspline)).mean()
    assert after_bspline < after_affine < 0.5 * none, (none, after_affine, after_bspline)


def test_mutual_information_aligns_ct_with_mr():
    mr = registration_pair(seed=5, modality="T1", rotation_deg=6.0, translation_mm=(8.0, -6.0), amplitude_mm=0.0)
    none = reg.point_errors(mr.targets, mr.landmarks).mean()
    t = reg.register(mr.fixed, mr.moving, spacing=mr.spacing, transform="rigid", metric="mattes")
    assert reg.point_errors(mr.targets, reg.transform_points(mr.landmarks, transform=t)).mean() < 0.4 * none


def test_weakly_smoothed_demons_fold_and_smoothed_demons_do_not(pair):
    body = pair.fixed_labels > 0
    folds = {}
    for smoothing in (0.5, 8.0):
        t = reg.demons(pair.fixed, pair.moving, spacing=pair.spacing, smoothing_mm=smoothing, iterations=50)
        field = reg.displacement_field(transform=t, shape=pair.fixed.shape, spacing=pair.spacing)
        folds[smoothing] = reg.folding_fraction(field, spacing=pair.spacing, mask=body)
    assert folds[8.0] < 0.005 < 0.05 < folds[0.5], folds


def test_the_jacobian_of_a_scaling_is_its_area_change_and_a_fold_is_found():
    y, x = np.meshgrid(np.arange(10.0), np.arange(12.0), indexing="ij")
    scaling = np.stack([0.2 * y, 0.2 * x])  # x -> 1.2 x in both axes
    np.testing.assert_allclose(reg.jacobian_determinant(scaling, spacing=(1.0, 1.0)), 1.44)
    folded = np.stack([np.zeros_like(y), -2.0 * x])  # x -> -x: a mirror, folded everywhere
    assert reg.folding_fraction(folded, spacing=(1.0, 1.0)) == 1.0
    assert reg.folding_fraction(scaling, spacing=(1.0, 1.0)) == 0.0


def test_bad_images_and_options_are_named(pair):
    with pytest.raises(ValueError, match="one shape"):
        reg.register(pair.fixed, pair.moving[:50], spacing=SPACING)
    with pytest.raises(ValueError, match="unknown metric"):
        reg.register(pair.fixed, pair.moving, spacing=SPACING, metric="dice")
    with pytest.raises(ValueError, match="unknown transform"):
        reg.register(pair.fixed, pair.moving, spacing=SPACING, transform="perspective")
    broken = pair.moving.copy()
    broken[3, 3] = np.nan
    with pytest.raises(ValueError, match="moving must hold finite numbers"):
        reg.register(pair.fixed, broken, spacing=SPACING)
    with pytest.raises(ValueError, match="spacing must give 2"):
        reg.register(pair.fixed, pair.moving, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="mask selects no pixel"):
        reg.folding_fraction(np.zeros((2, 4, 4)), spacing=(1.0, 1.0), mask=np.zeros((4, 4), bool))


def test_a_blank_image_and_a_failing_optimiser_are_reported_as_such():
    fixed = np.zeros((32, 32), np.float32)
    fixed[4:10, 4:10] = 1.0
    with pytest.raises(ValueError, match="moving is constant"):
        reg.register(fixed, np.zeros((32, 32), np.float32), spacing=(1.0, 1.0))
    with pytest.raises(RuntimeError, match="SimpleITK could not register the images"):
        reg.register(fixed, fixed, spacing=(1.0, 1.0), levels=(64,))  # shrunk to less than a pixel


def _seeded_registration(pair):
    affine = reg.register(pair.fixed, pair.moving, spacing=pair.spacing, transform="affine", metric="mattes", seed=0)
    field = reg.demons(pair.fixed, pair.moving, spacing=pair.spacing, smoothing_mm=4.0, iterations=10, initial=affine)
    return reg.transform_points(pair.landmarks, transform=field)


@pytest.fixture
def threads():
    """Sets torch's (and so SimpleITK's) thread count for one test, and restores it after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_a_registration_repeats_exactly_with_its_seed_and_thread_count(pair, threads):
    # seed 0 must not mean SimpleITK's "seed from the clock"
    threads(1)
    np.testing.assert_array_equal(_seeded_registration(pair), _seeded_registration(pair))


def test_simpleitk_computes_on_torchs_thread_count(pair, threads):
    import SimpleITK

    for n in (2, 1):
        threads(n)
        reg.to_sitk(pair.fixed, spacing=pair.spacing)
        assert SimpleITK.ProcessObject.GetGlobalDefaultNumberOfThreads() == n
    # on several threads, the metric's sums may add up in another order: the same landmarks to 1e-4 mm
    threads(2)
    np.testing.assert_allclose(_seeded_registration(pair), _seeded_registration(pair), atol=1e-4, rtol=0)
