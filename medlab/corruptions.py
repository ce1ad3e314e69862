"""Scanner corruptions at graded severity, to measure how a classifier's accuracy degrades
(in the spirit of MedMNIST-C, Di Salvo et al. 2024), and an augmentation that mimics them.

Each corruption is one step of the cohort's acquisition model (:mod:`medlab.phantoms.acquisition`)
pushed beyond what the sites produce: noise, blur, loss of contrast, a detector gamma, and a
bias field (smooth uneven exposure). Severity 0 leaves the images as they are; 1–5 grow.

Images ``(N, 1, H, W)`` float in [0, 1]; results are clipped to [0, 1].

>>> import numpy as np
>>> x = np.full((2, 1, 8, 8), 0.5, dtype=np.float32)
>>> corrupt(x, kind="contrast", severity=3).shape
(2, 1, 8, 8)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from medlab import arguments
from medlab.phantoms import acquisition
from medlab.phantoms.fields import smooth_field

SEVERITIES: dict[str, tuple[float, ...]] = {
    "noise": (0.03, 0.06, 0.09, 0.13, 0.18),  # noise level, intensity units
    "blur": (0.8, 1.2, 1.6, 2.2, 3.0),  # point spread, pixels
    "contrast": (0.75, 0.6, 0.45, 0.35, 0.25),  # factor on deviations from the mean
    "gamma": (1.4, 1.8, 2.2, 2.7, 3.3),  # detector response exponent
    "bias_field": (0.15, 0.25, 0.35, 0.5, 0.65),  # shading strength
}
"""Per corruption, its parameter at severities 1–5 (``SEVERITIES[kind][severity - 1]``)."""

CORRUPTIONS = tuple(SEVERITIES)


def corrupt(images: Any, *, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """``images`` ``(N, 1, H, W)`` in [0, 1] corrupted by ``kind`` (one of :data:`CORRUPTIONS`) at
    ``severity`` 0–5; random fields (noise, bias) are drawn from ``seed``. Returns a new float32
    array of the same shape, clipped to [0, 1].

    Taught in lab 08, section 7 (Natural robustness: what scanners do to images).
    """
    if kind not in SEVERITIES:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    severity = arguments.integer(severity, "severity", minimum=0, maximum=len(SEVERITIES[kind]))
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, H, W); got shape {x.shape}")
    if severity == 0:
        return x.copy()
    value, planes = SEVERITIES[kind][severity - 1], x[:, 0]
    rng = np.random.default_rng([seed, 808])
    if kind == "noise":
        out = acquisition.apply_noise(planes, rng.standard_normal(planes.shape, dtype=np.float32), level=value)
    elif kind == "blur":
        out = acquisition.apply_blur(planes, blur=value)
    elif kind == "contrast":
        out = acquisition.apply_contrast(planes, contrast=value)
    elif kind == "gamma":
        out = acquisition.apply_gamma(planes, gamma=value)
    else:
        field = smooth_field(rng, planes.shape[1:], batch=len(planes), knots=4)
        out = acquisition.apply_shading(planes, field, strength=value)
    return np.clip(out, 0.0, 1.0).astype(np.float32)[:, None]


def scanner_augmentation(*, prob: float = 0.5, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A training augmentation that mimics :func:`corrupt`'s corruptions with MONAI's random
    intensity transforms (Gaussian noise, Gaussian smoothing, contrast (gamma) adjustment, bias
    field, intensity scaling), each applied to an image with probability ``prob``. Returns a
    function of a batch ``(N, C, H, W)`` to a batch of the same shape, device and range [0, 1]
    (for ``fit(..., augment=)``), with its own seeded random state.

    The augmentation's strengths are drawn from ranges of their own, not from
    :data:`SEVERITIES`, so that a test of robustness is not a test on the training distribution.

    Taught in lab 08, section 7 (Natural robustness: what scanners do to images).
    """
    from monai import transforms as mt

    prob = arguments.probability(prob, "prob")
    pipeline = mt.Compose([
        mt.RandGaussianNoise(prob=prob, mean=0.0, std=0.1),
        mt.RandGaussianSmooth(prob=prob, sigma_x=(0.5, 2.0), sigma_y=(0.5, 2.0)),
        mt.RandAdjustContrast(prob=prob, gamma=(0.6, 2.5)),
        mt.RandBiasField(prob=prob, coeff_range=(0.1, 0.4), degree=3),
        mt.RandScaleIntensity(prob=prob, factors=0.3),
    ])
    pipeline.set_random_state(seed=seed)

    def augment(images: torch.Tensor) -> torch.Tensor:
        out = torch.stack([torch.as_tensor(pipeline(image.cpu())) for image in images])
        return out.clamp(0.0, 1.0).to(images)

    return augment
