"""Lab 05 on real electron microscopy: the ISBI 2012 membrane sections beside the project, read
with DATASET="isbi2012".

The test executes the lab in ``MEDLAB_REAL_PROFILE`` (the smoke profile unless set; in the default
profile its claims and checks are asserted) and then reads what it recorded. It skips when the
real data is absent.
"""

import json
from pathlib import Path

import pytest
from real_data_helpers import REAL_PROFILE, real_data

from medlab.course import execute

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
def test_lab_05_segments_the_real_em_membranes(tmp_path, monkeypatch):
    folder = real_data("isbi2012_em_membrane")
    monkeypatch.setenv("MEDLAB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MEDLAB_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("MEDLAB_CLAIMS", raising=False)  # a claim that fails stops the lab here
    execute(NOTEBOOKS / "05_segmentation.ipynb", tmp_path / "executed", profile=REAL_PROFILE,
            parameters={"DATASET": "isbi2012", "DATA_DIR": str(folder)})
    recorded = json.loads((tmp_path / "results" / "05_segmentation.json").read_text())
    assert recorded["profile"] == REAL_PROFILE
    claims, results = recorded["claims"], recorded["results"]
    assert {"test_membrane_dice", "membrane_dice_gain_over_classical", "rand_error_gain_over_classical"} <= set(claims)
    assert results["dataset"] == "isbi2012"
    assert results["em_validation_sections"] == [15, 16] and results["em_test_sections"] == [17, 18, 19]
    assert len(results["test_rand_error_by_section"]) == 3
    assert 0 < results["test_rand_error"] < 1 and results["membrane_threshold"] in (0.3, 0.4, 0.5, 0.6)
    # the classical methods depend on the data alone: the same figures on every run, in every profile
    assert results["classical_otsu_dice"] == pytest.approx(0.5975, abs=1e-3)
    assert results["classical_adaptive_rand_error"] == pytest.approx(0.1963, abs=1e-3)
    assert results["best_classical"] == "adaptive threshold"
    assert results["gap_pixel_error"] < 0.001 and results["gap_rand_error"] > 0.01  # a gap: few pixels, two cells merged
    if REAL_PROFILE == "smoke":
        return
    assert all(c["checked"] and c["holds"] for c in claims.values())
    # the U-Net against the classical methods, on the same three test sections
    assert results["test_pixel_error"] < min(results[f"classical_{m}_pixel_error"] for m in ("otsu", "adaptive", "sato"))
    assert results["test_rand_error"] < results["test_rand_error_raw"]  # turns averaged, threshold chosen on validation
