"""Every lab executed with papermill, replayed with nbval, and checked against the standard.

``MEDLAB_PROFILE`` (default ``default``) picks the profile a lab is executed in, its learning
outcomes asserted and every exercise check passed by the worked solution. Each lab's student copy
(:mod:`medlab.student`) runs in ``MEDLAB_REPLAY_PROFILE`` (default ``smoke``) as a learner's would,
top to bottom, with every exercise check saying "Not yet"; nbval then replays that run: every
stored output of a fresh run must come out the same again (the student copy differs from the lab
only in its exercise cells). ``MEDLAB_NOTEBOOK_DIR`` and ``MEDLAB_BUILD_DIR`` let the harness test
point this module at other notebooks.
"""

import os
from pathlib import Path

import nbformat
import pytest
from notebook_harness import replay

from medlab.course import execute, find_notebooks
from medlab.exercises import CHECKS_ENV
from medlab.paths import RESULTS_ENV, build_dir
from medlab.report import load_results
from medlab.standard import check_standard
from medlab.student import CHECK_TAG, find_exercises, write_student_copies

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = Path(os.environ.get("MEDLAB_NOTEBOOK_DIR", ROOT / "notebooks"))
BUILD_DIR = build_dir()
PROFILE = os.environ.get("MEDLAB_PROFILE", "default")
REPLAY_PROFILE = os.environ.get("MEDLAB_REPLAY_PROFILE", "smoke")
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

    solved = nbformat.read(executed, as_version=4)
    for ex in find_exercises(solved):
        said = _printed(solved.cells[ex.check])
        assert "✔" in said and "✘" not in said and "Not yet" not in said, \
            f"{ex.title}'s check does not pass on the worked solution: {said!r}"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_runs_with_every_check_not_yet(notebook, tmp_path, monkeypatch):
    """A learner's copy: solutions are stubs, checks are in practice mode. It must run top to bottom,
    and every check must say "Not yet" (a check that passes on a stub is hollow)."""
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results"))  # the outcome run's results stay
    monkeypatch.setenv(CHECKS_ENV, "practice")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    [copy] = write_student_copies([notebook], BUILD_DIR / "student-runs" / "source")
    executed = execute(copy, BUILD_DIR / "student-runs" / "executed", profile=REPLAY_PROFILE)

    checks = [c for c in nbformat.read(executed, as_version=4).cells if CHECK_TAG in c.metadata.get("tags", [])]
    assert len(checks) == len(find_exercises(nbformat.read(notebook, as_version=4)))
    for cell in checks:
        said = _printed(cell)
        assert "✘" in said and "Not yet" in said and "✔" not in said, \
            f"a check passes on the student's stub (it is hollow):\n{cell.source}\nprinted: {said!r}"

    _assert_replays(executed)


def _printed(cell) -> str:
    """What a code cell printed (its stream outputs)."""
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _assert_replays(executed: Path) -> None:
    run = replay(executed)
    assert run.returncode == 0, f"nbval replay of {executed} failed:\n{run.stdout[-6000:]}{run.stderr[-2000:]}"
