import numpy as np
import pytest
import torch

from medlab.transforms import random_affine, random_exposure, resample, stitch, tile


def test_resample_keeps_the_field_of_view_and_values():
    ramp = np.tile(np.arange(10, dtype=np.float32)[:, None], (1, 6))[None]  # value = row index
    out, reached = resample(ramp, spacing=(2.0, 1.0), target_spacing=(1.0, 1.0))
    assert out.shape == (1, 20, 6) and reached == (1.0, 1.0)
    # a linear ramp stays linear: the mean is unchanged and rows increase
    assert out.mean() == pytest.approx(ramp.mean(), abs=0.05)
    assert np.all(np.diff(out[0, :, 3]) >= 0)


def test_nearest_resampling_keeps_label_values():
    labels = np.zeros((1, 8, 8, 8), dtype=np.uint8)
    labels[0, 2:6, 2:6, 2:6] = 7
    out, _ = resample(labels, spacing=(2.0, 1.0, 1.0), target_spacing=(1.0, 1.0, 1.0), mode="nearest")
    assert out.dtype == np.uint8 and set(np.unique(out)) == {0, 7} and out.shape == (1, 16, 8, 8)
    assert (out == 7).sum() == 2 * (labels == 7).sum()


def test_resample_checks_its_input():
    with pytest.raises(ValueError, match="channel-first with 2 spatial axes"):
        resample(np.zeros((5, 5)), spacing=(1.0, 1.0), target_spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="must be positive"):
        resample(np.zeros((1, 5, 5)), spacing=(1.0, 0.0), target_spacing=(1.0, 1.0))


@pytest.mark.parametrize("shape, size, overlap", [((1, 1100, 900), 512, 0.25), ((3, 300, 700), 128, 0.5), ((1, 64, 64), 128, 0.0)])
def test_tile_then_stitch_is_lossless(shape, size, overlap):
    image = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    tiles, origins = tile(image, size=size, overlap=overlap)
    assert tiles.shape[1:] == (shape[0], size, size) and origins.shape == (len(tiles), 2)
    step = int(size * (1 - overlap))
    assert set(origins[:, 0]) <= set(range(0, shape[1], step))
    # every pixel is covered, and averaging identical overlaps gives the image back
    torch.testing.assert_close(stitch(tiles, origins, shape), image)


def test_stitch_blends_overlaps():
    image = torch.zeros(1, 100, 100)
    tiles, origins = tile(image, size=64, overlap=0.5)
    ones = torch.ones_like(tiles) * torch.arange(len(tiles)).view(-1, 1, 1, 1)
    merged = stitch(ones, origins, image.shape)
    # a pixel covered by tiles 0 and 1 only gets their average
    assert merged[0, 5, 40].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="tiles but"):
        stitch(tiles, origins[:2], image.shape)


@pytest.mark.parametrize("center, width, message", [
    (40, 0, "window width"), (40, -10, "window width"), (40, float("nan"), "window width"),
    (float("nan"), 400, "window center"), ("40", 400, "window center"), (40, float("inf"), "window width"),
])
def test_window_refuses_settings_that_would_give_nan_or_nothing(center, width, message):
    from medlab.windowing import window

    with pytest.raises(ValueError, match=message):
        window(np.zeros(3), center=center, width=width)


@pytest.mark.parametrize("spacing, target, message", [
    ((1.0, float("nan")), (1.0, 1.0), "must be positive mm"), ((1.0, 1.0), (1.0,), "one per spatial axis"),
    ((1.0, 1.0), (0.0, 1.0), "must be positive"), (("a", 1), (1.0, 1.0), "must be positive"),
    ((1.0, 1.0), (1e-4, 1e-4), "choose a coarser target spacing"),
])
def test_resample_refuses_spacings_it_cannot_use(spacing, target, message):
    with pytest.raises(ValueError, match=message):
        resample(np.zeros((1, 10, 10)), spacing=spacing, target_spacing=target)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 0}, "size must be an integer >= 1"), ({"size": 2.5}, "size"),
    ({"overlap": 1.0}, "overlap"), ({"overlap": float("nan")}, "overlap"),
])
def test_tile_refuses_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile(np.zeros((1, 8, 8)), **kwargs)


def _squares(n=8, size=32):
    """Each image a bright square off the centre, on a dark background."""
    images = torch.zeros(n, 1, size, size)
    images[:, :, 6:14, 6:14] = 1.0
    return images


def test_random_affine_moves_each_image_by_its_own_amount_reproducibly():
    images = _squares()
    moved = random_affine(images, generator=torch.Generator().manual_seed(0))
    again = random_affine(images, generator=torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and torch.equal(moved, again)
    centres = [(torch.nonzero(m[0] > 0.5).float().mean(0)).tolist() for m in moved]
    assert len({tuple(round(c, 1) for c in centre) for centre in centres}) == len(images)  # one draw per image
    assert all(abs(c - 9.5) < 0.08 * 32 * 2 + 2 for centre in centres for c in centre)  # within the shift and rotation
    assert abs(float(moved.sum() / images.sum()) - 1) < 0.3  # the square's area changes by the scaling only


def test_random_affine_with_no_range_is_the_identity_and_refuses_bad_ranges():
    images = torch.rand(3, 2, 16, 16)
    same = random_affine(images, degrees=0, scale=0, shift=0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(same, images, atol=1e-5)
    with pytest.raises(ValueError, match="degrees must be a number in"):
        random_affine(images, degrees=-5)
    with pytest.raises(ValueError, match=r"images must be a float batch \(N, C, H, W\)"):
        random_affine(images[0])


def test_random_exposure_changes_contrast_and_brightness_within_range():
    images = torch.rand(64, 1, 16, 16)
    changed = random_exposure(images, contrast=0.2, brightness=0.1, generator=torch.Generator().manual_seed(0))
    ratio = changed.std(dim=(1, 2, 3)) / images.std(dim=(1, 2, 3))
    shift = changed.mean(dim=(1, 2, 3)) - images.mean(dim=(1, 2, 3))
    assert ratio.min() >= 0.8 - 1e-5 and ratio.max() <= 1.2 + 1e-5 and ratio.std() > 0.05
    assert shift.abs().max() <= 0.1 + 1e-6 and shift.std() > 0.02
    assert torch.allclose(random_exposure(images, contrast=0, brightness=0), images, atol=1e-6)
    with pytest.raises(ValueError, match="contrast must be a number in"):
        random_exposure(images, contrast=1.0)
