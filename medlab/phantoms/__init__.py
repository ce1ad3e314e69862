"""The synthetic patient cohort: chest radiographs, CT in Hounsfield units, MR-like contrasts,
acquisition sites, and patient metadata. Deterministic: the same seeds give the same pixels.

- :func:`chest_radiographs` — 2D radiographs with lung/heart/opacity/nodule masks and boxes
- :func:`ct_volume` — CT volumes or slices in HU with a label map (:data:`CT_LABELS`)
- :func:`mr_like` — a T1/T2-like image of the same anatomy
- :func:`make_cohort`, :func:`render_radiographs` — patients, sites, metadata, and their radiographs
- :data:`SITES` — the scanners, which differ in noise, blur, shading and contrast
- :func:`sample_acquisition`, :func:`apply_site` and ``apply_contrast`` … ``apply_noise`` — a
  site's effects, sampled once and applied deterministically, together or one at a time
- :func:`slide_region`, :func:`slide_tiles` — an H&E-like whole slide, rendered region by region
"""

from medlab.phantoms.acquisition import (
    EFFECTS, SITES, Acquisition, Site, apply_blur, apply_contrast, apply_gamma, apply_noise, apply_shading, apply_site,
    blur_sigma, sample_acquisition,
)
from medlab.phantoms.cohort import Record, make_cohort, render_radiographs
from medlab.phantoms.ct import HU, LABELS as CT_LABELS, CTVolume, ct_volume
from medlab.phantoms.mr import mr_like
from medlab.phantoms.radiograph import FIELD_OF_VIEW_MM, MASK_NAMES, RadiographBatch, chest_radiographs
from medlab.phantoms.slide import slide_region, slide_tiles

__all__ = [
    "FIELD_OF_VIEW_MM",
    "SITES", "Site", "EFFECTS", "Acquisition", "sample_acquisition", "apply_site", "apply_contrast", "apply_gamma",
    "apply_shading", "apply_blur", "apply_noise", "blur_sigma",
    "Record", "make_cohort", "render_radiographs",
    "HU", "CT_LABELS", "CTVolume", "ct_volume", "mr_like", "MASK_NAMES", "RadiographBatch", "chest_radiographs",
    "slide_region", "slide_tiles",
]
