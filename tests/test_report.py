import json
import math

import numpy as np
import pytest
import torch

from medlab import paths, report
from medlab.runtime import setup


@pytest.fixture
def session():
    return setup("42_example", profile="smoke", seed=0, device="cpu", threads=1, quiet=True)


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    monkeypatch.setenv(paths.RESULTS_ENV, str(folder))
    return folder


def test_record_writes_plain_json_with_run_time(session, results_dir, capsys):
    path = report.record(session, val_auc=np.float32(0.875), n_images=np.int64(600),
                         loss=torch.tensor(0.25), converged=True, sizes=[50, 100])
    assert path == results_dir / "42_example.json"
    data = json.loads(path.read_text())
    assert data["notebook"] == "42_example" and data["profile"] == "smoke" and data["device"] == "cpu (1 thread)"
    assert data["results"] == {"val_auc": 0.875, "n_images": 600, "loss": 0.25, "converged": True, "sizes": [50, 100]}
    assert 0 <= data["runtime_s"] < 60
    out = capsys.readouterr().out
    assert out.startswith("Recorded 5 results and 0 claims for 42_example (run time ") and "val_auc=0.875" in out
    assert not list(results_dir.glob("*.tmp"))


@pytest.mark.parametrize("value, error", [(math.nan, ValueError), (math.inf, ValueError),
                                          (np.zeros(3), TypeError), ({"a": 1}, TypeError)])
def test_record_refuses_values_a_report_cannot_show(session, results_dir, value, error):
    with pytest.raises(error, match="result 'x'"):
        report.record(session, x=value)
    assert not results_dir.exists() or not list(results_dir.iterdir())


def test_record_needs_results(session, results_dir):
    with pytest.raises(ValueError, match="at least one named result"):
        report.record(session)


def test_load_and_write_report(session, results_dir, tmp_path):
    report.record(session, quiet=True, val_auc=0.91)
    loaded = report.load_results(results_dir)
    entry = {"status": "ok", "wall_s": 12.3, **loaded["42_example"]}
    failed = {"notebook": "43_broken", "status": "failed", "profile": "smoke", "error": "AssertionError: Dice | low"}
    json_path, md_path = report.write_report([entry, failed], tmp_path / "out")
    assert json.loads(json_path.read_text())["notebooks"][0]["results"] == {"val_auc": 0.91}
    table = md_path.read_text().splitlines()
    assert table[2].startswith("| notebook | status |")
    assert table[4].startswith("| 42_example | ok | smoke | cpu (1 thread) |") and "val_auc = 0.91" in table[4]
    assert "error: AssertionError: Dice / low" in table[5]


def test_a_corrupt_results_file_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a valid results file"):
        report.load_results(tmp_path)
