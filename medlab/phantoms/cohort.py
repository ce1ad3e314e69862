"""The synthetic patient cohort: who the patients are, where they were imaged, what they have.

A cohort is a list of :class:`Record`, one per image. Patients have one to several images
(admission and follow-ups), all from the same site and sharing their anatomy — so splitting
by image instead of by patient leaks, as it does with real data. Age raises the risk of
pneumonia and nodules, and the portable-unit site ``C`` sees sicker patients than the others:
the confounding that subgroup analyses must notice.

>>> records = make_cohort(5, seed=0)
>>> records[0].patient_id, records[0].site in SITES
('P0000', True)
>>> batch = render_radiographs(records, size=64)
>>> len(batch) == len(records) and list(batch.labels) == [r.label for r in records]
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medlab import arguments
from medlab.phantoms.acquisition import SITES, get_site
from medlab.phantoms.radiograph import RadiographBatch, chest_radiographs

SITE_RISK = {"A": 0.0, "B": 0.2, "C": 0.9}
"""How much each site raises the log-odds of pneumonia (site C images the sickest patients)."""


@dataclass(frozen=True)
class Record:
    """One image of the cohort and its patient's metadata.

    ``label`` is 1 when the image shows a pneumonia-like opacity; ``n_nodules`` counts its
    nodules. ``patient_seed`` fixes the patient's anatomy, ``image_seed`` the rest.

    Taught in lab 02, section 1 (The cohort and the task).
    """

    image_id: str
    patient_id: str
    visit: int
    site: str
    age: int
    sex: str
    label: int
    n_nodules: int
    patient_seed: int
    image_seed: int


MAX_PATIENTS = 1_000_000
"""The most patients :func:`make_cohort` draws."""


def _visit_range(images_per_patient) -> tuple[int, int]:
    """``(low, high)`` images per patient, integers with ``1 <= low <= high <= 100``."""
    wanted = "images_per_patient must be a range (low, high) of integers with 1 <= low <= high <= 100"
    try:
        lo, hi = images_per_patient
        lo, hi = arguments.integer(lo, "low", minimum=1), arguments.integer(hi, "high", maximum=100)
    except (TypeError, ValueError):
        raise ValueError(f"{wanted}; got {images_per_patient!r}") from None
    if lo > hi:
        raise ValueError(f"{wanted}; got {images_per_patient!r}")
    return lo, hi


def _site_weights(sites, site_weights) -> tuple[tuple[str, ...], np.ndarray]:
    """Checked site names and their weights (finite, non-negative, not all zero)."""
    if isinstance(sites, str) or not all(isinstance(name, str) for name in sites) or not len(sites):
        raise ValueError(f"sites must be a non-empty list of site names such as ('A', 'B'); got {sites!r:.80}")
    sites = tuple(sites)
    for name in sites:
        get_site(name)
    if site_weights is None:
        return sites, np.ones(len(sites))
    try:
        weights = np.asarray(site_weights, dtype=float)
    except (TypeError, ValueError):
        weights = np.asarray([np.nan])
    if weights.shape != (len(sites),) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            f"site_weights needs one finite non-negative weight per site ({len(sites)}), not all "
            f"zero; got {site_weights!r:.80}"
        )
    return sites, weights


def make_cohort(
    n_patients: int,
    *,
    seed: int = 0,
    images_per_patient: tuple[int, int] = (1, 3),
    sites: Sequence[str] = ("A", "B", "C"),
    site_weights: Sequence[float] | None = None,
    prevalence: float = 0.35,
    nodule_rate: float = 0.3,
) -> list[Record]:
    """Draw a cohort of ``n_patients`` patients; returns one :class:`Record` per image.

    Parameters
    ----------
    images_per_patient
        Inclusive range of how many images a patient has.
    sites, site_weights
        Sites patients are drawn from and how often (default: equally).
    prevalence
        Approximate fraction of patients with pneumonia (before age and site effects), in
        ``(0, 1)``: the age and site effects shift its log-odds, which 0 and 1 do not have.
    nodule_rate
        Approximate fraction of patients with at least one nodule.

    Taught in lab 02, section 1 (The cohort and the task).
    """
    n_patients = arguments.integer(n_patients, "n_patients", minimum=1, maximum=MAX_PATIENTS)
    seed = arguments.integer(seed, "seed", minimum=0)
    lo, hi = _visit_range(images_per_patient)
    prevalence = arguments.probability(prevalence, "prevalence", exclusive=True)
    nodule_rate = arguments.probability(nodule_rate, "nodule_rate")
    sites, weights = _site_weights(sites, site_weights)
    rng = np.random.default_rng([seed, 41])
    base = np.log(prevalence / (1 - prevalence)) - 0.3
    records = []
    for p in range(n_patients):
        age = int(np.clip(rng.normal(58, 16), 18, 95))
        sex = "F" if rng.random() < 0.5 else "M"
        site = sites[rng.choice(len(sites), p=weights / weights.sum())]
        logit = base + 0.03 * (age - 58) + SITE_RISK.get(site, 0.0)
        label = int(rng.random() < 1 / (1 + np.exp(-logit)))
        nodule_p = nodule_rate * (0.6 + 0.8 * (age - 18) / 77)
        n_nodules = int(rng.integers(1, 4)) if rng.random() < nodule_p else 0
        patient_seed = int(rng.integers(0, 2**31))
        for visit in range(int(rng.integers(lo, hi + 1))):
            records.append(Record(
                image_id=f"P{p:04d}-{visit}", patient_id=f"P{p:04d}", visit=visit, site=site, age=age,
                sex=sex, label=label, n_nodules=n_nodules, patient_seed=patient_seed,
                image_seed=int(rng.integers(0, 2**31)),
            ))
    return records


def render_radiographs(records: Sequence[Record], *, size: int = 128, seed: int = 0) -> RadiographBatch:
    """Chest radiographs of ``records``, in order; same records and seed, same pixels.

    Taught in lab 02, section 1 (The cohort and the task).
    """
    if not records:
        raise ValueError("no records to render")
    return chest_radiographs(
        len(records), seed=seed, size=size,
        pneumonia=[bool(r.label) for r in records], nodules=[r.n_nodules for r in records],
        sites=[r.site for r in records], patient_seeds=[r.patient_seed for r in records],
    )


__all__ = ["SITES", "SITE_RISK", "Record", "make_cohort", "render_radiographs"]
