"""Write synthetic images as realistic DICOM files with fictitious patients.

:func:`write_ct_series` writes a ``(z, y, x)`` volume in Hounsfield units as an axial CT
series, one file per slice; :func:`write_radiograph` writes a ``(H, W)`` image as a chest
radiograph. Both fill the patient, study and site attributes from :func:`fake_patient`, so
that the files look like real ones and de-identification has something to remove.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.datadict import tag_for_keyword
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

import medlab
from medlab.dicom.errors import DicomError
from medlab.windowing import WINDOWS

CT_STORED_MIN_HU = -1024
CT_STORED_MAX_HU = 65535 - 1024
"""HU range that :func:`write_ct_series` can store (unsigned 16-bit, intercept -1024)."""


_FIRST_NAMES = {
    "F": "Alma Brigid Clara Dagny Elin Freya Greta Hedda Ines Juno".split(),
    "M": "Anton Bruno Casimir Dario Emil Floris Gustav Hugo Ivo Jonas".split(),
}
_LAST_NAMES = (
    "Ashdown Brightwater Coldbrook Dunmore Elderfield Fernhill Greystone Hollowell Ivybridge "
    "Juniper Kestrel Larkspur Moorcroft Nettlefield"
).split()
_STREETS = ("Elm Row", "Harbour Lane", "Mill Street", "Orchard Way", "Quarry Road", "Willow Close")
_TOWNS = ("Northbridge", "Eastwick", "Millbrook", "Westhaven")


def fake_patient(seed: int) -> dict[str, str]:
    """Realistic but fictitious patient, study and site attributes (DICOM keyword → value).

    Names, IDs, dates, addresses and phone numbers (555-01xx, reserved for fiction) are
    drawn from ``seed`` and describe nobody: they exist so that synthetic files look like
    real ones and de-identification has something to remove.

    >>> patient = fake_patient(0)
    >>> patient["PatientName"], patient["PatientSex"], patient["PatientAge"], patient == fake_patient(0)
    ('Fernhill^Greta', 'F', '035Y', True)

    Taught in lab 01, section 11 (De-identification).
    """
    rng = random.Random(f"medlab-patient-{seed}")
    sex = rng.choice("FM")
    study = date(2024, 1, 1) + timedelta(days=rng.randrange(366))
    birth = study - timedelta(days=rng.randrange(25 * 365, 85 * 365))
    age = study.year - birth.year - ((study.month, study.day) < (birth.month, birth.day))

    def person(prefix: str = "") -> str:
        sex_of = rng.choice("FM")
        return f"{rng.choice(_LAST_NAMES)}^{rng.choice(_FIRST_NAMES[sex_of])}" + (
            f"^^{prefix}" if prefix else ""
        )

    town = rng.choice(_TOWNS)
    return {
        "PatientName": f"{rng.choice(_LAST_NAMES)}^{rng.choice(_FIRST_NAMES[sex])}",
        "PatientID": f"ML{rng.randrange(10**6):06d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": sex,
        "PatientAge": f"{age:03d}Y",
        "PatientAddress": f"{rng.randrange(1, 200)} {rng.choice(_STREETS)}, {town}",
        "PatientTelephoneNumbers": f"555-01{rng.randrange(100):02d}",
        "StudyDate": study.strftime("%Y%m%d"),
        "StudyTime": f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
        "AccessionNumber": f"A{rng.randrange(10**7):07d}",
        "StudyID": str(rng.randrange(1, 10**4)),
        "InstitutionName": "MedLab Teaching Hospital",
        "InstitutionAddress": f"1 Infirmary Square, {town}",
        "ReferringPhysicianName": person("Dr"),
        "PerformingPhysicianName": person("Dr"),
        "OperatorsName": person(),
        "StationName": f"MEDLAB{rng.randrange(1, 10)}",
        "DeviceSerialNumber": f"SN{rng.randrange(10**6):06d}",
    }


def _uid(*parts: Any) -> str:
    """A UID derived from ``parts``: the same parts give the same UID."""
    return generate_uid(entropy_srcs=["medlab", *map(str, parts)])


def _ds(value: float) -> str:
    """A float as a DICOM decimal string (at most 16 characters)."""
    return pydicom.valuerep.format_number_as_ds(float(value))


def _new_dataset(
    sop_class: str, sop_instance: str, patient: Mapping[str, Any], seed: int
) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_instance
    ds.Manufacturer = "MedLab"
    ds.SoftwareVersions = f"medlab {medlab.__version__}"
    for keyword, value in patient.items():
        setattr(ds, keyword, value)
    for when in ("Series", "Acquisition", "Content", "InstanceCreation"):
        setattr(ds, f"{when}Date", ds.StudyDate)
        setattr(ds, f"{when}Time", ds.StudyTime)
    block = ds.private_block(0x0009, "MEDLAB", create=True)
    block.add_new(0x01, "LO", f"MedLab synthetic image, seed {seed}")
    return ds


def _patient(patient: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    merged = fake_patient(seed)
    for keyword, value in (patient or {}).items():
        if tag_for_keyword(keyword) is None:
            raise DicomError(
                f"patient={{{keyword!r}: ...}}: {keyword!r} is not a DICOM keyword (e.g. 'PatientName')."
            )
        merged[keyword] = value
    return merged


def _save(ds: FileDataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_ct_series(
    volume_hu: Any,
    folder: str | os.PathLike,
    *,
    spacing: tuple[float, float, float],
    patient: Mapping[str, Any] | None = None,
    series_description: str = "MedLab synthetic CT",
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    seed: int = 0,
) -> list[Path]:
    """Write a volume as an axial CT series, one file per slice (``slice_0000.dcm``, ...).

    ``volume_hu`` is ``(z, y, x)`` in Hounsfield units and ``spacing`` ``(z, y, x)`` in mm.
    Slice ``k`` lies at ``origin + (0, 0, k * spacing_z)`` (LPS, mm) with rows along +x and
    columns along +y. Values are rounded to whole HU (halves to even) and clipped to
    [:data:`CT_STORED_MIN_HU`, :data:`CT_STORED_MAX_HU`] = [-1024, 64511]: they are stored
    as unsigned 16-bit integers with *Rescale Intercept* -1024 and *Slope* 1, so
    :func:`~medlab.dicom.read_series` returns exactly the rounded, clipped values.

    The files carry a fictitious patient (:func:`fake_patient`, updated with ``patient``),
    mediastinum and lung window presets, and one private element (creator ``"MEDLAB"``).
    UIDs derive from ``seed``, the patient and the volume, so the same call writes the same
    bytes. Returns the paths in slice order.

    Taught in lab 01, section 1 (What is in a DICOM file).
    """
    volume, spacing, origin = _checked_ct_input(volume_hu, spacing, origin)
    folder = Path(folder)
    names = _slice_names(folder, volume.shape[0])
    stored = _stored_ct(volume)
    person = _patient(patient, seed)
    uids = _ct_uids(stored, spacing, origin, person, seed, series_description)
    paths = []
    for k, name in enumerate(names):
        ds = _ct_slice(k, stored[k], uids=uids, person=person, seed=seed,
                       series_description=series_description, spacing=spacing, origin=origin)
        _save(ds, folder / name)
        paths.append(folder / name)
    return paths


def _checked_ct_input(
    volume_hu: Any, spacing: Any, origin: Any
) -> tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]:
    """``volume_hu`` as a float64 ``(z, y, x)`` array (HU), ``spacing`` ``(z, y, x)`` and
    ``origin`` ``(x, y, z)`` (LPS) in mm as floats; a :class:`DicomError` for any that cannot
    be written."""
    volume = np.asarray(volume_hu, dtype=np.float64)
    if volume.ndim != 3 or volume.size == 0:
        raise DicomError(f"volume_hu must be a non-empty 3-D array (z, y, x); got shape {volume.shape}.")
    if not np.all(np.isfinite(volume)):
        raise DicomError(
            "volume_hu holds NaN or infinite values; replace them (e.g. with -1024 HU) first."
        )
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise DicomError(f"spacing must be three positive numbers (z, y, x) in mm; got {spacing}.")
    origin = tuple(float(v) for v in origin)
    if len(origin) != 3 or not all(math.isfinite(v) for v in origin):
        raise DicomError(f"origin must be three finite numbers (x, y, z) in LPS mm; got {origin}.")
    return volume, spacing, origin


def _slice_names(folder: Path, count: int) -> list[str]:
    """The file names of ``count`` slices, ``slice_0000.dcm``, ... (more digits from 10,000
    slices); a :class:`DicomError` if ``folder`` holds other ``slice_*.dcm`` files, which
    would mix with the new series."""
    width = max(4, len(str(count - 1)))
    names = [f"slice_{k:0{width}d}.dcm" for k in range(count)]
    if folder.is_dir():
        stale = sorted(p.name for p in folder.glob("slice_*.dcm") if p.name not in names)
        if stale:
            raise DicomError(
                f"{folder} already holds {', '.join(stale[:3])}{' ...' if len(stale) > 3 else ''}, "
                "which would mix with the new series: write into an empty folder."
            )
    return names


def _stored_ct(volume: np.ndarray) -> np.ndarray:
    """The uint16 values stored for a volume in HU: rounded (halves to even), clipped to
    [:data:`CT_STORED_MIN_HU`, :data:`CT_STORED_MAX_HU`] and less :data:`CT_STORED_MIN_HU`
    (the *Rescale Intercept*), same shape."""
    return (np.clip(np.rint(volume), CT_STORED_MIN_HU, CT_STORED_MAX_HU) - CT_STORED_MIN_HU).astype(
        np.uint16
    )


def _ct_uids(
    stored: np.ndarray,
    spacing: tuple[float, ...],
    origin: tuple[float, ...],
    person: Mapping[str, Any],
    seed: int,
    series_description: str,
) -> tuple[str, str, str]:
    """Study, series and frame-of-reference UIDs of a CT series: the study's and the frame's
    derive from ``seed`` and the patient, the series' also from its description and the
    stored volume with its geometry (mm)."""
    fingerprint = hashlib.sha256(
        stored.tobytes() + repr((stored.shape, spacing, origin)).encode()
    ).hexdigest()
    study_uid = _uid("study", seed, person["PatientID"])
    series_uid = _uid("series", seed, series_description, fingerprint)
    frame_uid = _uid("frame-of-reference", seed, person["PatientID"])
    return study_uid, series_uid, frame_uid


def _ct_slice(
    k: int,
    pixels: np.ndarray,
    *,
    uids: tuple[str, str, str],
    person: Mapping[str, Any],
    seed: int,
    series_description: str,
    spacing: tuple[float, ...],
    origin: tuple[float, ...],
) -> FileDataset:
    """Slice ``k`` of an axial CT series as a data set: ``pixels`` ``(y, x)`` are its stored
    uint16 values, ``uids`` the study, series and frame-of-reference UIDs."""
    study_uid, series_uid, frame_uid = uids
    ds = _new_dataset(CTImageStorage, _uid(series_uid, k), person, seed)
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.Modality = "CT"
    ds.ManufacturerModelName = "MedLab synthetic CT"
    ds.StudyDescription = person.get("StudyDescription", "CT CHEST")
    ds.SeriesDescription = series_description
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = 1, 1, k + 1
    ds.PositionReferenceIndicator = ""
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.KVP = "120"
    _set_ct_plane(ds, k, spacing, origin)
    _set_ct_pixels(ds, pixels)
    return ds


def _set_ct_plane(ds: FileDataset, k: int, spacing: tuple[float, ...], origin: tuple[float, ...]) -> None:
    """Place slice ``k`` at ``origin + (0, 0, k * spacing_z)`` (LPS, mm), rows along +x and
    columns along +y, with its thickness and pixel spacing (``spacing`` ``(z, y, x)`` in mm)."""
    z = origin[2] + k * spacing[0]
    ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = _ds(z)
    ds.SliceThickness = ds.SpacingBetweenSlices = _ds(spacing[0])
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[2])]  # row spacing (y) first


def _set_ct_pixels(ds: FileDataset, pixels: np.ndarray) -> None:
    """Store ``pixels`` ``(y, x)`` (uint16) as 16-bit MONOCHROME2 with the HU rescale
    (intercept :data:`CT_STORED_MIN_HU`, slope 1) and the mediastinum and lung windows."""
    (center_m, width_m), (center_l, width_l) = (tuple(WINDOWS[name].values()) for name in ("mediastinum", "lung"))
    ds.set_pixel_data(pixels, "MONOCHROME2", 16, generate_instance_uid=False)
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(CT_STORED_MIN_HU), "1", "HU"
    ds.WindowCenter = [_ds(center_m), _ds(center_l)]
    ds.WindowWidth = [_ds(width_m), _ds(width_l)]
    ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]


def write_radiograph(
    image: Any,
    path: str | os.PathLike,
    *,
    pixel_spacing: tuple[float, float] = (0.5, 0.5),
    patient: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Write a ``(H, W)`` image with values in [0, 1] as a PA chest radiograph (DX, 12 bits).

    Values map linearly to 0..4095 (rounded), MONOCHROME2 (higher is brighter), with
    *Pixel Spacing* and *Imager Pixel Spacing* ``(row, column)`` in mm.
    :func:`~medlab.dicom.read_series` reads it back as ``(1, H, W)`` holding the stored
    values 0..4095.

    Taught in lab 01, section 1 (What is in a DICOM file).
    """
    array, spacing = _checked_radiograph(image, pixel_spacing)
    stored = np.rint(array * 4095).astype(np.uint16)
    person = _patient(patient, seed)
    ds = _radiograph_dataset(stored, spacing, person, seed)
    path = Path(path)
    _save(ds, path)
    return path


def _checked_radiograph(image: Any, pixel_spacing: Any) -> tuple[np.ndarray, tuple[float, ...]]:
    """``image`` as a float64 ``(H, W)`` array in [0, 1] and ``pixel_spacing`` ``(row,
    column)`` in mm as floats; a :class:`DicomError` for either that cannot be written."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise DicomError(f"image must be a non-empty 2-D array (H, W); got shape {array.shape}.")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise DicomError(
            f"image must hold finite values in [0, 1]; got "
            f"[{np.nanmin(array):g}, {np.nanmax(array):g}]. "
            "Rescale it first, e.g. (x - x.min()) / (x.max() - x.min())."
        )
    spacing = tuple(float(s) for s in pixel_spacing)
    if len(spacing) != 2 or min(spacing) <= 0:
        raise DicomError(
            f"pixel_spacing must be two positive numbers (row, column) in mm; got {spacing}."
        )
    return array, spacing


def _radiograph_dataset(
    stored: np.ndarray, spacing: tuple[float, ...], person: Mapping[str, Any], seed: int
) -> FileDataset:
    """A PA chest radiograph (DX, for presentation) holding ``stored`` ``(H, W)`` 12-bit
    values, with pixel spacing ``(row, column)`` in mm; its UIDs derive from ``seed``, the
    patient and the pixels."""
    fingerprint = hashlib.sha256(stored.tobytes() + repr((stored.shape, spacing)).encode()).hexdigest()
    series_uid = _uid("radiograph-series", seed, fingerprint)
    ds = _new_dataset(DigitalXRayImageStorageForPresentation, _uid(series_uid, 0), person, seed)
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ManufacturerModelName = "MedLab synthetic radiograph"
    ds.StudyDescription = person.get("StudyDescription", "XR CHEST PA")
    ds.SeriesDescription = "PA"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = _uid("study", seed, person["PatientID"]), series_uid
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.BodyPartExamined, ds.ViewPosition = "CHEST", "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.KVP = "120"
    ds.PixelSpacing = ds.ImagerPixelSpacing = [_ds(spacing[0]), _ds(spacing[1])]
    ds.set_pixel_data(stored, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LIN", 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    return ds
