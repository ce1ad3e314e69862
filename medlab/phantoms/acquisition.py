"""Acquisition effects and the named sites (scanners) of the synthetic cohort.

A real image is anatomy seen through a machine: blurred by the detector, shaded by uneven
exposure or coil sensitivity, coarsened by its resolution, and noisy. Sites differ in exactly
these, which is what makes a model trained at one hospital stumble at another (domain shift).

Sampling and applying are separate steps, as in torchio's ``RandomGamma`` (which draws a
parameter) and ``Gamma`` (which applies it):

- :func:`sample_acquisition` draws the random parts of an acquisition from the caller's ``rng``:
  a smooth shading field and a unit noise field per image (an :class:`Acquisition`);
- :func:`apply_contrast`, :func:`apply_gamma`, :func:`apply_shading`, :func:`apply_blur` and
  :func:`apply_noise` each apply one effect, given its parameters and any random field; they are
  deterministic and draw nothing;
- :func:`apply_site` applies a site's effects (all, or those named in ``effects``) with an
  :class:`Acquisition`, in the fixed order of :data:`EFFECTS`;
- :func:`acquire_radiographs` is the two steps together: sample, then apply each image's site.

>>> images = np.full((2, 32, 32), 0.5, dtype=np.float32)
>>> acquisition = sample_acquisition(np.random.default_rng(0), images.shape)
>>> apply_site(images, "C", acquisition).shape
(2, 32, 32)
>>> bool(np.array_equal(apply_site(images, "C", effects=("blur",)), images))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.ndimage as ndi

from medlab import arguments
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


EFFECTS = ("contrast", "gamma", "shading", "blur", "noise")
"""A radiograph site's effects, in the order :func:`apply_site` applies them."""

_RANDOM_EFFECTS = ("shading", "noise")


def _images(images: Any, name: str = "images") -> np.ndarray:
    """``images`` as a finite floating-point array ``(N, H, W)``, not copied."""
    array = np.asarray(images)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name} must be an array of shape (N, H, W) with N, H, W >= 1; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must hold floating-point intensities; got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite; got NaN or infinite values")
    return array


def _field(values: Any, name: str, images: np.ndarray) -> np.ndarray:
    """A random field with the images' shape ``(N, H, W)``."""
    array = _images(values, name)
    if array.shape != images.shape:
        raise ValueError(f"{name} must have the images' shape {images.shape}; got {array.shape}")
    return array


@dataclass(frozen=True, eq=False)
class Acquisition:
    """The random parts of acquiring ``N`` radiographs of ``H × W`` pixels.

    Drawn by :func:`sample_acquisition`; applied, deterministically, by :func:`apply_site`
    (or :func:`apply_shading` and :func:`apply_noise`). Indexing selects images:
    ``acquisition[[0, 2]]`` holds the fields of images 0 and 2.

    Attributes
    ----------
    shading: ``(N, H, W)`` smooth field, zero mean and unit standard deviation per image; a site
        multiplies the image by ``exp(inhomogeneity · shading)``.
    noise: ``(N, H, W)`` standard normal noise (unit standard deviation); a site scales it to its
        noise level.

    Taught in lab 04, section 5 (Domain shift: a new hospital's scanner).
    """

    shading: np.ndarray = field(repr=False)
    noise: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        shading_field = _images(self.shading, "shading")
        noise_field = _images(self.noise, "noise")
        if shading_field.shape != noise_field.shape:
            raise ValueError(f"shading {shading_field.shape} and noise {noise_field.shape} "
                             f"must have one shape (N, H, W)")
        object.__setattr__(self, "shading", shading_field)
        object.__setattr__(self, "noise", noise_field)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(N, H, W)``: the shape of the images these fields are for."""
        return self.shading.shape  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.shading)

    def __getitem__(self, index: Any) -> Acquisition:
        rows = np.arange(len(self))[index]
        rows = np.atleast_1d(rows)
        return Acquisition(shading=self.shading[rows], noise=self.noise[rows])

    def __repr__(self) -> str:
        return f"Acquisition(shape={self.shape})"


def sample_acquisition(rng: np.random.Generator, shape: Sequence[int]) -> Acquisition:
    """Draw the random fields for acquiring images of ``shape`` ``(N, H, W)``.

    Draws, from ``rng`` and in this order, the shading fields of all ``N`` images (a smooth
    field of 4 × 4 knots each), then their noise; both float32.

    Taught in lab 04, section 5 (Domain shift: a new hospital's scanner).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)); "
                         f"got {type(rng).__name__}")
    n, height, width = arguments.shape(shape, "shape", ndim=3, axes="(N, H, W)")
    shading_field = smooth_field(rng, (height, width), batch=n, knots=4)
    noise_field = rng.standard_normal((n, height, width), dtype=np.float32)
    return Acquisition(shading=shading_field, noise=noise_field)


def apply_contrast(images: np.ndarray, *, contrast: float) -> np.ndarray:
    """Scale each image's deviations from its own mean by ``contrast`` (1 = unchanged, up to
    rounding; 0 = flat).

    ``images`` ``(N, H, W)`` in intensity units; returns a new ``(N, H, W)`` array, not clipped.
    """
    x = _images(images)
    contrast = arguments.number(contrast, "contrast", low=0.0)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return mean + contrast * (x - mean)


def apply_gamma(images: np.ndarray, *, gamma: float) -> np.ndarray:
    """The detector's response curve ``x ** gamma`` on intensities in [0, 1] (``x`` clipped to
    ``[1e-4, 1]`` first); ``gamma`` 1 leaves the images exactly as they are.

    ``images`` ``(N, H, W)``; returns a new ``(N, H, W)`` array.
    """
    x = _images(images)
    gamma = arguments.number(gamma, "gamma", low=0.0, low_open=True)
    if gamma == 1.0:
        return x.copy()
    return np.exp(gamma * np.log(np.clip(x, 1e-4, 1.0)))


def apply_shading(images: np.ndarray, field: np.ndarray, *, strength: float) -> np.ndarray:
    """Multiply the images by the smooth shading ``exp(strength · field)`` (uneven exposure).

    ``field`` has the images' shape ``(N, H, W)``, e.g. :attr:`Acquisition.shading` (unit
    standard deviation, so ``strength`` is about the relative brightness change across the
    image); ``strength`` 0 leaves the images exactly as they are. Returns a new array, not clipped.
    """
    x = _images(images)
    field = _field(field, "field", x)
    strength = arguments.number(strength, "strength", low=0.0)
    return x * np.exp(strength * field)


def blur_sigma(*, blur: float, resolution: float = 1.0) -> float:
    """The Gaussian standard deviation in pixels that stands for a point spread of ``blur``
    pixels seen by a detector resolving a fraction ``resolution`` (in (0, 1]) of the pixels.

    One detector element then spans ``1 / resolution`` pixels, whose box profile has a standard
    deviation of about ``0.3 / resolution`` pixels; the two add in quadrature.
    """
    blur = arguments.number(blur, "blur", low=0.0)
    resolution = arguments.number(resolution, "resolution", low=0.0, high=1.0, low_open=True)
    return float(np.hypot(blur, 0.3 * (1.0 / resolution - 1.0)))


def apply_blur(images: np.ndarray, *, blur: float, resolution: float = 1.0) -> np.ndarray:
    """Blur each image by the detector's point spread and resolution (see :func:`blur_sigma`):
    a Gaussian filter over rows and columns, not across images, with edges extended.

    ``images`` ``(N, H, W)``; ``blur`` in pixels (0 with ``resolution`` 1: unchanged).
    Returns a new ``(N, H, W)`` array.
    """
    x = _images(images)
    sigma = blur_sigma(blur=blur, resolution=resolution)
    if sigma > 0:
        return ndi.gaussian_filter(x, sigma=(0, sigma, sigma), mode="nearest")
    return x.copy()


def apply_noise(images: np.ndarray, noise: np.ndarray, *, level: float) -> np.ndarray:
    """Add signal-dependent noise: ``images + level · (0.5 + 0.5 · sqrt(x)) · noise``.

    At intensity ``x`` (clipped to [0, 1] in the factor) the noise has a standard deviation of
    ``level · (0.5 + 0.5 · sqrt(x))``: ``level`` at 1, half of it at 0 (quantum noise grows with
    the signal; an electronic floor does not). ``noise`` is unit noise with the images' shape
    ``(N, H, W)``, e.g. :attr:`Acquisition.noise`; ``level`` is in intensity units. Returns a
    new array, not clipped.
    """
    x = _images(images)
    noise = _field(noise, "noise", x)
    level = arguments.number(level, "level", low=0.0)
    return x + level * (0.5 + 0.5 * np.sqrt(np.clip(x, 0, 1))) * noise


def _effects(effects: str | Sequence[str]) -> tuple[str, ...]:
    """The chosen effects in the order of :data:`EFFECTS`."""
    names = (effects,) if isinstance(effects, str) else effects
    try:
        names = tuple(names)
    except TypeError:
        names = (effects,)
    unknown = [name for name in names if name not in EFFECTS]
    if unknown:
        raise ValueError(f"unknown effect {unknown[0]!r:.80}: effects are named among {', '.join(EFFECTS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"effects must name each effect at most once; got {names!r:.80}")
    return tuple(name for name in EFFECTS if name in names)


def apply_site(
    images: np.ndarray,
    site: str | Site,
    acquisition: Acquisition | None = None,
    *,
    effects: str | Sequence[str] = EFFECTS,
) -> np.ndarray:
    """Apply a site's effects to radiographs ``(N, H, W)`` in [0, 1], deterministically.

    Parameters
    ----------
    site
        A site name (see :data:`SITES`) or a :class:`Site`.
    acquisition
        The random fields for these images (:func:`sample_acquisition` with ``images.shape``);
        needed when ``effects`` includes ``"shading"`` or ``"noise"``.
    effects
        The effects to apply, among :data:`EFFECTS`; they are applied in that order, whatever
        the order given. ``("blur",)`` applies the site's blur alone.

    Returns
    -------
    ``(N, H, W)`` array of the images' dtype, clipped to [0, 1].

    Taught in lab 04, section 5 (Domain shift: a new hospital's scanner).
    """
    x = _images(images)
    dtype = x.dtype
    site = site if isinstance(site, Site) else get_site(site)
    chosen = _effects(effects)
    if acquisition is None:
        if any(name in _RANDOM_EFFECTS for name in chosen):
            needed = [repr(name) for name in chosen if name in _RANDOM_EFFECTS]
            what = f"{needed[0]} needs a random field" if len(needed) == 1 else f"{' and '.join(needed)} need random fields"
            raise ValueError(f"the effect {what}: pass acquisition=sample_acquisition(rng, images.shape), "
                             f"or leave it out of effects")
    elif not isinstance(acquisition, Acquisition):
        raise ValueError(f"acquisition must be an Acquisition (from sample_acquisition); "
                         f"got {type(acquisition).__name__}")
    elif acquisition.shape != x.shape:
        raise ValueError(f"the acquisition is for images of shape {acquisition.shape}; got images of shape {x.shape}")
    for name in chosen:
        if name == "contrast":
            x = apply_contrast(x, contrast=site.contrast)
        elif name == "gamma":
            x = apply_gamma(x, gamma=site.gamma)
        elif name == "shading":
            x = apply_shading(x, acquisition.shading, strength=site.inhomogeneity)
        elif name == "blur":
            x = apply_blur(x, blur=site.blur, resolution=site.resolution)
        else:
            x = apply_noise(x, acquisition.noise, level=site.noise)
    return np.clip(x, 0.0, 1.0).astype(dtype, copy=False)


def acquire_radiographs(images: np.ndarray, sites: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Apply each image's site to clean radiographs ``(N, H, W)`` in [0, 1]; returns ``(N, H, W)``
    clipped to [0, 1], of the images' dtype.

    The same as drawing the fields with ``sample_acquisition(rng, images.shape)`` and applying
    :func:`apply_site` to the images of each site with their fields.
    """
    images = _images(images)
    names = list(sites) if isinstance(sites, (Sequence, np.ndarray)) and not isinstance(sites, str) else None
    if names is None or len(names) != len(images) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"sites must list one site name per image ({len(images)}); got {sites!r:.80}")
    for name in set(names):
        get_site(name)
    sites = names
    acquisition = sample_acquisition(rng, images.shape)
    out = np.empty_like(images)
    for name in sorted(set(sites)):
        idx = np.array([i for i, s in enumerate(sites) if s == name])
        out[idx] = apply_site(images[idx], name, acquisition[idx])
    return out
