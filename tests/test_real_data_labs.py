"""Labs that accept real data run on files in the published format (made here from the cohort)."""

import json
from pathlib import Path

import numpy as np
import pytest

from medlab import phantoms
from medlab.course import execute

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def fake_medmnist(folder: Path, name: str = "pneumoniamnist") -> Path:
    """A small ``<name>.npz`` with MedMNIST's keys, 28 x 28 uint8 images and (N, 1) labels."""
    splits = {"train": 240, "val": 60, "test": 60}
    arrays = {}
    for k, (split, n) in enumerate(splits.items()):
        batch = phantoms.chest_radiographs(n, seed=100 + k, size=56, pneumonia=0.5)
        arrays[f"{split}_images"] = (batch.images[:, 0, ::2, ::2] * 255).round().astype(np.uint8)
        arrays[f"{split}_labels"] = batch.labels[:, None].astype(np.uint8)
    path = folder / f"{name}.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_transfer_lab_runs_on_medmnist_files(tmp_path, monkeypatch):
    fake_medmnist(tmp_path)
    monkeypatch.setenv("MEDLAB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MEDLAB_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    execute(NOTEBOOKS / "04_transfer_learning.ipynb", tmp_path / "executed", profile="smoke",
            parameters={"DATASET": "pneumoniamnist", "DATA_DIR": str(tmp_path)})
    recorded = json.loads((tmp_path / "results" / "04_transfer_learning.json").read_text())["results"]
    assert recorded["dataset"] == "pneumoniamnist"
    assert 0.0 <= recorded["test_auc"] <= 1.0 and 0.0 <= recorded["test_acc"] <= 1.0
