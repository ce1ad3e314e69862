"""Run profiles: how much work a lab does, from a proof that it runs to a long run on a GPU.

A lab's parameters cell sets ``PROFILE``; its code sizes data and training with
:func:`pick` (or ``session.pick``), e.g. ``EPOCHS = session.pick(smoke=1, default=12, full=30)``.
Imports only the standard library, so the command line can check a profile without torch.
"""

from __future__ import annotations

from typing import TypeVar

PROFILES = ("smoke", "default", "full")
"""Run profiles: ``smoke`` proves a lab runs (seconds); ``default`` reaches the learning outcome
in a few minutes on a 2-core CPU; ``full`` trains longer on more data, for a GPU."""

T = TypeVar("T")


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is one of :data:`PROFILES`, else raise a ``ValueError``.

    >>> check_profile("smoke")
    'smoke'
    """
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown profile {profile!r}: use one of {', '.join(map(repr, PROFILES))} "
            "(set PROFILE in the notebook's parameters cell, or `make course PROFILE=...`)."
        )
    return profile


def pick(profile: str, *, smoke: T, default: T, full: T) -> T:
    """Return the value that belongs to ``profile``.

    >>> pick("default", smoke=20, default=400, full=4000)
    400
    """
    return {"smoke": smoke, "default": default, "full": full}[check_profile(profile)]
