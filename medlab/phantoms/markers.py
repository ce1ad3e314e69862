"""Burned-in markers: the bright lead letter a technician lays on the detector ("L" for the
patient's left), which real radiographs carry in a corner, in a style and place that differ by
hospital and by unit. A model can learn to read such a marker instead of the lungs when it goes
with the label in the training data (Zech et al. 2018): a shortcut.

>>> import numpy as np
>>> marked, where = burn_in_marker(np.zeros((2, 1, 64, 64), np.float32), [True, False])
>>> int(where[0].sum()) > 0, int(where[1].sum())
(True, 0)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def burn_in_marker(images: Any, flags: Any, *, intensity: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Burn a letter "L" into the top-right corner of each image whose flag is true.

    ``images`` ``(N, 1, H, W)`` float in [0, 1]; ``flags`` ``(N,)`` bool. The letter is about a
    twelfth of the image tall, drawn at ``intensity``. Returns the marked images (a new float32
    array) and the ``(N, H, W)`` bool mask of the letter's box on the marked images (empty on
    the others), to measure whether an explanation points at it.

    Taught in lab 08, section 1 (The data, the model, and a model that cheats).
    """
    x = np.array(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, H, W); got shape {x.shape}")
    flags = np.asarray(flags, dtype=bool).reshape(-1)
    if len(flags) != len(x):
        raise ValueError(f"{len(x)} images but {len(flags)} flags")
    h, w = x.shape[2:]
    tall = max(4, h // 12)
    wide, stroke, margin = max(3, (tall * 3) // 4), max(1, tall // 4), max(1, h // 32)
    top, left = margin, w - margin - wide
    letter = np.zeros((h, w), dtype=bool)
    letter[top:top + tall, left:left + stroke] = True  # the upright
    letter[top + tall - stroke:top + tall, left:left + wide] = True  # the foot
    box = np.zeros((h, w), dtype=bool)
    box[top:top + tall, left:left + wide] = True
    x[flags, 0] = np.where(letter, np.float32(intensity), x[flags, 0])
    return x, box[None] & flags[:, None, None]
