"""Synthetic chest radiographs (posterior–anterior view) with masks, boxes and labels.

Each image is composed, like a real projection radiograph, from overlapping structures: body
outline, two lungs (dark: air), heart and mediastinum, spine, ribs and clavicles (bright bands
crossing the lungs), lung vessels (bright branching lines — and, seen end-on, bright dots that
look like nodules), and the diaphragm domes. Pathology on top: pneumonia-like opacities
(``diffuse``: faint and patchy; ``consolidated``: dense and confluent) and round nodules.
The result then passes through a site's acquisition (shading, blur, resolution, noise).

Image coordinates follow the radiological convention: the patient's right lung is on the
image's left. Intensities are in [0, 1], bright = dense.

The generator is vectorised over a batch and deterministic: the same seeds give the same
pixels.

>>> batch = chest_radiographs(4, seed=0, size=64)
>>> batch.images.shape, batch.masks.shape, batch.mask_names[:2]
((4, 1, 64, 64), (4, 5, 64, 64), ('lung_right', 'lung_left'))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from medlab import arguments
from medlab.phantoms.acquisition import acquire_radiographs, get_site
from medlab.phantoms.fields import ellipse_distance, grid, interpolate_knots, ridges, smooth_field, soft_step

MASK_NAMES = ("lung_right", "lung_left", "heart", "opacity", "nodule")
"""Channels of :attr:`RadiographBatch.masks`. Lung masks exclude the heart's shadow."""

OPACITY_TYPES = ("diffuse", "consolidated")

FIELD_OF_VIEW_MM = 400.0
"""Width (and height) of the imaged field in mm, whatever ``size``: a pixel of a ``size × size``
radiograph measures ``FIELD_OF_VIEW_MM / size`` mm (3.125 mm at 128), the spacing to give
distance metrics."""
_CHUNK = 8

# Tissue contrasts in display units (bright = dense); see _compose().
_SOFT_TISSUE, _LUNG_AIR, _HEART, _MEDIASTINUM, _SPINE = 0.52, 0.34, 0.03, 0.12, 0.08
_RIB, _CLAVICLE, _VESSEL = 0.09, 0.12, 0.13


@dataclass
class RadiographBatch:
    """A batch of synthetic chest radiographs.

    Attributes
    ----------
    images: ``(N, 1, H, W)`` float32 in [0, 1].
    masks: ``(N, K, H, W)`` bool, channels named by :attr:`mask_names`.
    boxes: per image, ``(M, 4)`` float32 nodule boxes ``(x_min, y_min, x_max, y_max)`` in pixels
        (torchvision's convention).
    labels: ``(N,)`` int64, 1 = pneumonia-like opacity present.
    opacity_types: per image ``"none"``, ``"diffuse"`` or ``"consolidated"``.
    sites: per image, the acquisition site.

    Taught in lab 01, section 1 (What is in a DICOM file).
    """

    images: np.ndarray
    masks: np.ndarray
    boxes: list[np.ndarray]
    labels: np.ndarray
    opacity_types: list[str]
    sites: list[str]
    mask_names: tuple[str, ...] = field(default=MASK_NAMES)

    def __len__(self) -> int:
        return len(self.images)

    def mask(self, name: str) -> np.ndarray:
        """The ``(N, H, W)`` mask channel called ``name``."""
        return self.masks[:, self.mask_names.index(name)]


def _anatomy(seeds: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-patient anatomy, one value per seed, each shaped ``(N, 1, 1)`` for broadcasting.

    Drawn from a generator per seed, so images that share a seed (one patient's follow-ups)
    share their anatomy."""
    rows = []
    for s in seeds:
        r = np.random.default_rng([int(s), 7])
        rows.append([
            r.uniform(0.80, 0.92),   # thorax half-width
            r.uniform(0.88, 1.0),    # thorax half-height
            r.uniform(0.24, 0.30),   # lung half-width
            r.uniform(0.52, 0.62),   # lung half-height
            r.uniform(0.30, 0.40),   # lung centre |x|
            r.uniform(0.26, 0.34),   # heart half-width (sets the cardiothoracic ratio)
            r.uniform(0.19, 0.25),   # heart half-height
            r.uniform(0.25, 0.40),   # right diaphragm dome height
            r.uniform(0.03, 0.09),   # left dome lower by
            r.uniform(0.105, 0.125), # rib period
            r.uniform(0, 2 * np.pi), # rib phase
            r.uniform(-0.03, 0.03),  # left-right shift of the patient (normalised units)
            r.integers(0, 2**31),    # seed of the patient's own vessel pattern
        ])
    a = np.array(rows, dtype=np.float64)
    names = ["thorax_rx", "thorax_ry", "lung_rx", "lung_ry", "lung_cx", "heart_rx", "heart_ry",
             "dome_right", "dome_drop", "rib_period", "rib_phase", "shift", "vessel_seed"]
    return {k: a[:, i].astype(np.float32)[:, None, None] for i, k in enumerate(names)}


def _vessel_fields(anatomy: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Each patient's own vessel pattern, ``(N, H, W)``, from the patient's vessel seed."""
    knots = np.stack([np.random.default_rng(int(s)).standard_normal((22, 22), dtype=np.float32)
                      for s in anatomy["vessel_seed"].ravel()])
    return interpolate_knots(knots, (size, size))


def _compose(anatomy, y, x, vessels):
    """Clean anatomy (no pathology): image ``(N, H, W)`` and lung/heart soft masks."""
    # Kept separable, (1, H, 1) and (1, 1, W), so most intermediate arrays stay small.
    xr, yr = x[None] - anatomy["shift"], y[None]
    px = 2.0 / vessels.shape[-1]  # one pixel in normalised units
    edge = 1.2 * px

    body = soft_step(ellipse_distance(yr, xr, 0.08, 0.0, anatomy["thorax_ry"], anatomy["thorax_rx"]), 2 * edge)
    neck = soft_step(np.minimum(0.20 - np.abs(xr), -0.5 - yr), edge) * (yr < -0.5)
    body = np.maximum(body, neck)

    dome_r, dome_l = anatomy["dome_right"], anatomy["dome_right"] + anatomy["dome_drop"]
    lungs = []
    for side, dome in ((-1.0, dome_r), (1.0, dome_l)):
        cx = side * anatomy["lung_cx"]
        inside = ellipse_distance(yr, xr, -0.08, cx, anatomy["lung_ry"], anatomy["lung_rx"])
        dome_y = dome - 0.9 * (xr - cx) ** 2 - 0.25 * side * (xr - cx)  # domes curve down laterally
        below_dome = dome_y - yr
        lungs.append(soft_step(np.minimum(inside, below_dome), edge))
    heart = soft_step(ellipse_distance(yr, xr, dome_r - 0.15, 0.10, anatomy["heart_ry"], anatomy["heart_rx"]), edge)
    mediastinum = soft_step(0.12 - np.abs(xr - 0.02), 2 * edge) * soft_step(dome_r - yr, 3 * edge) * body
    spine = soft_step(0.06 - np.abs(xr), edge) * body
    spine = spine * (0.75 + 0.25 * np.cos(2 * np.pi * yr / 0.11) ** 2)

    lung = np.maximum(lungs[0], lungs[1])
    thorax = body * soft_step(dome_l + 0.1 - yr, 4 * edge)
    lateral = np.abs(xr)
    ribs = np.zeros_like(body)
    period, phase = anatomy["rib_period"], anatomy["rib_phase"]
    for u, weight in ((yr + 0.25 * lateral - 1.1 * lateral**2, 1.0),   # posterior ribs: arcs falling laterally
                      (yr - 0.55 * lateral, 0.45)):                     # anterior ribs: fainter, falling medially
        band = np.square(np.square(np.square(0.5 + 0.5 * np.cos(2 * np.pi * u / period + phase))))  # ^8: thin
        ribs = ribs + weight * band
    ribs = ribs * thorax * soft_step(lateral - 0.07, edge) * soft_step(0.92 - lateral, 4 * edge) \
        * soft_step(yr + 0.75, 4 * edge)
    clavicle_y = -0.62 + 0.25 * lateral
    clavicles = soft_step(0.028 - np.abs(yr - clavicle_y), edge) * soft_step(lateral - 0.06, edge) \
        * soft_step(0.62 - lateral, 3 * edge)

    # vessels fan out from the hila (x = ±0.13, y = 0): denser and brighter near them
    near_hilum = np.exp(-np.abs(lateral - 0.13) / 0.45) * np.exp(-np.abs(yr - 0.02) / 0.45)
    vessel = ridges(vessels, 0.16) * near_hilum
    # more tissue overlies the lower and medial lung: it is less dark there
    lung_shade = 1.0 - 0.25 * np.clip(yr + 0.2, 0, 1) - 0.2 * np.exp(-((lateral - 0.1) / 0.2) ** 2)

    visible_lung = lung * (1.0 - heart)
    image = (0.04 + _SOFT_TISSUE * body - _LUNG_AIR * visible_lung * lung_shade
             + _MEDIASTINUM * np.maximum(mediastinum, heart * body) + _HEART * heart * lung + _SPINE * spine + _RIB * ribs + _CLAVICLE * clavicles
             + _VESSEL * vessel * lung)
    return image, lungs[0] * (1 - heart), lungs[1] * (1 - heart), heart


def _opacities(rng, n, size, lung_r, lung_l, y, x, has, kinds):
    """Pneumonia-like opacity intensities ``(N, H, W)`` and soft masks, where ``has``.

    ``consolidated``: one dense, confluent region in one lung (lobar pneumonia).
    ``diffuse``: fainter, patchy regions in both lungs (bronchopneumonia, viral pneumonia).
    """
    texture = smooth_field(rng, (size, size), batch=n, knots=10)
    shape_noise = smooth_field(rng, (size, size), batch=n, knots=7)
    add = np.zeros((n, size, size), dtype=np.float32)
    soft = np.zeros((n, size, size), dtype=np.float32)
    for i in np.flatnonzero(has):
        diffuse = kinds[i] == "diffuse"
        lungs = [lung_r[i], lung_l[i]] if diffuse else [lung_r[i] if rng.random() < 0.55 else lung_l[i]]
        region = np.zeros((size, size), dtype=np.float32)
        for lung in lungs:
            ys, xs = np.nonzero(lung > 0.9)
            if len(ys) == 0:
                continue
            j = rng.integers(len(ys))
            radius = rng.uniform(0.14, 0.22) if diffuse else rng.uniform(0.18, 0.30)
            d = ellipse_distance(y, x, y[ys[j], 0], x[0, xs[j]], radius * rng.uniform(0.9, 1.4), radius)
            region = np.maximum(region, soft_step(d + 0.06 * shape_noise[i], 0.03) * lung)
        if diffuse:
            amp, pattern = rng.uniform(0.12, 0.20), 0.55 + 0.45 * np.tanh(1.5 * texture[i])
        else:
            amp, pattern = rng.uniform(0.22, 0.36), 0.85 + 0.15 * texture[i]
        add[i] = amp * region * pattern
        soft[i] = region
    return add, soft


def _nodules(rng, n, size, lung_r, lung_l, y, x, counts):
    """Round nodules: intensities ``(N, H, W)``, soft masks, and pixel boxes per image."""
    add = np.zeros((n, size, size), dtype=np.float32)
    soft = np.zeros((n, size, size), dtype=np.float32)
    boxes = []
    px = 2.0 / size
    for i in range(n):
        ys, xs = np.nonzero(np.maximum(lung_r[i], lung_l[i]) > 0.9)
        found = []
        for _ in range(counts[i] if len(ys) else 0):
            j = rng.integers(len(ys))
            r = rng.uniform(0.035, 0.075)  # 2-5 % of the image: 4.5-10 px across at 128 px
            ry, amp = r * rng.uniform(0.85, 1.15), rng.uniform(0.12, 0.24)
            half = int(np.ceil(max(r, ry) / px)) + 3  # draw in a window around the nodule only
            r0, r1 = max(ys[j] - half, 0), min(ys[j] + half + 1, size)
            c0, c1 = max(xs[j] - half, 0), min(xs[j] + half + 1, size)
            d = ellipse_distance(y[r0:r1], x[:, c0:c1], y[ys[j], 0], x[0, xs[j]], ry, r)
            blob = soft_step(d, 0.6 * px)
            add[i, r0:r1, c0:c1] += amp * blob * (0.7 + 0.3 * np.clip(d / r, 0, 1))
            soft[i, r0:r1, c0:c1] = np.maximum(soft[i, r0:r1, c0:c1], blob)
            rows, cols = np.nonzero(blob > 0.5)
            if len(rows):
                found.append([c0 + cols.min(), r0 + rows.min(), c0 + cols.max() + 1, r0 + rows.max() + 1])
        boxes.append(np.array(found, dtype=np.float32).reshape(-1, 4))
    return add, soft, boxes


MAX_SIZE = 4096
"""The largest image side :func:`chest_radiographs` makes, in pixels (a digital radiograph
is about 3,000)."""

MAX_NODULES = 10
"""The most nodules :func:`chest_radiographs` places in one image."""


MAX_PIXELS = 2**28
"""The most pixels (images x size x size) one call of :func:`chest_radiographs` makes."""


def _site_list(sites: str | Sequence[str], n: int) -> list[str]:
    """One checked site name per image."""
    if isinstance(sites, str):
        site_list = [sites] * n
    elif isinstance(sites, (Sequence, np.ndarray)) and all(isinstance(name, str) for name in sites):
        site_list = list(sites)
    else:
        raise ValueError(f"sites must be a site name or a list of names, one per image; got {sites!r:.80}")
    for name in set(site_list):
        get_site(name)
    if len(site_list) != n:
        raise ValueError(f"{len(site_list)} sites given for {n} images")
    return site_list


def _per_image(values: Sequence, name: str, n: int, *, maximum: int | None) -> np.ndarray:
    """One integer in ``[0, maximum]`` per image, as an int64 array ``(n,)``."""
    kind = "0/1 flag (or bool)" if maximum == 1 else (
        "non-negative integer" if maximum is None else f"integer from 0 to {maximum}")
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        array = np.asarray([], dtype=float)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"{name} needs one {kind} per image ({n}); got {np.shape(array)} values")
    if array.dtype != bool and not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must hold numbers, one {kind} per image; got dtype {array.dtype}")
    real = array.astype(float)
    bad = ~np.isfinite(real) | (real < 0) | (real != np.round(real)) | (real >= 2**31)
    if maximum is not None:
        bad |= real > maximum
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must hold one {kind} per image; got {array[i].item()!r} at index {i}")
    return array.astype(np.int64)


def chest_radiographs(
    n: int,
    *,
    seed: int = 0,
    size: int = 128,
    pneumonia: float | Sequence[bool] = 0.5,
    nodules: float | Sequence[int] = 0.3,
    sites: str | Sequence[str] = "A",
    patient_seeds: Sequence[int] | None = None,
) -> RadiographBatch:
    """Generate ``n`` chest radiographs of ``size × size`` pixels.

    Parameters
    ----------
    seed
        Seeds everything not fixed by ``patient_seeds`` (pathology, noise).
    pneumonia
        Probability of a pneumonia-like opacity, or one flag per image. Half of the opacities
        are ``diffuse``, half ``consolidated``.
    nodules
        Probability that an image has nodules (then 1–3 of them), or a count per image.
    sites
        One site name for all images or one per image (see :data:`~medlab.phantoms.SITES`).
    patient_seeds
        One anatomy seed per image; images sharing a seed show the same patient. Default:
        every image a different patient.

    Taught in lab 01, section 1 (What is in a DICOM file).
    """
    n = arguments.integer(n, "n", minimum=1)
    size = arguments.integer(size, "size", minimum=32, maximum=MAX_SIZE)
    seed = arguments.integer(seed, "seed", minimum=0)
    if np.isscalar(pneumonia):
        pneumonia = arguments.probability(pneumonia, "pneumonia")
    else:
        pneumonia = _per_image(pneumonia, "pneumonia", n, maximum=1)
    if np.isscalar(nodules):
        nodules = arguments.probability(nodules, "nodules")
    else:
        nodules = _per_image(nodules, "nodules", n, maximum=MAX_NODULES)
    if n * size * size > MAX_PIXELS:
        raise ValueError(
            f"{n} images of {size} x {size} pixels are {n * size * size:,} pixels; chest_radiographs "
            f"makes at most {MAX_PIXELS:,} in one call: make them in batches"
        )
    rng = np.random.default_rng([seed, 11])
    site_list = _site_list(sites, n)
    if patient_seeds is None:
        patient_seeds = rng.integers(0, 2**31, size=n)
    else:
        patient_seeds = _per_image(patient_seeds, "patient_seeds", n, maximum=None)

    has_opacity = (rng.random(n) < pneumonia) if np.isscalar(pneumonia) else pneumonia.astype(bool)
    if np.isscalar(nodules):
        counts = np.where(rng.random(n) < nodules, rng.integers(1, 4, size=n), 0)
    else:
        counts = nodules
    kinds = [OPACITY_TYPES[int(k)] if h else "none" for h, k in zip(has_opacity, rng.integers(0, 2, size=n))]

    anatomy = _anatomy(patient_seeds)
    g = grid(size)
    y, x = g[:, None], g[None, :]
    images, masks, boxes = [], [], []
    for start in range(0, n, _CHUNK):  # chunks keep the working set in the CPU cache
        part = slice(start, start + _CHUNK)
        chunk_rng = np.random.default_rng([seed, 13, start])
        im, m, b = _render(chunk_rng, {k: v[part] for k, v in anatomy.items()}, y, x,
                           has_opacity[part], kinds[part], counts[part], site_list[part])
        images.append(im)
        masks.append(m)
        boxes += b
    return RadiographBatch(images=np.concatenate(images)[:, None], masks=np.concatenate(masks), boxes=boxes,
                           labels=has_opacity.astype(np.int64), opacity_types=kinds, sites=site_list)


def _render(rng, anatomy, y, x, has_opacity, kinds, counts, sites):
    """Images ``(n, H, W)``, masks ``(n, K, H, W)`` and boxes for one chunk of images."""
    n, size = len(has_opacity), len(y)
    clean, lung_r, lung_l, heart = _compose(anatomy, y, x, _vessel_fields(anatomy, size))
    opacity, opacity_soft = _opacities(rng, n, size, lung_r, lung_l, y, x, has_opacity, kinds)
    nodule, nodule_soft, boxes = _nodules(rng, n, size, lung_r, lung_l, y, x, counts)
    images = acquire_radiographs(np.clip(clean + opacity + nodule, 0, 1).astype(np.float32), sites, rng)
    masks = np.stack([lung_r > 0.5, lung_l > 0.5, heart > 0.5, opacity_soft > 0.5, nodule_soft > 0.5], axis=1)
    return images, masks, boxes
