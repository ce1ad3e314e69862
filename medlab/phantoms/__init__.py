"""The synthetic patient cohort: chest radiographs, CT in Hounsfield units, MR-like contrasts,
acquisition sites, and patient metadata. Deterministic: the same seeds give the same pixels.

- :func:`chest_radiographs` — 2D radiographs with lung/heart/opacity/nodule masks and boxes
- :func:`ct_volume` — CT volumes or slices in HU with a label map (:data:`CT_LABELS`)
- :func:`mr_like` — a T1/T2-like image of the same anatomy
- :func:`make_cohort`, :func:`render_radiographs`, :func:`render_ct` — patients, sites, metadata
- :data:`SITES` — the scanners, which differ in noise, blur, shading and contrast
"""

from medlab.phantoms.acquisition import SITES, Site
from medlab.phantoms.cohort import Record, cohort_table, make_cohort, render_ct, render_radiographs
from medlab.phantoms.ct import HU, LABELS as CT_LABELS, CTVolume, ct_volume
from medlab.phantoms.mr import mr_like
from medlab.phantoms.radiograph import FIELD_OF_VIEW_MM, MASK_NAMES, RadiographBatch, chest_radiographs

__all__ = [
    "FIELD_OF_VIEW_MM",
    "SITES", "Site", "Record", "cohort_table", "make_cohort", "render_ct", "render_radiographs",
    "HU", "CT_LABELS", "CTVolume", "ct_volume", "mr_like", "MASK_NAMES", "RadiographBatch", "chest_radiographs",
]
