"""Window/level: map a band of Hounsfield units onto the display range [0, 1].

A CT holds about 4,000 HU of range; a screen shows ~256 grey levels and the eye tells fewer.
A *window* of width ``W`` centred on level ``L`` maps ``L - W/2 → 0`` and ``L + W/2 → 1`` and
clips outside, so the tissue of interest uses the whole grey scale.

>>> window(np.array([-1000.0, 40.0, 1000.0]), **WINDOWS["mediastinum"])
array([0. , 0.5, 1. ], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlab import arguments

WINDOWS: dict[str, dict[str, float]] = {
    "lung": {"center": -600.0, "width": 1500.0},
    "mediastinum": {"center": 40.0, "width": 400.0},
    "abdomen": {"center": 50.0, "width": 350.0},
    "bone": {"center": 400.0, "width": 1800.0},
    "brain": {"center": 40.0, "width": 80.0},
}
"""Common presets, ``name: {"center": level, "width": width}`` in Hounsfield units, so that
``window(hu, **WINDOWS["lung"])`` applies one."""


def window(hu: Any, *, center: float, width: float) -> np.ndarray:
    """Map Hounsfield units to [0, 1] with window ``center`` and ``width`` (both in HU).

    Works on any array shape (and on torch tensors, returning NumPy); returns float32.

    Taught in lab 01, section 3 (Window and level).
    """
    center = arguments.number(center, "window center (HU)")
    width = arguments.number(width, "window width (HU)", low=0.0, low_open=True)
    if hasattr(hu, "detach"):
        hu = hu.detach().cpu().numpy()
    low = center - width / 2.0
    return np.clip((np.asarray(hu, dtype=np.float32) - low) / np.float32(width), 0.0, 1.0)
