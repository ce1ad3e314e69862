"""Known deformations of the synthetic anatomy: the ground truth a registration is scored on.

A transform here maps a point ``x`` of the *fixed* image to the point ``T(x) = x + u(x)`` of the
*moving* image that shows the same anatomy (SimpleITK's convention), with ``x`` and the
displacement ``u`` in millimetres, axes ``(y, x)`` (or ``(z, y, x)``), the first pixel's centre
at 0. A pair is made by warping one rendering of a patient through ``T`` (the fixed image)
and rendering the same patient again (the moving image: a later CT with new noise and new
lesions, or an MR-like image), so the true partner of every fixed-image point is known.

>>> pair = registration_pair(seed=0, shape=(48, 48), spacing=(7.0, 7.0))
>>> pair.fixed.shape, pair.landmarks.shape[1], pair.targets.shape == pair.landmarks.shape
((48, 48), 2, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from medlab import arguments
from medlab.phantoms.ct import LABELS, ct_volume
from medlab.phantoms.fields import smooth_field
from medlab.phantoms.mr import CONTRASTS, mr_like

MODALITIES = ("CT", *CONTRASTS)
"""What a pair's moving image can be: a second CT, or an MR-like contrast of the same anatomy."""


def _grid_mm(shape: tuple[int, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """Pixel-centre positions ``(ndim, *shape)`` in mm."""
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) * s for n, s in zip(shape, spacing)],
                                indexing="ij"))


def _shape_and_spacing(shape: Any, spacing: Any) -> tuple[tuple[int, ...], tuple[float, ...]]:
    try:
        ndim = len(shape)
    except TypeError:
        ndim = 0
    if ndim not in (2, 3):
        raise ValueError(f"shape must be 2 or 3 integers, (y, x) or (z, y, x); got {shape!r}")
    return arguments.shape(shape, "shape", ndim=ndim, minimum=2), arguments.spacing(spacing, ndim=ndim)


def smooth_displacement(shape: Any, *, spacing: Any, seed: int = 0, amplitude_mm: float = 5.0, knots: int = 5,
                        rotation_deg: float = 0.0, translation_mm: Any = None) -> np.ndarray:
    """A displacement field ``u`` ``(ndim, *shape)`` float32 in mm: a rigid motion (a rotation
    of ``rotation_deg`` about the image centre in the last two axes, then ``translation_mm``)
    plus a smooth random deformation whose components have standard deviation
    ``amplitude_mm`` over the image, ``knots`` control points per axis (more knots, more local).

    The deformation's gradient grows with ``amplitude_mm × knots`` over the field of view; well
    below 1 (about 0.1 at the defaults on a 35 cm field), ``x + u(x)`` does not fold.

    Taught in lab 09, section 1 (Transforms and resampling).
    """
    shape, spacing = _shape_and_spacing(shape, spacing)
    seed = arguments.integer(seed, "seed", minimum=0)
    amplitude_mm = arguments.number(amplitude_mm, "amplitude_mm", low=0.0)
    knots = arguments.integer(knots, "knots", minimum=2)
    angle = np.deg2rad(arguments.number(rotation_deg, "rotation_deg", low=-180.0, high=180.0))
    ndim = len(shape)
    shift = np.zeros(ndim) if translation_mm is None else np.asarray(translation_mm, dtype=np.float64)
    if shift.shape != (ndim,) or not np.all(np.isfinite(shift)):
        raise ValueError(f"translation_mm must be {ndim} finite numbers in mm; got {translation_mm!r}")
    rng = np.random.default_rng([seed, 41])
    x = _grid_mm(shape, spacing)
    centre = np.array([(n - 1) * s / 2 for n, s in zip(shape, spacing)]).reshape((ndim,) + (1,) * ndim)
    r = x - centre
    moved = r.copy()
    c, s = np.cos(angle), np.sin(angle)
    moved[-2], moved[-1] = c * r[-2] - s * r[-1], s * r[-2] + c * r[-1]
    u = moved - r + shift.reshape((ndim,) + (1,) * ndim)
    u += amplitude_mm * smooth_field(rng, shape, batch=ndim, knots=knots)
    return u.astype(np.float32)


def _field_in_pixels(displacement: Any, spacing: tuple[float, ...], shape: tuple[int, ...]) -> np.ndarray:
    u = np.asarray(displacement, dtype=np.float64)
    if u.shape != (len(shape), *shape):
        raise ValueError(f"displacement must be (ndim, *shape) = {(len(shape), *shape)} in mm; got {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError("displacement holds NaN or infinite values")
    return u / np.reshape(spacing, (len(shape),) + (1,) * len(shape))


def warp(image: Any, displacement: Any, *, spacing: Any, order: int = 1, fill: float | None = None) -> np.ndarray:
    """Resample ``image`` ``(*shape)`` through ``T(x) = x + u(x)``: the output at ``x`` is the
    image at ``T(x)``, ``displacement`` ``u`` ``(ndim, *shape)`` in mm. ``order=1`` (linear) for
    intensities, ``order=0`` (nearest) for label maps, whose values must not be averaged.
    Points outside take ``fill`` (default: the image's minimum, air for a CT). Same dtype out.

    Taught in lab 09, section 1 (Transforms and resampling).
    """
    data = np.asarray(image)
    if data.ndim not in (2, 3):
        raise ValueError(f"image must be 2D (y, x) or 3D (z, y, x); got shape {data.shape}")
    shape, spacing = _shape_and_spacing(data.shape, spacing)
    order = arguments.integer(order, "order", minimum=0, maximum=3)
    pixels = _field_in_pixels(displacement, spacing, shape)
    coordinates = np.indices(shape, dtype=np.float64) + pixels
    fill = float(data.min()) if fill is None else arguments.number(fill, "fill")
    out = ndi.map_coordinates(data.astype(np.float64), coordinates, order=order, mode="constant", cval=fill)
    return out.astype(data.dtype)


def sample_displacement(displacement: Any, points_mm: Any, *, spacing: Any) -> np.ndarray:
    """The displacement ``u`` ``(ndim, *shape)`` (mm) at ``points_mm`` ``(K, ndim)``, by linear
    interpolation: ``(K, ndim)`` float64 mm.

    Taught in lab 09, section 2 (Landmarks: FLE, FRE and TRE).
    """
    u = np.asarray(displacement, dtype=np.float64)
    shape, spacing = _shape_and_spacing(u.shape[1:], spacing)
    points = arguments.points(points_mm, "points_mm", ndim=len(shape))
    where = (points / np.asarray(spacing)).T
    return np.stack([ndi.map_coordinates(u[k], where, order=1, mode="nearest") for k in range(len(shape))], axis=1)


def landmarks(labels: Any, *, spacing: Any, count: int = 20, seed: int = 0) -> np.ndarray:
    """Target points ``(K, ndim)`` in mm on a label map: the centroid of every organ region of
    at least 20 pixels (each connected piece of lung, heart, aorta, liver, kidney and bone),
    then ``count`` points drawn at random inside the body. Their partners in the other image
    are known from the true transform, which is what the target registration error needs.

    Taught in lab 09, section 2 (Landmarks: FLE, FRE and TRE).
    """
    labels = np.asarray(labels)
    shape, spacing = _shape_and_spacing(labels.shape, spacing)
    count = arguments.integer(count, "count", minimum=0)
    rng = np.random.default_rng([arguments.integer(seed, "seed", minimum=0), 43])
    points = []
    for name in ("lung", "heart", "aorta", "liver", "kidney", "bone"):
        pieces, n = ndi.label(labels == LABELS.index(name))
        for k in range(1, n + 1):
            where = np.argwhere(pieces == k)
            if len(where) >= 20:
                points.append(where.mean(axis=0))
    body = np.argwhere(labels != LABELS.index("background"))
    if len(body) and count:
        points.extend(body[rng.choice(len(body), size=min(count, len(body)), replace=False)].astype(np.float64))
    return np.array(points, dtype=np.float64).reshape(-1, len(shape)) * np.asarray(spacing)


@dataclass
class RegistrationPair:
    """Two images of one synthetic patient and the truth that relates them.

    Attributes
    ----------
    fixed, moving: ``(H, W)`` float32 images; the fixed one is a CT in HU, the moving one a CT
        (HU) or an MR-like image (arbitrary units).
    fixed_labels, moving_labels: ``(H, W)`` uint8 label maps (values index
        :data:`~medlab.phantoms.CT_LABELS`).
    spacing: ``(y, x)`` pixel size in mm, shared by both images.
    displacement: ``(2, H, W)`` float32, the true ``u`` in mm: fixed point ``x`` shows the
        anatomy at moving point ``x + u(x)``.
    landmarks: ``(K, 2)`` target points in the fixed image, mm.
    targets: ``(K, 2)`` their true partners in the moving image, mm.
    modality: what the moving image is (one of :data:`MODALITIES`).
    """

    fixed: np.ndarray
    moving: np.ndarray
    fixed_labels: np.ndarray
    moving_labels: np.ndarray
    spacing: tuple[float, float]
    displacement: np.ndarray
    landmarks: np.ndarray
    targets: np.ndarray
    modality: str


def registration_pair(*, seed: int = 0, patient_seed: int | None = None, shape: Any = (96, 96),
                      spacing: Any = (3.6, 3.6), modality: str = "CT", z: float = -0.3, amplitude_mm: float = 5.0,
                      knots: int = 5, rotation_deg: float = 0.0, translation_mm: Any = None,
                      landmark_count: int = 20) -> RegistrationPair:
    """An axial slice pair of one patient related by a known transform (see the module notes).

    The fixed image is the patient's CT slice warped through :func:`smooth_displacement`
    (``rotation_deg``, ``translation_mm``, ``amplitude_mm``, ``knots``); the moving image is the
    same anatomy rendered again: a CT with its own noise and lesions (``modality="CT"``, a later
    visit), or an MR-like image (``"T1"``, ``"T2"``). ``z`` picks the slice (−1 the lung apex,
    1 the kidneys, as :func:`~medlab.phantoms.ct_volume`'s ``z_range``); ``patient_seed`` the
    anatomy (default ``seed``).

    Taught in lab 09, section 3 (Intensity-based registration).
    """
    seed = arguments.integer(seed, "seed", minimum=0)
    patient = seed if patient_seed is None else arguments.integer(patient_seed, "patient_seed", minimum=0)
    if not isinstance(modality, str) or modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}: use one of {', '.join(MODALITIES)}")
    (h, w), spacing = _shape_and_spacing(shape, spacing)
    if len((h, w)) != 2:
        raise ValueError("registration_pair makes 2D slices: shape must be (y, x)")
    z = arguments.number(z, "z", low=-1.0, high=1.0)
    volume = dict(shape=(1, h, w), spacing=(5.0, *spacing), z_range=(z, z), patient_seed=patient)
    baseline = ct_volume(seed=2 * seed, **volume)
    u = smooth_displacement((h, w), spacing=spacing, seed=seed, amplitude_mm=amplitude_mm, knots=knots,
                            rotation_deg=rotation_deg, translation_mm=translation_mm)
    if modality == "CT":
        later = ct_volume(seed=2 * seed + 1, **volume)
        moving, moving_labels = later.image[0], later.labels[0]
    else:
        moving, moving_labels = mr_like(baseline, contrast=modality, seed=seed)[0], baseline.labels[0]
    fixed = warp(baseline.image[0], u, spacing=spacing, order=1, fill=-1000.0)
    fixed_labels = warp(baseline.labels[0], u, spacing=spacing, order=0, fill=0)
    points = landmarks(fixed_labels, spacing=spacing, count=landmark_count, seed=seed)
    targets = points + sample_displacement(u, points, spacing=spacing)
    return RegistrationPair(fixed=fixed.astype(np.float32), moving=moving.astype(np.float32),
                            fixed_labels=fixed_labels, moving_labels=moving_labels, spacing=spacing,
                            displacement=u, landmarks=points, targets=targets, modality=modality)
