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
from torch.nn import functional as F

from medlab import arguments
from medlab.phantoms import acquisition
from medlab.phantoms.fields import smooth_field

SEVERITIES: dict[str, tuple[float, ...]] = {
    "noise": (0.03, 0.06, 0.09, 0.13, 0.18),  # noise level, intensity units
    "blur": (0.8, 1.2, 1.6, 2.2, 3.0),  # point spread, pixels
    "contrast": (0.8, 0.7, 0.6, 0.5, 0.4),  # factor on deviations from the mean
    "gamma": (1.2, 1.4, 1.7, 2.0, 2.4),  # detector response exponent
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


def _uniform(n: int, low: float, high: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return (low + (high - low) * torch.rand(n, generator=generator)).to(like).view(n, 1, 1, 1)


def _blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image ``(N, 1, H, W)`` blurred by its own Gaussian ``sigma`` ``(N,)`` pixels."""
    n, _, h, w = images.shape
    r = torch.arange(-4, 5, dtype=images.dtype, device=images.device)
    g = torch.exp(-(r[None] ** 2) / (2 * sigma.view(n, 1) ** 2))
    g = g / g.sum(dim=1, keepdim=True)
    kernel = (g[:, :, None] * g[:, None, :])[:, None]  # (N, 1, 9, 9)
    padded = F.pad(images.reshape(1, n, h, w), (4, 4, 4, 4), mode="replicate")
    return F.conv2d(padded, kernel, groups=n).reshape(n, 1, h, w)


def scanner_augmentation(*, prob: float = 0.5, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A training augmentation that mimics :func:`corrupt`'s corruptions: a detector gamma, a
    contrast change, a bias field, blur and noise, each applied to an image with probability
    ``prob`` at a strength drawn for that image. Returns a function of a batch ``(N, 1, H, W)``
    in [0, 1] to a batch of the same shape, device and range (for ``fit(..., augment=)``), with
    its own seeded random state; batched in torch, so it costs little beside the training.

    The strengths are drawn from ranges of their own (gamma 0.7–2, contrast 0.5–1.1, bias
    strength up to 0.5, blur up to 2 pixels, noise up to 0.1), not from :data:`SEVERITIES`: a
    test of robustness should not be a test on the training distribution.

    Taught in lab 08, section 7 (Natural robustness: what scanners do to images).
    """
    prob = arguments.probability(prob, "prob")
    generator = torch.Generator().manual_seed(arguments.integer(seed, "seed", minimum=0))

    def augment(images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 1 or not images.is_floating_point():
            raise ValueError(f"images must be a float batch (N, 1, H, W); got {tuple(images.shape)}")
        n, x = len(images), images

        def chosen() -> torch.Tensor:
            return (torch.rand(n, generator=generator) < prob).to(x.device).view(n, 1, 1, 1)

        x = torch.where(chosen(), x.clamp(1e-4, 1.0) ** _uniform(n, 0.7, 2.0, generator, x), x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = torch.where(chosen(), mean + _uniform(n, 0.5, 1.1, generator, x) * (x - mean), x)
        field = F.interpolate(torch.randn(n, 1, 4, 4, generator=generator), size=x.shape[2:], mode="bicubic",
                              align_corners=True).to(x)
        x = torch.where(chosen(), x * torch.exp(_uniform(n, 0.0, 0.5, generator, x) * field), x)
        x = torch.where(chosen(), _blur(x, _uniform(n, 0.3, 2.0, generator, x).view(n)), x)
        noise = torch.randn(x.shape, generator=generator).to(x)
        x = torch.where(chosen(), x + _uniform(n, 0.0, 0.1, generator, x) * noise, x)
        return x.clamp(0.0, 1.0)

    return augment
