"""A synthetic CT series shared by the tests of :mod:`medlab.dicom`.

:func:`ramp` gives every voxel its own HU value, so a misplaced slice, row or column shows up
as a wrong number; :func:`write` stores it as a series with known spacing and origin.
"""

import warnings

import numpy as np
import pydicom

from medlab import dicom
from medlab.dicom import DicomWarning

SPACING = (2.5, 0.7, 0.8)  # (z, y, x) mm
ORIGIN = (-10.0, 5.5, 100.0)  # LPS mm


def ramp(shape=(6, 32, 32)):
    """Every voxel its own HU value: 100 per slice, 10 per row, 1 per column, from -1000."""
    z, y, x = np.indices(shape)
    return (-1000.0 + 100 * z + 10 * y + x).astype(np.float64)


def write(folder, volume=None, **kwargs):
    kwargs.setdefault("origin", ORIGIN)
    return dicom.write_ct_series(ramp() if volume is None else volume, folder, spacing=SPACING, **kwargs)


def edit(path, **attributes):
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)


def read_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DicomWarning)  # a clean series must not warn
        return dicom.read_series(path, **kwargs)
