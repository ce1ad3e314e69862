"""An MR-like second modality of the same synthetic anatomy (for fusion and registration).

MR intensities have no physical unit: they depend on the tissue's relaxation times and the
sequence. Here each tissue of a :class:`~medlab.phantoms.ct.CTVolume` gets a typical relative
brightness for a T1- or T2-weighted image, then coil shading (a smooth multiplicative bias
field) and Rician noise — the magnitude of complex Gaussian noise — are applied. The result is
on the CT's voxel grid; a registration lab moves it.

>>> from medlab.phantoms.ct import ct_volume
>>> mr = mr_like(ct_volume(seed=0, shape=(8, 32, 32)), contrast="T2")
>>> mr.shape, mr.dtype
((8, 32, 32), dtype('float32'))
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from medlab import arguments
from medlab.phantoms.ct import LABELS, CTVolume
from medlab.phantoms.fields import smooth_field

CONTRASTS: dict[str, dict[str, float]] = {
    # fat bright, fluid dark; marrow fat bright; flowing blood dark; lesions darker than liver
    "T1": {"background": 0.0, "soft_tissue": 0.40, "fat": 1.00, "lung": 0.03, "heart": 0.30,
           "aorta": 0.08, "liver": 0.62, "kidney": 0.45, "bone": 0.70, "lesion": 0.25, "cortical_bone": 0.04},
    # fluid and most lesions bright; liver and muscle dark
    "T2": {"background": 0.0, "soft_tissue": 0.22, "fat": 0.75, "lung": 0.04, "heart": 0.35,
           "aorta": 0.05, "liver": 0.25, "kidney": 0.60, "bone": 0.50, "lesion": 0.85, "cortical_bone": 0.03},
}
"""Relative tissue brightness per contrast, in [0, 1]."""


def mr_like(
    ct: CTVolume,
    *,
    contrast: str = "T1",
    seed: int = 0,
    noise: float = 0.03,
    bias: float = 0.25,
) -> np.ndarray:
    """MR-like image ``(z, y, x)`` float32 (arbitrary units, tissue levels within ~[0, 1]) of the
    anatomy in ``ct``.

    ``noise`` is the standard deviation of each of the two Gaussian components behind the
    Rician noise; ``bias`` the strength of the coil shading.

    Taught in lab 04, section 6 (Two modalities: early or late fusion?).
    """
    if not isinstance(ct, CTVolume):
        raise ValueError(f"ct must be a CTVolume from medlab.phantoms.ct_volume; got {type(ct).__name__}")
    seed = arguments.integer(seed, "seed", minimum=0)
    noise = arguments.number(noise, "noise", low=0.0)
    bias = arguments.number(bias, "bias", low=0.0)
    if not isinstance(contrast, str) or contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}: use one of {', '.join(CONTRASTS)}")
    table = CONTRASTS[contrast]
    rng = np.random.default_rng([seed, 31])
    lut = np.array([table[name] for name in LABELS], dtype=np.float32)
    image = lut[ct.labels]
    image[(ct.labels == LABELS.index("bone")) & (ct.image > 600)] = table["cortical_bone"]
    body = ct.labels != LABELS.index("background")
    image += 0.04 * smooth_field(rng, ct.labels.shape, batch=1, knots=10)[0] * body
    image = ndi.gaussian_filter(image, sigma=(0.0, 0.7, 0.7))
    if bias > 0:  # coil shading: a smooth multiplicative field around 1
        image *= np.exp(bias * smooth_field(rng, ct.labels.shape, batch=1, knots=4)).astype(np.float32)[0]
    real = image + noise * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = noise * rng.standard_normal(image.shape, dtype=np.float32)
    return np.sqrt(real * real + imaginary * imaginary).astype(np.float32)
