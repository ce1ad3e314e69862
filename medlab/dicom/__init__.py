"""DICOM in MedLab: read a series into a volume, write synthetic series, de-identify.

A CT or MR *series* arrives as a folder of files, one 2-D slice each. :func:`read_series`
sorts the slices along the slice normal, checks that they form a regular grid and returns a
:class:`Series`: a float32 volume with axes ``(z, y, x)`` in Hounsfield units for CT, its
spacing, origin and direction. Geometry that would make a naive reader stack a wrong volume
raises a :class:`DicomError` that says what to do; a series acquired with a tilted gantry can
instead be resampled onto a straight grid, on request (``read_series(folder, tilt="correct")``).

:func:`write_ct_series` and :func:`write_radiograph` write synthetic images as realistic
DICOM files with fictitious patients (:func:`fake_patient`); :func:`deidentify` applies the
Basic Application Level Confidentiality Profile of DICOM PS3.15 Annex E to files or folders.

Import everything from here (``from medlab import dicom``; ``dicom.read_series(folder)``).
Each job lives in a module of its own:

| module | one job |
|---|---|
| :mod:`medlab.dicom.read` | :func:`read_series` and the :class:`Series` it returns |
| :mod:`medlab.dicom.geometry` | slice order and grid checks; :func:`orientation_label` |
| :mod:`medlab.dicom.tilt` | gantry tilt: measure the slices' shear, resample them onto a straight grid |
| :mod:`medlab.dicom.write` | :func:`write_ct_series`, :func:`write_radiograph`, :func:`fake_patient` |
| :mod:`medlab.dicom.deidentification` | :func:`deidentify` and :data:`BASIC_PROFILE` |
| :mod:`medlab.dicom.basic_profile` | the table of PS3.15 Annex E (Table E.1-1) that :func:`deidentify` applies |
| :mod:`medlab.dicom.files` | open one file and parse its attribute values |
| :mod:`medlab.dicom.errors` | :class:`DicomError` and :class:`DicomWarning` |
"""

from medlab.dicom.deidentification import (
    BASIC_PROFILE,
    Change,
    DeidentificationReport,
    deidentify,
)
from medlab.dicom.errors import DicomError, DicomWarning
from medlab.dicom.geometry import (
    ORIENTATION_TOLERANCE_DEG,
    SLICE_GAP_TOLERANCE,
    TILT_TOLERANCE_DEG,
    orientation_label,
)
from medlab.dicom.read import Series, read_series
from medlab.dicom.write import (
    CT_STORED_MAX_HU,
    CT_STORED_MIN_HU,
    fake_patient,
    write_ct_series,
    write_radiograph,
)

__all__ = [
    "BASIC_PROFILE",
    "CT_STORED_MAX_HU",
    "CT_STORED_MIN_HU",
    "ORIENTATION_TOLERANCE_DEG",
    "SLICE_GAP_TOLERANCE",
    "TILT_TOLERANCE_DEG",
    "Change",
    "DeidentificationReport",
    "DicomError",
    "DicomWarning",
    "Series",
    "deidentify",
    "fake_patient",
    "orientation_label",
    "read_series",
    "write_ct_series",
    "write_radiograph",
]
