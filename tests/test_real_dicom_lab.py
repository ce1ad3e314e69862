"""Lab 01 on a real CT series: the real head phantom beside the project, read with DATASET="dicom".

Each test executes the lab in the default profile, where its claims and checks are asserted,
and then reads what it recorded about the series. They skip when the real data is absent.
"""

import json
import math
from pathlib import Path

import pytest
from real_data_helpers import real_data

from medlab.course import execute

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_lab_01(tmp_path, monkeypatch, folder: Path) -> dict:
    """Execute lab 01 on ``folder``; return its recorded results file (results and claims)."""
    monkeypatch.setenv("MEDLAB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MEDLAB_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    execute(NOTEBOOKS / "01_preprocessing.ipynb", tmp_path / "executed", profile="default",
            parameters={"DATASET": "dicom", "DATA_DIR": str(folder)})
    recorded = json.loads((tmp_path / "results" / "01_preprocessing.json").read_text())
    assert recorded["profile"] == "default"
    assert recorded["claims"] and all(c["checked"] and c["holds"] for c in recorded["claims"].values())
    return recorded["results"]


@pytest.mark.slow
def test_lab_01_reads_the_real_head_phantom(tmp_path, monkeypatch):
    results = run_lab_01(tmp_path, monkeypatch, real_data("dicom", "ct_head_phantom_philips"))
    assert results["dataset"] == "dicom"
    assert results["series_files_read"] == 28  # the folder's DICOMDIR index is skipped
    assert results["series_shape"] == [28, 512, 512]
    assert results["series_spacing_mm"] == [5.0, 0.451171875, 0.451171875]  # from the files
    assert results["series_tilt_deg"] == 0.0
    assert -1010 <= results["air_median_hu"] <= -990
    assert results["resampled_shape"] == [50, 82, 82]  # 28 x 5 mm, 512 x 0.45 mm at 2.8 mm
    assert results["tilt_example"] == "synthetic"  # the phantom is straight: the lab tilts its own


@pytest.mark.slow
def test_lab_01_straightens_the_real_tilted_head_phantom(tmp_path, monkeypatch):
    results = run_lab_01(tmp_path, monkeypatch, real_data("dicom", "ct_head_phantom_philips_tilted"))
    assert results["series_files_read"] == 58 and results["tilt_example"] == "dicom"
    assert results["series_tilt_deg"] == pytest.approx(16.5, abs=0.01)
    assert results["tilt_corrected_deg"] == pytest.approx(16.5, abs=0.01)
    assert results["series_shape"] == results["tilt_corrected_shape"] == [58, 612, 512]
    assert results["series_spacing_mm"] == pytest.approx([2.5 * math.cos(math.radians(16.5)), 0.40625, 0.40625])
    assert -1010 <= results["air_median_hu"] <= -990
