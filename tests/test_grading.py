"""The nbgrader course: source versions of the labs, and nbgrader's own autograder on them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from medlab import course
from medlab.grading import nbgrader_source, write_course

ROOT = Path(__file__).resolve().parents[1]
LAB = "00_orientation"


def _lab():
    return new_notebook(cells=[
        new_markdown_cell("# 99 · A lab"),
        new_code_cell('PROFILE = "default"\nSEED = 0', metadata={"tags": ["parameters"]}),
        new_markdown_cell("## Exercises\n\n### Exercise 1: double it"),
        new_code_cell("y = 2 * 21", metadata={"tags": ["solution"]}),
        new_code_cell('with exercise("Exercise 1"):\n    check(y == 42, success="right", hint="6 × 7")'),
    ])


def test_source_version_has_answer_cells_and_graded_checks():
    nb = nbgrader_source(_lab(), lab="99_lab", profile="smoke")
    answer, check = nb.cells[3], nb.cells[4]
    assert answer.source == ("# Exercise 1: your answer. Then run the check below.\ny = ...  # your code\n"
                             "### BEGIN SOLUTION\ny = 2 * 21\n### END SOLUTION")
    assert answer.metadata["nbgrader"]["solution"] and not answer.metadata["nbgrader"]["grade"]
    assert check.metadata["nbgrader"] == {"grade": True, "grade_id": "99_lab-exercise1-check", "locked": True,
                                          "points": 1, "schema_version": 3, "solution": False, "task": False}
    assert nb.cells[1].source == 'PROFILE = "smoke"\nSEED = 0'
    assert _lab().cells[1].source.startswith('PROFILE = "default"'), "the lab itself is left alone"


def test_every_lab_becomes_a_source_version(tmp_path):
    labs = course.find_notebooks(ROOT / "notebooks")
    written = write_course(labs, tmp_path)
    assert (tmp_path / "nbgrader_config.py").is_file()
    for lab, path in zip(labs, written):
        assert path == tmp_path / "source" / lab.stem / lab.name
        cells = nbformat.read(path, as_version=4).cells
        graded = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade")]
        ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
        assert len(graded) >= 3 and len(ids) == len(set(ids)), lab.name


def _nbgrader(course_dir, *args):
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("MEDLAB_CHECKS", None)  # as in a classroom: nbgrader itself makes the checks strict
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"


@pytest.mark.slow
def test_nbgrader_gives_full_marks_to_a_solved_copy_and_zero_to_a_blank_one(tmp_path):
    from nbgrader.api import Gradebook

    assert course.main(["grading", LAB, "--course-dir", str(tmp_path), "--profile", "smoke"]) == 0
    _nbgrader(tmp_path, "generate_assignment", LAB)
    released = tmp_path / "release" / LAB / f"{LAB}.ipynb"
    solutions = [c.source for c in nbformat.read(ROOT / "notebooks" / f"{LAB}.ipynb", as_version=4).cells
                 if "solution" in c.metadata.get("tags", [])]

    blank = tmp_path / "submitted" / "blank" / LAB
    blank.mkdir(parents=True)
    shutil.copy(released, blank)
    solved = nbformat.read(released, as_version=4)
    answers = [c for c in solved.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(answers) == len(solutions) >= 3
    assert all("# your code" in c.source and "BEGIN SOLUTION" not in c.source for c in answers)
    for cell, solution in zip(answers, solutions):
        cell.source = solution
    (tmp_path / "submitted" / "solver" / LAB).mkdir(parents=True)
    nbformat.write(solved, tmp_path / "submitted" / "solver" / LAB / f"{LAB}.ipynb")

    _nbgrader(tmp_path, "autograde", LAB)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        scores = {s: (gradebook.find_submission(LAB, s).score, gradebook.find_submission(LAB, s).max_score)
                  for s in ("blank", "solver")}
    assert scores == {"blank": (0.0, len(solutions)), "solver": (len(solutions), len(solutions))}, scores
