"""Claims: asserted outside the smoke profile, recorded with their thresholds either way."""

import json

import numpy as np
import pytest
import torch

from medlab import claims, paths, report
from medlab.claims import ClaimError, claim
from medlab.runtime import setup


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "results"))
    monkeypatch.delenv(claims.CLAIMS_ENV, raising=False)
    return tmp_path / "results"


def _session(profile="default"):
    return setup("42_example", profile=profile, seed=0, device="cpu", threads=1, quiet=True)


def _recorded(results_dir):
    return json.loads((results_dir / "42_example.json").read_text())


def test_a_claim_that_holds_returns_its_value_and_is_recorded(results_dir):
    session = _session()
    assert claim(session, "val_dice", np.float32(0.93), at_least=0.9, why="the U-Net segments") == pytest.approx(0.93)
    entry = _recorded(results_dir)["claims"]["val_dice"]
    assert entry["at_least"] == 0.9 and entry["at_most"] is None and entry["holds"] and entry["checked"]
    assert entry["margin"] == pytest.approx(0.03, abs=1e-6) and entry["why"] == "the U-Net segments"


@pytest.mark.parametrize("options, value", [({"at_least": 0.9}, 0.89), ({"at_most": 0.1}, 0.2),
                                            ({"between": (0.7, 0.97)}, 0.98), ({"between": (0.7, 0.97)}, 0.5)])
def test_a_failed_claim_raises_and_is_still_on_record(results_dir, options, value):
    session = _session()
    with pytest.raises(ClaimError, match=r"claim 'x' does not hold: .*expected"):
        claim(session, "x", value, **options)
    entry = _recorded(results_dir)["claims"]["x"]
    assert not entry["holds"] and entry["margin"] < 0


def test_bounds_are_inclusive():
    session = _session("smoke")
    assert claim(session, "edge", 0.9, at_least=0.9) == 0.9
    assert session.claims["edge"]["holds"] and session.claims["edge"]["margin"] == 0


def test_the_smoke_profile_records_but_does_not_assert(results_dir):
    session = _session("smoke")
    claim(session, "val_dice", 0.1, at_least=0.9)
    entry = _recorded(results_dir)["claims"]["val_dice"]
    assert entry["checked"] is False and entry["holds"] is False
    assert claims.failed_claims(session.claims) == []


def test_a_claim_that_does_not_apply_is_recorded_but_not_asserted(results_dir, capsys):
    session = _session()
    assert claim(session, "parallel_speedup", 0.9, at_least=1.2, applies=False) == 0.9  # no ClaimError
    entry = _recorded(results_dir)["claims"]["parallel_speedup"]
    assert entry["applies"] is False and entry["checked"] is False and entry["holds"] is False
    assert claims.failed_claims(session.claims) == []
    report.record(session, n=1)
    assert "claim parallel_speedup = 0.9, ≥ 1.2: not checked (does not apply here)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="applies must be True or False"):
        claim(session, "x", 1.0, at_least=0.0, applies="no")
    with pytest.raises(ClaimError):
        claim(session, "parallel_speedup", 0.9, at_least=1.2, applies=True)


def test_deferred_claims_fail_together_in_record(results_dir, monkeypatch):
    monkeypatch.setenv(claims.CLAIMS_ENV, "defer")
    session = _session()
    claim(session, "a", 0.5, at_least=0.9)
    claim(session, "b", 0.95, at_least=0.9)
    claim(session, "c", 3.0, at_most=2.0, why="fewer is better")
    with pytest.raises(ClaimError) as failure:
        report.record(session, extra=1)
    assert "'a'" in str(failure.value) and "'c'" in str(failure.value) and "fewer is better" in str(failure.value)
    assert "'b'" not in str(failure.value)
    data = _recorded(results_dir)  # written before raising
    assert set(data["claims"]) == {"a", "b", "c"} and data["results"] == {"extra": 1}


@pytest.mark.parametrize("value, error, match", [
    (float("nan"), ValueError, "finite"), (np.inf, ValueError, "finite"), ("0.9", TypeError, "number"),
    (True, TypeError, "number"), (np.zeros(2), TypeError, "number"),
])
def test_a_claim_needs_a_finite_number(results_dir, value, error, match):
    with pytest.raises(error, match=match):
        claim(_session(), "x", value, at_least=0)


@pytest.mark.parametrize("options, match", [
    ({}, "needs a threshold"), ({"between": (1, 2), "at_least": 0}, "not both"),
    ({"between": (2, 1)}, "range is empty"), ({"between": (1,)}, r"\(low, high\)"),
])
def test_thresholds_are_checked(results_dir, options, match):
    with pytest.raises(ValueError, match=match):
        claim(_session(), "x", 1.0, **options)


def test_names_and_the_environment_variable_are_checked(results_dir, monkeypatch):
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        claim(_session(), "val dice", 1.0, at_least=0)
    monkeypatch.setenv(claims.CLAIMS_ENV, "later")
    with pytest.raises(ValueError, match="'assert' or 'defer'"):
        claim(_session(), "x", 1.0, at_least=0)


def test_torch_scalars_are_numbers(results_dir):
    assert claim(_session(), "loss", torch.tensor(0.25), at_most=1.0) == 0.25


def test_record_prints_the_claims_and_refuses_clashing_names(results_dir, capsys):
    session = _session()
    claim(session, "test_auc", 0.95, at_least=0.9)
    report.record(session, n_images=300)
    out = capsys.readouterr().out
    assert "Recorded 1 results and 1 claims" in out and "claim test_auc = 0.95, ≥ 0.9: holds" in out
    with pytest.raises(ValueError, match="already recorded as a claim"):
        report.record(session, test_auc=0.5)


def test_the_report_lists_claims_with_their_margins(results_dir, tmp_path):
    session = _session()
    claim(session, "test_auc", 0.95, at_least=0.9)
    claim(session, "gap", 0.02, between=(0.0, 0.1))
    report.record(session, quiet=True, n=1)
    entry = {"status": "ok", **report.load_results(results_dir)["42_example"]}
    _, md = report.write_report([entry], tmp_path / "out")
    text = md.read_text()
    assert "## Claims" in text and "| 42_example | test_auc | 0.95 | ≥ 0.9 | +0.05 | yes |" in text
    assert "| 42_example | gap | 0.02 | in [0, 0.1] | +0.02 | yes |" in text
