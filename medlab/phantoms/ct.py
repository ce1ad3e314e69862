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
from medlab.phantoms.acquisition import Site, get_site
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

    Taught in lab 01, section 1 (What is in a DICOM file).
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

    Taught in lab 01, section 1 (What is in a DICOM file).
    """
    seed, shape, spacing, z_range, nodules, liver_lesions, patient_seed = _checked(
        seed, shape, spacing, z_range, nodules, liver_lesions, patient_seed
    )
    rng = np.random.default_rng([seed, 23])
    a = np.random.default_rng([seed if patient_seed is None else patient_seed, 29])
    site_info = get_site(site)

    labels, organs = _anatomy(a, shape, z_range)
    image = _tissue_image(labels, organs)
    _texture_and_vessels(rng, a, image, labels, organs["body"], organs["lung"])
    lesions = _lesions(rng, image, labels, spacing, (("nodule", nodules, organs["lung"], (3.0, 9.0)),
                                                    ("liver_lesion", liver_lesions, organs["liver"], (6.0, 15.0))))
    image = _acquire(rng, image, site_info)
    return CTVolume(image=image.astype(np.float32), labels=labels, spacing=tuple(map(float, spacing)),
                    lesions=lesions, site=site)


def _checked(
    seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float], z_range: tuple[float, float],
    nodules: int, liver_lesions: int, patient_seed: int | None,
) -> tuple:
    """The arguments of :func:`ct_volume`, checked in order and normalised.

    Returns ``(seed, shape, spacing, z_range, nodules, liver_lesions, patient_seed)``:
    ``shape`` in voxels and ``spacing`` in mm, both ``(z, y, x)``.
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
    return seed, shape, spacing, z_range, nodules, liver_lesions, patient_seed


def _anatomy(
    a: np.random.Generator, shape: tuple[int, int, int], z_range: tuple[float, float]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The patient's anatomy, drawn from ``a``: the ``(z, y, x)`` uint8 label map and organ masks.

    Tissues are labelled from the outside in (body, lungs, heart and aorta, liver, kidneys,
    abdominal fat, bones), each overwriting the earlier where they overlap. ``shape`` is in
    voxels, ``z_range`` in normalised body height (see :func:`ct_volume`). The masks, all
    ``(z, y, x)`` bool, are ``body``, ``lung`` and ``liver`` and, inside the body, the bone
    that gets its own HU: ``cortex`` (cortical bone of the vertebrae), ``ribs`` and ``discs``.
    """
    z, y, x = _coordinates(shape, z_range)
    labels = np.zeros(shape, dtype=np.uint8)
    body, muscle, body_r2, fat = _body(a, z, y, x, labels)
    lung, dome = _lungs(a, z, y, x, muscle, labels)
    _heart_and_aorta(z, y, x, dome, muscle, labels)
    liver = _liver(a, z, y, x, dome, muscle, lung, labels)
    _kidneys(z, y, x, muscle, liver, labels)
    _visceral_fat(a, z, dome, body_r2, fat, labels)
    bones = _skeleton(z, y, x, dome, body, body_r2, fat, labels)
    return labels, {"body": body, "lung": lung, "liver": liver, **bones}


def _coordinates(
    shape: tuple[int, int, int], z_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised voxel coordinates ``z`` ``(depth, 1, 1)``, ``y`` ``(1, height, 1)`` and ``x``
    ``(1, 1, width)``, float32, broadcasting to ``shape``.

    ``z`` is the body height, from ``z_range[1]`` at slice 0 (the inferior end) to
    ``z_range[0]`` (``-1`` the lung apex, ``1`` the lower kidneys); ``y`` (anterior to
    posterior) and ``x`` (the patient's right to left) run over ``[-1, 1]`` across the field
    of view. All anatomy is drawn in these units, independent of the spacing in mm.
    """
    depth, height, width = shape
    z = np.linspace(z_range[1], z_range[0], depth, dtype=np.float32)[:, None, None]
    y = grid(height)[None, :, None]
    x = grid(width)[None, None, :]
    return z, y, x


def _body(
    a: np.random.Generator, z: np.ndarray, y: np.ndarray, x: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.float32]:
    """Body outline and subcutaneous fat, labelled ``fat`` and ``soft_tissue`` in ``labels``.

    The body, an elliptic cylinder, widens from the chest to the abdomen. Returns the
    ``(z, y, x)`` bool masks ``body`` (inside the skin) and ``muscle`` (inside the fat layer),
    the body's normalised elliptic radius² ``body_r2`` ``(z, y, x)`` float32 (1 at the skin)
    and the fat layer's thickness ``fat``, a fraction of that radius.
    """
    body_rx = np.float32(a.uniform(0.78, 0.9)) + 0.03 * z
    body_ry = np.float32(a.uniform(0.52, 0.62)) + 0.02 * z
    fat = np.float32(a.uniform(0.05, 0.12))
    body_r2 = ((x / body_rx) ** 2 + ((y - 0.05) / body_ry) ** 2)
    body = body_r2 < 1.0
    muscle = body_r2 < (1.0 - fat) ** 2
    labels[body] = LABELS.index("fat")
    labels[muscle] = LABELS.index("soft_tissue")
    return body, muscle, body_r2, fat


def _lungs(
    a: np.random.Generator, z: np.ndarray, y: np.ndarray, x: np.ndarray, muscle: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.float32]:
    """Both lungs, a ``(z, y, x)`` bool mask labelled ``lung``, and the diaphragm's height ``dome``.

    The lungs fill the chest inside the muscle layer, above the domes of the diaphragm
    (``dome`` in normalised body height, the left dome a little lower), their apices
    tapering towards ``z = -1``.
    """
    dome = np.float32(a.uniform(-0.05, 0.1))
    lung = np.zeros(labels.shape, dtype=bool)
    for side in (-1.0, 1.0):
        cx = side * np.float32(a.uniform(0.36, 0.42))
        taper = np.clip((z + 1.05) / 0.35, 0.0, 1.0) ** 0.5
        r2 = ((x - cx) / (0.27 * taper + 1e-3)) ** 2 + ((y + 0.0) / (0.38 * taper + 1e-3)) ** 2
        dome_z = dome + side * 0.06 + 0.8 * ((x - cx) ** 2 + y ** 2)
        lung |= (r2 < 1.0) & (z < dome_z) & muscle
    labels[lung] = LABELS.index("lung")
    return lung, dome


def _heart_and_aorta(
    z: np.ndarray, y: np.ndarray, x: np.ndarray, dome: np.float32, muscle: np.ndarray, labels: np.ndarray
) -> None:
    """Label the heart (an ellipsoid resting on the diaphragm at height ``dome``) and the
    descending aorta (a vertical tube in front of the spine) in the ``(z, y, x)`` ``labels``."""
    heart_c = (dome - 0.25, -0.12, 0.1)
    heart = _ellipsoid(z, y, x, heart_c, (0.28, 0.26, 0.24)) < 1.0
    labels[heart & muscle] = LABELS.index("heart")
    aorta = (((y - 0.22) / 0.065) ** 2 + ((x - 0.1) / 0.065) ** 2 < 1.0) & (z > -0.8) & muscle
    labels[aorta] = LABELS.index("aorta")


def _liver(
    a: np.random.Generator, z: np.ndarray, y: np.ndarray, x: np.ndarray, dome: np.float32,
    muscle: np.ndarray, lung: np.ndarray, labels: np.ndarray,
) -> np.ndarray:
    """The liver, a ``(z, y, x)`` bool mask labelled ``liver``: an ellipsoid on the patient's
    right, under the right dome of the diaphragm (height ``dome``), outside the lungs."""
    liver_c = (np.float32(a.uniform(0.3, 0.45)), np.float32(a.uniform(-0.05, 0.05)), -0.33)
    liver = (_ellipsoid(z, y, x, liver_c, (0.5, 0.42, 0.42)) < 1.0) & (z > dome - 0.1 + 0.8 * (x + 0.35) ** 2) & muscle & ~lung
    labels[liver] = LABELS.index("liver")
    return liver


def _kidneys(
    z: np.ndarray, y: np.ndarray, x: np.ndarray, muscle: np.ndarray, liver: np.ndarray, labels: np.ndarray
) -> None:
    """Label both kidneys (posterior ellipsoids at the inferior end) in the ``(z, y, x)``
    ``labels``, where the liver is not."""
    kidneys = np.zeros(labels.shape, dtype=bool)
    for side in (-1.0, 1.0):
        kidneys |= _ellipsoid(z, y, x, (0.72 + 0.04 * side, 0.3, side * 0.36), (0.22, 0.16, 0.11)) < 1.0
    labels[kidneys & muscle & ~liver] = LABELS.index("kidney")


def _visceral_fat(
    a: np.random.Generator, z: np.ndarray, dome: np.float32, body_r2: np.ndarray, fat: np.float32, labels: np.ndarray
) -> None:
    """Relabel irregular patches of soft tissue below the diaphragm ``fat`` in ``labels``.

    The fat between the abdominal organs is irregular, so no single threshold isolates an
    organ. ``body_r2`` and ``fat`` describe the body outline (see :func:`_body`).
    """
    visceral = smooth_field(a, labels.shape, batch=1, knots=26)[0] > 0.9
    labels[visceral & (labels == LABELS.index("soft_tissue")) & (z > dome + 0.15)
           & (body_r2 < (1.0 - fat - 0.08) ** 2)] = LABELS.index("fat")


def _skeleton(
    z: np.ndarray, y: np.ndarray, x: np.ndarray, dome: np.float32,
    body: np.ndarray, body_r2: np.ndarray, fat: np.float32, labels: np.ndarray,
) -> dict[str, np.ndarray]:
    """Spine and ribs, labelled ``bone`` in ``labels`` (the spinal canal ``soft_tissue``).

    Vertebral bodies are separated by discs, the spinal canal lies behind them, ribs run
    round the chest under the fat layer, above the diaphragm. Returns the ``(z, y, x)`` bool
    masks inside the body that get their own HU: ``cortex`` (cortical bone of the
    vertebrae), ``ribs`` and ``discs``.
    """
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
    return {"cortex": cortex & body, "ribs": ribs & body, "discs": disc & (vertebra_r2 < 1.0) & body}


def _tissue_image(labels: np.ndarray, organs: dict[str, np.ndarray]) -> np.ndarray:
    """``(z, y, x)`` float32 image holding each tissue's mean attenuation (HU), with the
    ``cortex``, ``ribs`` and ``discs`` of ``organs`` (see :func:`_anatomy`) at their own."""
    lut = np.array([HU["background"], HU["soft_tissue"], HU["fat"], HU["lung"], HU["heart"], HU["aorta"],
                    HU["liver"], HU["kidney"], HU["cancellous_bone"], HU["nodule"]], dtype=np.float32)
    image = lut[labels]
    image[organs["cortex"]] = HU["cortical_bone"]
    image[organs["ribs"]] = HU["cortical_bone"] * 0.8
    image[organs["discs"]] = 80.0
    return image


def _texture_and_vessels(
    rng: np.random.Generator, a: np.random.Generator, image: np.ndarray, labels: np.ndarray,
    body: np.ndarray, lung: np.ndarray,
) -> None:
    """Add a gentle texture (drawn from ``rng``; standard deviation 25 HU in the lungs, 8 HU
    elsewhere in the body) and the patient's bright, branching lung vessels (from ``a``, up
    to about +670 HU) to the ``(z, y, x)`` ``image`` (HU) in place."""
    texture = smooth_field(rng, labels.shape, batch=1, knots=10)[0]
    image += np.where(labels == LABELS.index("lung"), 25.0, 8.0) * texture * body
    vessel_field = smooth_field(a, labels.shape, batch=1, knots=22)[0]
    vessels = ridges(vessel_field, 0.09) * lung
    image += vessels * (HU["soft_tissue"] - HU["lung"]) * 0.75


def _lesion_centres(organ: np.ndarray, count: int) -> np.ndarray:
    """``(n, 3)`` voxel indices ``(z, y, x)`` where a lesion centre may lie inside ``organ``.

    The organ is eroded by two voxels, in-plane only for thin stacks (fewer than 5 slices).
    """
    depth = organ.shape[0]
    structure = ndi.generate_binary_structure(3, 1) if depth >= 5 else np.pad(np.ones((1, 3, 3), bool), ((1, 1), (0, 0), (0, 0)))
    return np.argwhere(ndi.binary_erosion(organ, structure=structure, iterations=2)) if count else np.empty((0, 3))


def _ball(
    c: np.ndarray, r_vox: np.ndarray, shape: tuple[int, int, int]
) -> tuple[tuple[slice, ...], np.ndarray]:
    """The ellipsoid of centre ``c`` and radii ``r_vox`` (voxels, ``(z, y, x)``) in a volume of
    ``shape``: the slices of its bounding box, and the bool mask of the voxels inside it
    shaped like that box."""
    zz, yy, xx = (np.arange(n, dtype=np.float32) for n in shape)
    sl = tuple(slice(max(int(ci - ri) - 1, 0), min(int(ci + ri) + 2, n))
               for ci, ri, n in zip(c, r_vox, shape))
    d2 = (((zz[sl[0]] - c[0]) / r_vox[0])[:, None, None] ** 2
          + ((yy[sl[1]] - c[1]) / r_vox[1])[None, :, None] ** 2
          + ((xx[sl[2]] - c[2]) / r_vox[2])[None, None, :] ** 2)
    return sl, d2 < 1.0


def _lesions(
    rng: np.random.Generator, image: np.ndarray, labels: np.ndarray, spacing: tuple[float, float, float],
    kinds: tuple[tuple[str, int, np.ndarray, tuple[float, float]], ...],
) -> list[dict]:
    """Place lesions, labelled ``lesion`` in ``labels`` and painted into ``image`` (HU) in place.

    ``kinds`` holds ``(kind, count, organ mask, (smallest, largest) radius in mm)``: solid
    nodules in the lungs, hypodense lesions in the liver. Each lesion is an ellipsoid of
    one radius in mm (``spacing`` ``(z, y, x)`` in mm) at ``HU[kind]`` plus a normal offset
    (standard deviation 8 HU). Returns one dict per lesion (``kind``, ``center`` ``(z, y, x)`` in voxels, ``radius_mm``).
    """
    lesions = []
    for kind, count, organ, (lo, hi) in kinds:
        candidates = _lesion_centres(organ, count)
        for _ in range(count if len(candidates) else 0):
            c = candidates[rng.integers(len(candidates))].astype(np.float32)
            radius = float(rng.uniform(lo, hi))
            sl, inside = _ball(c, radius / np.asarray(spacing, dtype=np.float32), labels.shape)
            if not inside.any():
                continue
            labels[sl][inside] = LABELS.index("lesion")
            image[sl][inside] = HU[kind] + float(rng.normal(0, 8))
            lesions.append({"kind": kind, "center": tuple(float(v) for v in c), "radius_mm": radius})
    return lesions


def _acquire(rng: np.random.Generator, image: np.ndarray, site_info: Site) -> np.ndarray:
    """The ``(z, y, x)`` ``image`` (HU) as the site acquires it: in-plane blur (reconstruction
    kernel, point-spread; ``site_info.blur`` in pixels) and in-plane correlated noise of
    standard deviation ``site_info.ct_noise_hu`` in HU."""
    image = ndi.gaussian_filter(image, sigma=(0.0, site_info.blur, site_info.blur))
    noise = ndi.gaussian_filter(rng.standard_normal(image.shape).astype(np.float32), sigma=(0.0, 0.7, 0.7))
    image += noise * (site_info.ct_noise_hu / 0.4)  # a 0.7-pixel blur leaves ~0.4 of the noise std
    return image
