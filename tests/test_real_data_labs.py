"""Lab 04 on MedMNIST files: the real PneumoniaMNIST and BreastMNIST beside the project, in
``MEDLAB_REAL_PROFILE`` (smoke unless set; in the default profile every claim is active); without
them, a file in the published layout made here from the cohort, in the smoke profile."""

import json
from pathlib import Path

import numpy as np
import pytest
from real_data_helpers import REAL_PROFILE, real_data, real_data_root

from medlab import phantoms
from medlab.course import execute
from medlab.realdata import find_medmnist, load_medmnist

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LAB = NOTEBOOKS / "04_transfer_learning.ipynb"


def fake_medmnist(folder: Path, name: str = "pneumoniamnist") -> Path:
    """A small ``<name>.npz`` with MedMNIST's keys, 28 x 28 uint8 images and (N, 1) labels."""
    splits = {"train": 240, "val": 60, "test": 48}
    arrays = {}
    for k, (split, n) in enumerate(splits.items()):
        batch = phantoms.chest_radiographs(n, seed=100 + k, size=56, pneumonia=0.5)
        arrays[f"{split}_images"] = (batch.images[:, 0, ::2, ::2] * 255).round().astype(np.uint8)
        arrays[f"{split}_labels"] = batch.labels[:, None].astype(np.uint8)
    path = folder / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def run_lab(tmp_path, monkeypatch, *, dataset, data_dir, profile):
    monkeypatch.setenv("MEDLAB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MEDLAB_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    execute(LAB, tmp_path / "executed", profile=profile, parameters={"DATASET": dataset, "DATA_DIR": str(data_dir)})
    return json.loads((tmp_path / "results" / f"{LAB.stem}.json").read_text())


def has_real_medmnist(dataset: str) -> bool:
    try:
        find_medmnist(real_data_root(), dataset)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.slow
def test_transfer_lab_reads_a_published_medmnist_file(tmp_path, monkeypatch):
    if has_real_medmnist("pneumoniamnist"):
        pytest.skip("the real PneumoniaMNIST file is at hand: the real-data test runs the lab on it")
    fake_medmnist(tmp_path)
    recorded = run_lab(tmp_path, monkeypatch, dataset="pneumoniamnist", data_dir=tmp_path, profile="smoke")["results"]
    assert recorded["dataset"] == "pneumoniamnist"
    assert recorded["n_test"] == 48  # the file's own test split, not the cohort's
    assert recorded["sizes"] == [20, 40]


@pytest.mark.slow
@pytest.mark.parametrize("dataset, bar", [("pneumoniamnist", 0.98), ("breastmnist", 0.851)])
def test_transfer_lab_on_real_medmnist_meets_its_claims(tmp_path, monkeypatch, dataset, bar):
    folder = real_data()
    try:
        path = find_medmnist(folder, dataset)
    except FileNotFoundError:
        pytest.skip(f"real data not found: no {dataset} file in {folder}")
    n_test = len(load_medmnist(path, "test")[1])
    report = run_lab(tmp_path, monkeypatch, dataset=dataset, data_dir=folder, profile=REAL_PROFILE)
    recorded, claims = report["results"], report["claims"]
    assert report["profile"] == REAL_PROFILE
    assert recorded["dataset"] == dataset and recorded["n_test"] == n_test
    assert claims["test_auc"]["at_least"] == pytest.approx(bar)
    if REAL_PROFILE != "smoke":
        assert claims["test_auc"]["checked"] and claims["test_auc"]["value"] >= bar
    low, high = recorded["test_auc_interval"]
    assert low <= claims["test_auc"]["value"] <= high
