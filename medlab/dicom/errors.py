"""The error and warning every part of :mod:`medlab.dicom` raises or issues.

A :class:`DicomError` stops: the file, folder or argument cannot be used, and the message
names it, says what is wrong and what to do. A :class:`DicomWarning` goes on: the result is
usable but approximate, and the message says how.
"""

from __future__ import annotations

from medlab.errors import reason


class DicomError(ValueError):
    """A DICOM file, folder or argument cannot be used; the message names it and the problem.

    Taught in lab 01, section 2 (A series into a volume, in Hounsfield units).
    """


class DicomWarning(UserWarning):
    """The input was usable, but the result is approximate (the message says how).

    Taught in lab 01, section 1 (What is in a DICOM file).
    """


_reason = reason
"""``"TypeName: first line of the message"`` of ``exc``, for an error message."""
