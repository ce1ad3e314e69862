"""Checks for the labs' exercises: a friendly line when an answer is right, a hint when not.

A failed check raises :class:`ExerciseError` (an ``AssertionError``), so an executed lab whose
worked solution is wrong fails its test, while a learner reads a message rather than a
traceback from deep inside NumPy::

    check_close(sigmoid_derivative(z), expected, name="sigmoid_derivative(z)",
                hint="σ'(z) = σ(z)·(1 − σ(z))")
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ExerciseError(AssertionError):
    """An exercise's answer is missing or not yet right; the message says what to try."""


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensors, on any device
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _missing(value: Any) -> bool:
    return value is None or value is Ellipsis


def passed(message: str) -> None:
    """Print the success line."""
    print(f"✔ {message}")


def check(ok: bool, *, success: str, hint: str) -> None:
    """Pass if ``ok`` is true; otherwise raise :class:`ExerciseError` carrying ``hint``.

    >>> check(2 + 2 == 4, success="arithmetic works", hint="check the sum")
    ✔ arithmetic works

    Taught in lab 00 (How to use this workbook).
    """
    if not ok:
        raise ExerciseError(f"Not yet. {hint}")
    passed(success)


def check_close(
    actual: Any,
    expected: Any,
    *,
    name: str,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    hint: str = "",
) -> None:
    """Pass if ``actual`` equals ``expected`` element-wise within tolerance.

    Accepts numbers, sequences, NumPy arrays and torch tensors. The message names the shape
    mismatch or the largest difference, and adds ``hint``.

    >>> check_close([0.5, 1.0], np.array([0.5, 1.0]), name="answer")
    ✔ answer is correct

    Taught in lab 00 (How to use this workbook).
    """
    tail = f" Hint: {hint}" if hint else ""
    if _missing(actual):
        raise ExerciseError(f"Not yet: {name} is still empty; fill in the cell above.{tail}")
    try:
        got = _as_array(actual)
    except (TypeError, ValueError):
        raise ExerciseError(f"Not yet: {name} should be numbers, got {type(actual).__name__}.{tail}") from None
    want = _as_array(expected)
    if got.shape != want.shape:
        raise ExerciseError(f"Not yet: {name} has shape {got.shape}, expected {want.shape}.{tail}")
    if not np.all(np.isfinite(got)):
        raise ExerciseError(f"Not yet: {name} contains NaN or infinity.{tail}")
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(got - want)))
        raise ExerciseError(f"Not yet: {name} differs from the expected value by up to {worst:.3g}.{tail}")
    passed(f"{name} is correct")


def check_between(value: Any, *, low: float, high: float, name: str, hint: str = "") -> None:
    """Pass if ``low <= value <= high``.

    >>> check_between(0.93, low=0.9, high=1.0, name="sensitivity")
    ✔ sensitivity = 0.93 is within [0.9, 1]

    Taught in lab 00 (How to use this workbook).
    """
    tail = f" Hint: {hint}" if hint else ""
    if _missing(value):
        raise ExerciseError(f"Not yet: {name} is still empty; fill in the cell above.{tail}")
    number = float(_as_array(value))
    if not (low <= number <= high):
        raise ExerciseError(f"Not yet: {name} = {number:.4g}, expected between {low:g} and {high:g}.{tail}")
    passed(f"{name} = {number:.4g} is within [{low:g}, {high:g}]")
