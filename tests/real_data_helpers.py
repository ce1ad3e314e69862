"""The real public datasets the real-data tests run on, and a clear skip when they are absent.

The datasets live beside the project, in ``../shared/data`` from its root (or wherever
``MEDLAB_REAL_DATA`` points); they are never part of the project. :func:`real_data` returns a
path inside that folder, or skips the test with a message that says what is missing and how to
get it.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA_ENV = "MEDLAB_REAL_DATA"
REAL_PROFILE = os.environ.get("MEDLAB_REAL_PROFILE", "smoke")
"""The profile of the real-data lab runs. In the smoke profile a run reads the real files and goes
through the lab end to end; ``MEDLAB_REAL_PROFILE=default`` asserts the labs' real-data claims as
well (about 15 minutes more of test time on two cores; the robustness sweep has measured them)."""


def real_data_root() -> Path:
    """``$MEDLAB_REAL_DATA``, else ``../shared/data`` beside the project."""
    return Path(os.environ.get(REAL_DATA_ENV) or ROOT.parent / "shared" / "data")


def real_data(*parts: str) -> Path:
    """The path ``parts`` inside the real-data folder; skip the calling test when it is absent."""
    path = real_data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data not found: {path} is absent. Put the public datasets in {real_data_root()} "
            f"(or set {REAL_DATA_ENV} to their folder): MedMNIST .npz files from medmnist.com or "
            "medlab.registry.fetch, DICOM series and the ISBI 2012 EM sections as the README's "
            "'Real data' section lists"
        )
    return path
