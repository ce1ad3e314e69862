"""Synthetic CT of the chest and upper abdomen in Hounsfield units, with a label map.

The volume covers the body from the kidneys (first slice) up to the lung apices (last slice). Tissues carry
their textbook attenuation: air −1000 HU, lung ≈ −850, fat ≈ −100, soft tissue and organs
20–80 (liver ≈ 60, kidney ≈ 30, heart and aorta ≈ 40), cancellous bone ≈ 250, cortical
bone ≈ 900. Lungs hold vessels (bright, branching, the classic look-alike of a nodule);
lesions are solid lung nodules and hypodense liver lesions.

Axes are ``(z, y, x)`` and follow DICOM's patient coordinates (LPS), the order in which
:func:`medlab.dicom.read_series` returns an axial series: ``z`` from feet to head (index 0 is
the most inferior slice), ``y`` from anterior (front) to posterior, ``x`` from the patient's
right to left (so the patient's right is on the image's left, as radiologists view axial
slices). Spacing is in millimetres. Show coronal or sagittal cuts with ``origin="lower"`` to
put the head at the top.

>>> ct = ct_volume(seed=0, shape=(16, 64, 64))
>>> ct.image.shape, ct.labels.dtype, sorted(set(LABELS) - {"lesion"})[:3]
((16, 64, 64), dtype('uint8'), ['aorta', 'background', 'bone'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from medlab import arguments
from medlab.phantoms.acquisition import get_site
from medlab.phantoms.fields import grid, ridges, smooth_field

LABELS = ("background", "soft_tissue", "fat", "lung", "heart", "aorta", "liver", "kidney", "bone", "lesion")
"""Label values of :attr:`CTVolume.labels`: ``LABELS.index("liver") == 6``."""

HU = {"background": -1000.0, "soft_tissue": 40.0, "fat": -100.0, "lung": -850.0, "heart": 40.0,
      "aorta": 45.0, "liver": 60.0, "kidney": 30.0, "cancellous_bone": 250.0, "cortical_bone": 900.0,
      "nodule": 35.0, "liver_lesion": 15.0}
"""Mean attenuation of each tissue in Hounsfield units (before texture and noise)."""


@dataclass
class CTVolume:
    """A synthetic CT.

    Attributes
    ----------
    image: ``(z, y, x)`` float32, Hounsfield units.
    labels: ``(z, y, x)`` uint8, values index :data:`LABELS`.
    spacing: ``(z, y, x)`` voxel size in mm.
    lesions: one dict per lesion: ``kind`` (``"nodule"`` or ``"liver_lesion"``), ``center``
        ``(z, y, x)`` in voxels, ``radius_mm``.
    site: acquisition site.
    """

    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    lesions: list[dict]
    site: str

    def mask(self, name: str) -> np.ndarray:
        """Boolean ``(z, y, x)`` mask of the label called ``name``."""
        return self.labels == LABELS.index(name)


def _ellipsoid(z, y, x, c, r):
    """Normalised elliptic radius² of a point relative to centre ``c`` and radii ``r`` (z, y, x)."""
    return ((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2


MAX_VOXELS = 512**3
"""The most voxels :func:`ct_volume` makes (its working set is about 40 bytes a voxel)."""


def _z_range(z_range) -> tuple[float, float]:
    try:
        low, high = z_range
        low, high = arguments.number(low, "z_range"), arguments.number(high, "z_range")
    except (TypeError, ValueError):
        raise ValueError(
            f"z_range must be two finite numbers (low, high) in body units, -1 the lung apex and 1 "
            f"the lower kidneys; got {z_range!r}"
        ) from None
    return low, high


def ct_volume(
    *,
    seed: int = 0,
    shape: tuple[int, int, int] = (64, 128, 128),
    spacing: tuple[float, float, float] = (5.0, 2.8, 2.8),
    z_range: tuple[float, float] = (-1.0, 1.0),
    site: str = "A",
    nodules: int = 2,
    liver_lesions: int = 1,
    patient_seed: int | None = None,
) -> CTVolume:
    """Generate a CT volume in Hounsfield units with its label map.

    Parameters
    ----------
    seed
        Seeds lesion placement and noise.
    shape, spacing
        Voxels ``(z, y, x)`` and their size in mm. The default covers 320 × 358 × 358 mm.
    z_range
        Which part of the body, in normalised units: ``-1`` is the lung apex, ``1`` the lower
        kidneys. ``(0.2, 0.2)`` with ``shape=(1, H, W)`` gives a single axial slice.
    site
        Acquisition site: sets the in-plane blur and the noise level (see :data:`~medlab.phantoms.SITES`).
    nodules, liver_lesions
        How many lesions of each kind to place (where the organ is in the field of view).
    patient_seed
        Anatomy seed: volumes that share it show the same patient.
    """
    seed = arguments.integer(seed, "seed", minimum=0)
    shape = arguments.shape(shape, "shape", ndim=3, axes="(z, y, x)")
    if math.prod(shape) > MAX_VOXELS:
        raise ValueError(
            f"shape {shape} has {math.prod(shape):,} voxels; ct_volume makes at most {MAX_VOXELS:,} "
            "(512 x 512 x 512): ask for fewer or coarser voxels"
        )
    spacing = arguments.positive_triple(spacing, "spacing", axes="(z, y, x) in mm")
    z_range = _z_range(z_range)
    nodules = arguments.integer(nodules, "nodules", minimum=0)
    liver_lesions = arguments.integer(liver_lesions, "liver_lesions", minimum=0)
    if patient_seed is not None:
        patient_seed = arguments.integer(patient_seed, "patient_seed", minimum=0)
    depth, height, width = shape
    rng = np.random.default_rng([seed, 23])
    a = np.random.default_rng([seed if patient_seed is None else patient_seed, 29])
    site_info = get_site(site)

    # Normalised height runs from -1 (apex) to 1 (kidneys); slice 0 is the inferior end.
    z = np.linspace(z_range[1], z_range[0], depth, dtype=np.float32)[:, None, None]
    y = grid(height)[None, :, None]
    x = grid(width)[None, None, :]

    # Body outline and subcutaneous fat; the body widens from the chest to the abdomen.
    body_rx = np.float32(a.uniform(0.78, 0.9)) + 0.03 * z
    body_ry = np.float32(a.uniform(0.52, 0.62)) + 0.02 * z
    fat = np.float32(a.uniform(0.05, 0.12))
    body_r2 = ((x / body_rx) ** 2 + ((y - 0.05) / body_ry) ** 2)
    body = body_r2 < 1.0
    muscle = body_r2 < (1.0 - fat) ** 2

    labels = np.zeros(shape, dtype=np.uint8)
    labels[body] = LABELS.index("fat")
    labels[muscle] = LABELS.index("soft_tissue")

    # Lungs: upper part of the volume, domes of the diaphragm below, apices tapering above.
    dome = np.float32(a.uniform(-0.05, 0.1))
    lung = np.zeros(shape, dtype=bool)
    for side in (-1.0, 1.0):
        cx = side * np.float32(a.uniform(0.36, 0.42))
        taper = np.clip((z + 1.05) / 0.35, 0.0, 1.0) ** 0.5
        r2 = ((x - cx) / (0.27 * taper + 1e-3)) ** 2 + ((y + 0.0) / (0.38 * taper + 1e-3)) ** 2
        dome_z = dome + side * 0.06 + 0.8 * ((x - cx) ** 2 + y ** 2)
        lung |= (r2 < 1.0) & (z < dome_z) & muscle
    labels[lung] = LABELS.index("lung")

    heart_c = (dome - 0.25, -0.12, 0.1)
    heart = _ellipsoid(z, y, x, heart_c, (0.28, 0.26, 0.24)) < 1.0
    labels[heart & muscle] = LABELS.index("heart")
    aorta = (((y - 0.22) / 0.065) ** 2 + ((x - 0.1) / 0.065) ** 2 < 1.0) & (z > -0.8) & muscle
    labels[aorta] = LABELS.index("aorta")

    liver_c = (np.float32(a.uniform(0.3, 0.45)), np.float32(a.uniform(-0.05, 0.05)), -0.33)
    liver = (_ellipsoid(z, y, x, liver_c, (0.5, 0.42, 0.42)) < 1.0) & (z > dome - 0.1 + 0.8 * (x + 0.35) ** 2) & muscle & ~lung
    labels[liver] = LABELS.index("liver")
    kidneys = np.zeros(shape, dtype=bool)
    for side in (-1.0, 1.0):
        kidneys |= _ellipsoid(z, y, x, (0.72 + 0.04 * side, 0.3, side * 0.36), (0.22, 0.16, 0.11)) < 1.0
    labels[kidneys & muscle & ~liver] = LABELS.index("kidney")
    # Fat between the abdominal organs: irregular, so no single threshold isolates an organ.
    visceral = smooth_field(a, shape, batch=1, knots=26)[0] > 0.9
    labels[visceral & (labels == LABELS.index("soft_tissue")) & (z > dome + 0.15)
           & (body_r2 < (1.0 - fat - 0.08) ** 2)] = LABELS.index("fat")

    # Spine: vertebral bodies separated by discs, behind them the spinal canal; ribs in the chest.
    disc_period = 0.17
    disc = (0.5 + 0.5 * np.cos(2 * np.pi * z / disc_period)) > 0.85
    vertebra_r2 = ((y - 0.38) / 0.11) ** 2 + (x / 0.1) ** 2
    vertebra = (vertebra_r2 < 1.0) & ~disc
    cortex = vertebra & (vertebra_r2 > 0.65)
    canal = ((y - 0.52) / 0.045) ** 2 + (x / 0.045) ** 2 < 1.0
    angle = np.arctan2(y - 0.05, x)
    rib_ring = (body_r2 < (1.0 - fat * 0.55) ** 2) & (body_r2 > (1.0 - fat * 0.55 - 0.07) ** 2)
    ribs = rib_ring & (np.cos(2 * np.pi * (z - 0.08 * np.abs(np.sin(angle))) / 0.13) > 0.6) & (z < dome + 0.15)
    ribs &= np.abs(np.abs(angle) - np.pi / 2) > 0.3  # the sternum (front) and spine (back) interrupt them
    bone = vertebra | ribs
    labels[bone & body] = LABELS.index("bone")
    labels[canal & body & (z > -1.0)] = LABELS.index("soft_tissue")

    # Intensities: tissue means, gentle organ texture, lung vessels.
    lut = np.array([HU["background"], HU["soft_tissue"], HU["fat"], HU["lung"], HU["heart"], HU["aorta"],
                    HU["liver"], HU["kidney"], HU["cancellous_bone"], HU["nodule"]], dtype=np.float32)
    image = lut[labels]
    image[cortex & body] = HU["cortical_bone"]
    image[ribs & body] = HU["cortical_bone"] * 0.8
    image[disc & (vertebra_r2 < 1.0) & body] = 80.0
    texture = smooth_field(rng, shape, batch=1, knots=10)[0]
    image += np.where(labels == LABELS.index("lung"), 25.0, 8.0) * texture * body
    vessel_field = smooth_field(a, shape, batch=1, knots=22)[0]
    vessels = ridges(vessel_field, 0.09) * lung
    image += vessels * (HU["soft_tissue"] - HU["lung"]) * 0.75

    # Lesions: solid nodules in the lungs, hypodense lesions in the liver.
    lesions = []
    zz, yy, xx = (np.arange(n, dtype=np.float32) for n in shape)
    for kind, count, organ, (lo, hi) in (("nodule", nodules, lung, (3.0, 9.0)),
                                          ("liver_lesion", liver_lesions, liver, (6.0, 15.0))):
        # lesion centres lie inside the organ; thin stacks (single slices) are eroded in-plane only
        structure = ndi.generate_binary_structure(3, 1) if depth >= 5 else np.pad(np.ones((1, 3, 3), bool), ((1, 1), (0, 0), (0, 0)))
        candidates = np.argwhere(ndi.binary_erosion(organ, structure=structure, iterations=2)) if count else np.empty((0, 3))
        for _ in range(count if len(candidates) else 0):
            c = candidates[rng.integers(len(candidates))].astype(np.float32)
            radius = float(rng.uniform(lo, hi))
            r_vox = radius / np.asarray(spacing, dtype=np.float32)
            sl = tuple(slice(max(int(ci - ri) - 1, 0), min(int(ci + ri) + 2, n))
                       for ci, ri, n in zip(c, r_vox, shape))
            d2 = (((zz[sl[0]] - c[0]) / r_vox[0])[:, None, None] ** 2
                  + ((yy[sl[1]] - c[1]) / r_vox[1])[None, :, None] ** 2
                  + ((xx[sl[2]] - c[2]) / r_vox[2])[None, None, :] ** 2)
            inside = d2 < 1.0
            if not inside.any():
                continue
            labels[sl][inside] = LABELS.index("lesion")
            image[sl][inside] = HU[kind] + float(rng.normal(0, 8))
            lesions.append({"kind": kind, "center": tuple(float(v) for v in c), "radius_mm": radius})

    # Acquisition: the site's in-plane blur (reconstruction kernel, point-spread) and correlated noise.
    image = ndi.gaussian_filter(image, sigma=(0.0, site_info.blur, site_info.blur))
    noise = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=(0.0, 0.7, 0.7))
    image += noise * (site_info.ct_noise_hu / 0.4)  # a 0.7-pixel blur leaves ~0.4 of the noise std
    return CTVolume(image=image.astype(np.float32), labels=labels, spacing=tuple(map(float, spacing)),
                    lesions=lesions, site=site)
