"""Checks for the labs' exercises: a friendly line when an answer is right, a hint when not.

A check cell runs its checks inside :func:`exercise`::

    with exercise("Exercise 1"):
        check_close(sigmoid_derivative(z), expected, name="sigmoid_derivative(z)",
                    hint="σ'(z) = σ(z)·(1 − σ(z))")

A failed check raises :class:`ExerciseError` (an ``AssertionError``). What :func:`exercise` does
with it depends on who runs the notebook:

- **practice** (a learner in Jupyter, the default): it prints ``✘ Exercise 1 · Not yet: …`` with
  the hint, and the notebook goes on, so a student copy runs top to bottom with its exercises
  still open;
- **strict** (``MEDLAB_CHECKS=strict``, which ``make course`` and the tests set, or nbgrader's
  autograder and validator, which set ``NBGRADER_EXECUTION``): it raises, so a wrong worked
  solution fails the lab's test and an unanswered exercise scores zero.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

CHECKS_ENV = "MEDLAB_CHECKS"
"""Environment variable: ``strict`` makes a failed exercise check raise; anything else, practice."""


class ExerciseError(AssertionError):
    """An exercise's answer is missing or not yet right; the message says what to try."""


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensors, on any device
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _missing(value: Any) -> bool:
    """``...`` and ``None`` (what a stub holds or returns), alone or as every item of a list."""
    if isinstance(value, (list, tuple)) and value:
        return all(_missing(item) for item in value)
    return value is None or value is Ellipsis


def strict() -> bool:
    """Whether a failed check should raise (tests, ``make course``, nbgrader) or only be shown.

    Taught in lab 00 (How to use this workbook).
    """
    if os.environ.get(CHECKS_ENV, "").strip().lower() == "strict":
        return True
    return bool(os.environ.get("NBGRADER_EXECUTION"))


@contextlib.contextmanager
def exercise(title: str) -> Iterator[None]:
    """Run one exercise's checks; a "Not yet" is printed (practice) or raised (strict).

    Only :class:`ExerciseError` is caught: an error in the learner's own code shows its
    traceback as usual.

    >>> with exercise("Exercise 0"):
    ...     check(2 + 2 == 4, success="done", hint="add again")
    ✔ done

    Taught in lab 00 (How to use this workbook).
    """
    try:
        yield
    except ExerciseError as error:
        if strict():
            raise ExerciseError(f"{title}: {error}") from None
        print(f"✘ {title} · {error}")


def filled_in(value: Any, *, name: str, hint: str = "") -> Any:
    """Return ``value``, or raise "Not yet: … still empty" if it is a stub's ``...`` or ``None``.

    The hint is kept for an answer that is there but wrong: shown to an empty answer, it would
    give the exercise away before the learner has tried (``hint`` is accepted, and not shown).

    >>> filled_in(3, name="n_windows")
    3

    Taught in lab 00 (How to use this workbook).
    """
    if _missing(value):
        raise ExerciseError(f"Not yet: {name} is still empty; fill in the cell above.")
    return value


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
    filled_in(actual, name=name, hint=hint)
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
    filled_in(value, name=name, hint=hint)
    number = float(_as_array(value))
    if not (low <= number <= high):
        raise ExerciseError(f"Not yet: {name} = {number:.4g}, expected between {low:g} and {high:g}.{tail}")
    passed(f"{name} = {number:.4g} is within [{low:g}, {high:g}]")
