"""medlab.arguments: the argument checks every helper shares."""

import pytest

from medlab import arguments


def test_spacing_takes_one_positive_size_per_axis():
    assert arguments.spacing([3.6, 2], ndim=2) == (3.6, 2.0)
    for bad in ((1.0,), (1.0, 0.0), (1.0, float("nan")), "ab", None, (1.0, True)):
        with pytest.raises(ValueError, match="spacing"):
            arguments.spacing(bad, ndim=2)
