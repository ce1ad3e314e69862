"""medlab.arguments: the argument checks every helper shares."""

import pytest

from medlab import arguments


def test_spacing_takes_one_positive_size_per_axis():
    assert arguments.spacing([3.6, 2], ndim=2) == (3.6, 2.0)
    for bad in ((1.0,), (1.0, 0.0), (1.0, float("nan")), "ab", None, (1.0, True)):
        with pytest.raises(ValueError, match="spacing"):
            arguments.spacing(bad, ndim=2)


def test_points_are_finite_rows_of_two_or_three_coordinates():
    assert arguments.points([[1, 2], [3, 4]]).dtype.kind == "f"
    with pytest.raises(ValueError, match=r"must be \(K, 3\) points"):
        arguments.points([[1.0, 2.0]], ndim=3)
    with pytest.raises(ValueError, match="must be"):
        arguments.points([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        arguments.points([[1.0, float("inf")]])
