"""The synthetic whole slide: rendered region by region, the same pixels whatever the split."""

import numpy as np
import pytest

from medlab.phantoms import slide_region, slide_tiles

SHAPE = (1024, 1536)


@pytest.fixture(scope="module")
def whole():
    return slide_region(0, 0, *SHAPE, seed=3, shape=SHAPE)


def test_two_halves_equal_the_whole(whole):
    rgb, nuclei = whole
    for cut in (500, 512, 777):  # on and off the 16-px cells
        top, bottom = slide_region(0, 0, cut, SHAPE[1], seed=3, shape=SHAPE), \
            slide_region(cut, 0, SHAPE[0] - cut, SHAPE[1], seed=3, shape=SHAPE)
        assert np.array_equal(np.vstack([top[0], bottom[0]]), rgb)
        assert np.array_equal(np.vstack([top[1], bottom[1]]), nuclei)
        left, right = slide_region(0, 0, SHAPE[0], cut, seed=3, shape=SHAPE), \
            slide_region(0, cut, SHAPE[0], SHAPE[1] - cut, seed=3, shape=SHAPE)
        assert np.array_equal(np.hstack([left[0], right[0]]), rgb)


def test_any_region_is_the_same_crop_of_the_whole(whole):
    rng = np.random.default_rng(0)
    for _ in range(10):
        y, x = rng.integers(0, SHAPE[0] - 1), rng.integers(0, SHAPE[1] - 1)
        h, w = rng.integers(1, SHAPE[0] - y + 1), rng.integers(1, SHAPE[1] - x + 1)
        rgb, nuclei = slide_region(y, x, h, w, seed=3, shape=SHAPE)
        assert np.array_equal(rgb, whole[0][y:y + h, x:x + w]) and np.array_equal(nuclei, whole[1][y:y + h, x:x + w])


def test_tiles_stitch_into_the_whole(whole):
    tiles = list(slide_tiles(shape=SHAPE, tile=256, seed=3))
    assert len(tiles) == 4 * 6 and all(t.shape == (256, 256, 3) and t.dtype == np.uint8 for t in tiles)
    rows = [np.hstack(tiles[r * 6:(r + 1) * 6]) for r in range(4)]
    assert np.array_equal(np.vstack(rows), whole[0])


def test_the_seed_decides_the_slide(whole):
    again = slide_region(0, 0, *SHAPE, seed=3, shape=SHAPE)
    other = slide_region(0, 0, *SHAPE, seed=4, shape=SHAPE)
    assert np.array_equal(again[0], whole[0]) and np.array_equal(again[1], whole[1])
    assert not np.array_equal(other[0], whole[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_looks_like_an_h_and_e_slide(seed):
    rgb, nuclei = slide_region(0, 0, 2048, 2048, seed=seed, shape=(2048, 2048))
    pixels = rgb.reshape(-1, 3).astype(int)
    glass = pixels.min(axis=1) > 225  # near-white, grey
    tissue = 1 - glass.mean()
    assert 0.35 <= tissue <= 0.60
    red, green, blue = rgb[nuclei].mean(axis=0)
    assert red < 110 and green < 80 and blue < 150  # dark purple
    assert np.all(rgb[nuclei][:, 2] > rgb[nuclei][:, 1])  # blue over green: haematoxylin
    stroma = pixels[~glass & ~nuclei.ravel()]
    assert stroma[:, 0].mean() > stroma[:, 1].mean() + 40  # pink: red over green
    assert 0.02 < nuclei.mean() < 0.15 and not np.any(nuclei.ravel() & glass)  # nuclei only in tissue
    assert 1.0 < pixels[glass].std() < 5.0  # faint noise on the glass


def test_nuclei_are_disks_of_3_to_6_pixels_within_their_cells():
    from scipy import ndimage as ndi

    _, nuclei = slide_region(0, 0, 1024, 1024, seed=0, shape=(1024, 1024))
    labels, n = ndi.label(nuclei)
    assert n > 100
    areas = np.bincount(labels.ravel())[1:]
    whole_disks = areas[areas > 0.9 * np.pi * 3**2]  # a disk cut by the tissue's border is smaller
    assert whole_disks.max() <= np.pi * 6.5**2
    for box in ndi.find_objects(labels):
        assert box[0].start // 16 == (box[0].stop - 1) // 16 and box[1].start // 16 == (box[1].stop - 1) // 16


def test_rendering_is_fast_enough_for_whole_slides():
    import time

    start = time.process_time()
    for x in range(0, 8192, 512):  # one row of tiles of an 8192² slide
        slide_region(4096, x, 512, 512)
    assert time.process_time() - start < 16 * 0.2  # well under 50 s for all 256 tiles (measured ~15 ms a tile)


@pytest.mark.parametrize("args, kwargs, message", [
    ((0, 0, 10, 10), {"shape": (8, 8)}, "shape must be 2 integers >= 16"),
    ((-1, 0, 10, 10), {}, "y must be an integer >= 0"),
    ((0, 0, 0, 10), {}, "h must be an integer >= 1"),
    ((8000, 0, 500, 10), {}, "h must be an integer >= 1 and <= 192"),
    ((0, 0, 10, 10), {"seed": -1}, "seed must be an integer >= 0"),
    ((0, 0, 10.5, 10), {}, "h must be an integer"),
])
def test_slide_region_refuses_regions_outside_the_slide(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        slide_region(*args, **kwargs)


def test_slide_tiles_needs_whole_tiles():
    with pytest.raises(ValueError, match="divisible by tile 512"):
        slide_tiles(shape=(1000, 1024), tile=512)
