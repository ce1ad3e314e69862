"""Every lab executed with papermill, replayed with nbval, and checked against the standard.

``MEDLAB_PROFILE`` (default ``default``) picks the profile a lab is executed in, its learning
outcomes asserted. ``MEDLAB_REPLAY_PROFILE`` (default ``smoke``) picks the profile of the run that
nbval replays: every stored output of a fresh run must come out the same again. Where the two
profiles are the same, and for the labs in ``QUICK_LABS``, the outcome run itself is replayed. ``MEDLAB_NOTEBOOK_DIR`` and ``MEDLAB_BUILD_DIR``
let the harness test point this module at other notebooks.
"""

import os
from pathlib import Path

import nbformat
import pytest
from notebook_harness import replay

from medlab.course import execute, find_notebooks
from medlab.paths import RESULTS_ENV, build_dir
from medlab.report import load_results
from medlab.standard import check_standard

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = Path(os.environ.get("MEDLAB_NOTEBOOK_DIR", ROOT / "notebooks"))
BUILD_DIR = build_dir()
PROFILE = os.environ.get("MEDLAB_PROFILE", "default")
REPLAY_PROFILE = os.environ.get("MEDLAB_REPLAY_PROFILE", "smoke")
QUICK_LABS = {"00_orientation", "01_preprocessing", "02_features_and_classic_ml"}
"""Labs whose default run takes under a minute: replaying that run costs less than a run of its own."""
NOTEBOOKS = find_notebooks(NOTEBOOK_DIR)


def test_every_notebook_is_collected():
    on_disk = {p for p in NOTEBOOK_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    assert on_disk == set(NOTEBOOKS), f"notebooks the tests would not run: {sorted(on_disk - set(NOTEBOOKS))}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_standard(notebook):
    problems = check_standard(nbformat.read(notebook, as_version=4), notebook.stem)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(notebook):
    results_dir = Path(os.environ[RESULTS_ENV])
    (results_dir / f"{notebook.stem}.json").unlink(missing_ok=True)

    # A failing cell or learning-outcome assertion raises here, with the cell's traceback.
    executed = execute(notebook, BUILD_DIR / "executed", profile=PROFILE)

    if any("record(" in cell.source for cell in nbformat.read(notebook, as_version=4).cells):
        recorded = load_results(results_dir).get(notebook.stem)
        assert recorded is not None and recorded["profile"] == PROFILE, "the notebook recorded no results"

    if _replays_its_own_run(notebook):
        _assert_replays(executed)


def _replays_its_own_run(notebook: Path) -> bool:
    return REPLAY_PROFILE == PROFILE or notebook.stem in QUICK_LABS


@pytest.mark.slow
@pytest.mark.parametrize("notebook", [p for p in NOTEBOOKS if not _replays_its_own_run(p)], ids=lambda p: p.stem)
def test_notebook_replays(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results"))  # the outcome run's results stay
    _assert_replays(execute(notebook, BUILD_DIR / "replayed", profile=REPLAY_PROFILE))


def _assert_replays(executed: Path) -> None:
    run = replay(executed)
    assert run.returncode == 0, f"nbval replay of {executed} failed:\n{run.stdout[-6000:]}{run.stderr[-2000:]}"
