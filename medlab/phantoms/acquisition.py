"""Acquisition effects and the named sites (scanners) of the synthetic cohort.

A real image is anatomy seen through a machine: blurred by the detector, shaded by uneven
exposure or coil sensitivity, coarsened by its resolution, and noisy. Sites differ in exactly
these, which is what makes a model trained at one hospital stumble at another (domain shift).

Random choices are made by the caller (``rng``); the functions here apply them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from medlab.phantoms.fields import smooth_field


@dataclass(frozen=True)
class Site:
    """How one site's scanner degrades an image.

    Radiograph intensities are in [0, 1]; CT noise is in Hounsfield units.

    Attributes
    ----------
    description: what kind of equipment this stands for.
    noise: Gaussian noise standard deviation (radiograph units; also scales CT noise).
    blur: point-spread standard deviation in pixels.
    inhomogeneity: strength of the smooth multiplicative shading (0 = none).
    resolution: fraction of the full resolution actually resolved (1 = full).
    gamma: detector response curve exponent applied to radiographs (1 = linear).
    contrast: scale of the tissue contrast around the mean (1 = unchanged).
    ct_noise_hu: CT noise standard deviation in HU.
    """

    description: str
    noise: float
    blur: float
    inhomogeneity: float
    resolution: float
    gamma: float
    contrast: float
    ct_noise_hu: float


SITES: dict[str, Site] = {
    "A": Site("modern flat-panel detector / CT, low noise", noise=0.020, blur=0.6,
              inhomogeneity=0.04, resolution=1.0, gamma=1.0, contrast=1.0, ct_noise_hu=12.0),
    "B": Site("older computed-radiography plates / CT, more noise and blur", noise=0.035, blur=1.1,
              inhomogeneity=0.08, resolution=0.7, gamma=0.85, contrast=0.9, ct_noise_hu=25.0),
    "C": Site("portable bedside unit / low-dose CT, strong shading, low contrast", noise=0.045, blur=0.9,
              inhomogeneity=0.18, resolution=0.8, gamma=1.2, contrast=0.75, ct_noise_hu=40.0),
}
"""The cohort's sites. ``A`` is the clean reference; ``B`` and ``C`` shift the image statistics."""


def get_site(name: str) -> Site:
    """The :class:`Site` called ``name``, with a clear error for an unknown one."""
    try:
        return SITES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown site {name!r}: the cohort has sites {', '.join(SITES)}") from None


def shading(rng: np.random.Generator, shape: tuple[int, ...], *, batch: int, strength: float) -> np.ndarray:
    """A smooth multiplicative field around 1 (``exp(strength · field)``), shape ``(batch, *shape)``.
    Models uneven exposure (X-ray) or coil sensitivity (MR)."""
    if strength <= 0:
        return np.ones((batch,) + tuple(shape), dtype=np.float32)
    return np.exp(strength * smooth_field(rng, shape, batch=batch, knots=4)).astype(np.float32)


def acquire_radiographs(images: np.ndarray, sites: list[str], rng: np.random.Generator) -> np.ndarray:
    """Apply each image's site to clean radiographs ``(N, H, W)`` in [0, 1]; returns ``(N, H, W)``
    float32 clipped to [0, 1]."""
    out = np.empty_like(images)
    n = len(images)
    shade_all = smooth_field(rng, images.shape[1:], batch=n, knots=4)
    noise_all = rng.standard_normal(images.shape, dtype=np.float32)
    for name in sorted(set(sites)):
        site = get_site(name)
        idx = np.array([i for i, s in enumerate(sites) if s == name])
        x = images[idx]
        mean = x.mean(axis=(1, 2), keepdims=True)
        x = mean + site.contrast * (x - mean)
        if site.gamma != 1.0:
            x = np.exp(site.gamma * np.log(np.clip(x, 1e-4, 1.0)))
        x = x * np.exp(site.inhomogeneity * shade_all[idx])
        # A coarser detector is modelled as extra blur: one pixel of a detector with resolution r
        # spans 1/r pixels, whose box profile has a standard deviation of about 0.3/r pixels.
        sigma = float(np.hypot(site.blur, 0.3 * (1.0 / site.resolution - 1.0)))
        if sigma > 0:
            x = ndi.gaussian_filter(x, sigma=(0, sigma, sigma), mode="nearest")
        # quantum noise grows with the signal; an electronic floor does not
        x = x + site.noise * (0.5 + 0.5 * np.sqrt(np.clip(x, 0, 1))) * noise_all[idx]
        out[idx] = np.clip(x, 0.0, 1.0)
    return out
