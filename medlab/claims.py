"""Learning-outcome claims: asserted, recorded with their thresholds, and swept.

A lab states what it taught as claims in its learning-outcome cell::

    claim(session, "test_lung_dice", lung_dice, at_least=0.90,
          why="the U-Net segments the lungs of held-out radiographs")
    claim(session, "dice_gain_over_otsu", unet - otsu, at_least=0.2)
    record(session, test_heart_dice=heart_dice)      # reported, not asserted

Each claim is kept on the session together with its threshold, written to the lab's results
file at once (so a failed claim is on record too), and then asserted, except in the ``smoke``
profile, where the data are too few to mean anything. A comparison of two methods is a claim
about their difference (or ratio), so its margin is shown like any other.

Set ``$MEDLAB_CLAIMS`` to ``defer`` to record every claim of a cell before failing:
:func:`medlab.report.record` then raises one :class:`ClaimError` naming all failed claims. The
robustness sweep (``python -m medlab.course sweep``) runs labs this way, so one run shows every
claim's value.

This module imports neither torch nor NumPy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

CLAIMS_ENV = "MEDLAB_CLAIMS"
"""Environment variable: ``defer`` postpones failed claims to :func:`medlab.report.record`."""


class ClaimError(AssertionError):
    """A learning outcome did not hold; the message names the claim, its value and threshold."""


def _number(name: str, value: Any) -> float:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy / torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"claim {name!r}: the value must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"claim {name!r} is {value}: a claim needs a finite value")
    return value


def bounds(*, at_least: float | None = None, at_most: float | None = None,
           between: Sequence[float] | None = None) -> tuple[float | None, float | None]:
    """The ``(low, high)`` a claim's options describe (``None`` where open).

    >>> bounds(at_least=0.9)
    (0.9, None)
    >>> bounds(between=(0.7, 0.97))
    (0.7, 0.97)
    """
    if between is not None:
        if at_least is not None or at_most is not None:
            raise ValueError("give either between=(low, high) or at_least=/at_most=, not both")
        if len(between) != 2:
            raise ValueError(f"between= needs (low, high), got {between!r}")
        at_least, at_most = between
    if at_least is None and at_most is None:
        raise ValueError("a claim needs a threshold: at_least=, at_most= or between=(low, high)")
    low = None if at_least is None else float(at_least)
    high = None if at_most is None else float(at_most)
    if low is not None and high is not None and low > high:
        raise ValueError(f"the claim's range is empty: at least {low} and at most {high}")
    return low, high


def margin(value: float, low: float | None, high: float | None) -> float:
    """Distance from ``value`` to the nearest bound, negative when the claim fails.

    >>> round(margin(0.95, 0.9, None), 6)
    0.05
    >>> margin(3.0, 1.0, 2.0)
    -1.0
    """
    gaps = [value - low] if low is not None else []
    if high is not None:
        gaps.append(high - value)
    return min(gaps)


def describe(low: float | None, high: float | None) -> str:
    """The threshold in words: ``"≥ 0.9"``, ``"≤ 0.1"`` or ``"in [0.7, 0.97]"``.

    >>> describe(0.9, None), describe(None, 0.1), describe(0.7, 0.97)
    ('≥ 0.9', '≤ 0.1', 'in [0.7, 0.97]')
    """
    if low is not None and high is not None:
        return f"in [{low:g}, {high:g}]"
    return f"≥ {low:g}" if low is not None else f"≤ {high:g}"


def deferred() -> bool:
    """Whether ``$MEDLAB_CLAIMS`` asks for failed claims to be raised by ``record``."""
    mode = os.environ.get(CLAIMS_ENV, "").strip().lower()
    if mode not in ("", "assert", "defer"):
        raise ValueError(f"{CLAIMS_ENV} must be 'assert' or 'defer', got {mode!r}")
    return mode == "defer"


def failure_message(name: str, entry: Mapping[str, Any]) -> str:
    """One line saying which claim failed, by how much, and what it stood for."""
    text = (f"claim {name!r} does not hold: {entry['value']:.4g}, expected "
            f"{describe(entry['at_least'], entry['at_most'])}")
    return text + (f" ({entry['why']})" if entry.get("why") else "")


def claim(
    session: Any,
    name: str,
    value: Any,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    between: Sequence[float] | None = None,
    why: str = "",
    applies: bool = True,
) -> float:
    """Assert a learning outcome and record it with its threshold; return the value as a float.

    ``session`` is the lab's :class:`medlab.runtime.Session`; ``name`` names the claim in the
    results file, the report and the sweep (``test_auc``, ``dice_gain_over_ce``); ``value`` is
    a finite number. Bounds are inclusive. ``why`` says in words what the claim shows and is
    part of the failure message. Outside the ``smoke`` profile a value outside the bounds raises
    :class:`ClaimError` (or, with ``$MEDLAB_CLAIMS=defer``, is raised later by ``record``).
    ``applies=False`` says that this run cannot test the claim (a parallel speed-up where the lab
    was given one core): the value is recorded as measured, never asserted, and the robustness
    sweep leaves the run out of the claim's figures instead of counting it as failed.

    Taught in lab 00 (Learning outcomes).
    """
    from medlab.report import write_results  # report imports nothing from here

    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"claim name {name!r}: use letters, digits and underscores (e.g. 'test_auc')")
    low, high = bounds(at_least=at_least, at_most=at_most, between=between)
    number = _number(name, value)
    defer = deferred()
    if not isinstance(applies, bool):
        raise ValueError(f"applies must be True or False, got {applies!r}")
    checked = session.profile != "smoke" and applies
    gap = margin(number, low, high)
    entry = {
        "value": number,
        "at_least": low,
        "at_most": high,
        "margin": gap,
        "holds": gap >= 0,
        "checked": checked,
        "applies": applies,
        "why": why,
    }
    session.claims[name] = entry
    write_results(session)
    if checked and not entry["holds"] and not defer:
        raise ClaimError(failure_message(name, entry))
    return number


def failed_claims(claims: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names of the claims that were checked and do not hold."""
    return [name for name, c in claims.items() if c.get("checked") and not c.get("holds")]
