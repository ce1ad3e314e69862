"""A synthetic CT series shared by the tests of :mod:`medlab.dicom`.

:func:`ramp` gives every voxel its own HU value, so a misplaced slice, row or column shows up
as a wrong number; :func:`write` stores it as a series with known spacing and origin, and
:func:`write_tilted` as a scanner with a tilted gantry would.
"""

import math
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


def write_tilted(folder, truth, *, tilt_deg, hu=None, fill=-1024.0):
    """Write ``truth`` as a gantry-tilted scanner stores it; return the paths and per-slice shifts.

    ``truth`` ``(z, y, x)`` is the anatomy on the straight grid of the tilted slices: plane
    ``k`` lies ``k * SPACING[0]`` mm along the normal ``(0, -sin t, cos t)`` from ``ORIGIN``, its
    rows along +x, its columns along ``(0, cos t, sin t)``. The table moves along +z, so slice
    ``k`` is stored at ``ORIGIN + k * step * (0, 0, 1)`` with ``step = SPACING[0] / cos t``:
    ``k * SPACING[0] * tan t`` mm further along its columns than a straight stack, so it shows
    the anatomy from row ``shift_k = k * SPACING[0] * tan t / SPACING[1]`` on.

    ``hu(k, rows)`` gives the anatomy at fractional ``rows`` of plane ``k`` (``(y, x)``
    values); without it, ``shift_k`` must be whole and rows of ``truth`` are copied. Rows past
    the anatomy are ``fill``.
    """
    t = math.radians(tilt_deg)
    n, rows, columns = truth.shape
    shifts = [k * SPACING[0] * math.tan(t) / SPACING[1] for k in range(n)]
    stored = np.full(truth.shape, fill)
    for k, shift in enumerate(shifts):
        if hu is not None:
            stored[k] = hu(k, np.arange(rows) + shift)
        else:
            assert abs(shift - round(shift)) < 1e-9, "without hu, the shifts must be whole pixels"
            m = int(round(shift))
            if m >= 0:
                stored[k, : rows - m] = truth[k, m:]
            else:
                stored[k, -m:] = truth[k, : rows + m]
    paths = write(folder, stored)
    column = [0.0, math.cos(t), math.sin(t)]
    for k, path in enumerate(paths):
        position = np.add(ORIGIN, (0.0, 0.0, k * SPACING[0] / math.cos(t)))
        edit(path, ImageOrientationPatient=[1.0, 0.0, 0.0, *column],
             ImagePositionPatient=[float(v) for v in position], GantryDetectorTilt=tilt_deg)
    return paths, np.array(shifts)
