"""Argument checks shared by MedLab's generators, metrics and loaders.

Each function returns the value converted to a plain Python type, or raises ``ValueError``
with a message that names the argument, says what it must be and shows what it got:

>>> integer(3, "n", minimum=1)
3
>>> probability(0.25, "prevalence")
0.25
>>> positive_triple((5, 2.8, 2.8), "spacing")
(5.0, 2.8, 2.8)
>>> integer(0, "n", minimum=1)
Traceback (most recent call last):
...
ValueError: n must be an integer >= 1; got 0
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def integer(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` (a bool, a float or text is refused), within the inclusive bounds."""
    bounds = " and ".join(
        part for part in (f">= {minimum}" if minimum is not None else "",
                          f"<= {maximum}" if maximum is not None else "") if part
    )
    wanted = f"{name} must be an integer" + (f" {bounds}" if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{wanted}; got {_shown(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{wanted}; got {value}")
    return value


def number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` within ``[low, high]`` (an end is excluded with
    ``low_open`` / ``high_open``)."""
    left = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    right = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is not None and high is not None:
        wanted = f"{name} must be a number in {left}, {right}"
    elif low is not None:
        wanted = f"{name} must be a number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        wanted = f"{name} must be a number {'<' if high_open else '<='} {high:g}"
    else:
        wanted = f"{name} must be a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{wanted}; got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{wanted}; got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{wanted}; got {value:g}")
    return value


def probability(value: Any, name: str, *, exclusive: bool = False) -> float:
    """``value`` as a ``float`` in ``[0, 1]``, or in ``(0, 1)`` with ``exclusive``."""
    return number(value, name, low=0.0, high=1.0, low_open=exclusive, high_open=exclusive)


def positive_triple(values: Any, name: str, *, axes: str = "(z, y, x)") -> tuple[float, float, float]:
    """Three finite positive numbers, e.g. a voxel spacing ``(z, y, x)`` in mm."""
    try:
        items = tuple(values)
    except TypeError:
        items = ()
    ok = len(items) == 3 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in items
    )
    if not ok:
        raise ValueError(f"{name} must be three positive numbers {axes}; got {_shown(values)}")
    return tuple(float(v) for v in items)  # type: ignore[return-value]


def spacing(values: Any, name: str = "spacing", *, ndim: int) -> tuple[float, ...]:
    """``ndim`` finite positive pixel sizes in mm, one per axis of an image."""
    try:
        items = tuple(number(v, name, low=0.0, low_open=True) for v in values)
    except TypeError:
        items = ()
    if len(items) != ndim:
        raise ValueError(f"{name} must give {ndim} positive pixel sizes in mm, one per axis; got {_shown(values)}")
    return items


def points(values: Any, name: str = "points", *, ndim: int | None = None) -> np.ndarray:
    """Finite positions ``(K, ndim)`` in mm as float64, ``ndim`` 2 or 3 (any of the two if ``None``)."""
    p = np.asarray(values, dtype=np.float64)
    if p.ndim != 2 or (ndim is not None and p.shape[1] != ndim) or p.shape[1] not in (2, 3):
        wanted = f"(K, {ndim})" if ndim else "(K, 2) or (K, 3)"
        raise ValueError(f"{name} must be {wanted} points in mm; got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} holds NaN or infinite coordinates")
    return p


def shape(values: Any, name: str, *, ndim: int, minimum: int = 1, axes: str = "") -> tuple[int, ...]:
    """``ndim`` integers, each at least ``minimum``, e.g. a volume shape ``(z, y, x)``."""
    try:
        items = tuple(values)
    except TypeError:
        items = ()
    ok = len(items) == ndim and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum for v in items
    )
    if not ok:
        where = f" {axes}" if axes else ""
        raise ValueError(f"{name} must be {ndim} integers >= {minimum}{where}; got {_shown(values)}")
    return tuple(int(v) for v in items)
