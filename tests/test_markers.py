"""Burned-in markers: the shortcut a model can learn."""

import numpy as np
import pytest

from medlab.phantoms.markers import burn_in_marker


def test_the_letter_goes_only_where_flagged_and_its_box_is_returned():
    images = np.full((3, 1, 64, 64), 0.3, dtype=np.float32)
    marked, where = burn_in_marker(images, [True, False, True], intensity=0.9)
    assert where.shape == (3, 64, 64) and where[1].sum() == 0 and where[0].sum() == where[2].sum() > 0
    assert np.array_equal(marked[1], images[1]) and marked[0, 0].max() == pytest.approx(0.9)
    changed = marked[0, 0] != images[0, 0]
    assert changed.any() and not (changed & ~where[0]).any()  # inside its box, in the top-right corner
    rows, cols = np.nonzero(where[0])
    assert rows.max() < 16 and cols.min() > 48
    assert images[0, 0, 0, 0] == np.float32(0.3)  # the input is left as it was


def test_marker_names_what_is_wrong():
    with pytest.raises(ValueError, match="3 images but 2 flags"):
        burn_in_marker(np.zeros((3, 1, 32, 32), np.float32), [True, False])
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        burn_in_marker(np.zeros((3, 32, 32), np.float32), [True] * 3)
