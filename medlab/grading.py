"""An nbgrader course made from the labs: hand out student copies, autograde what comes back.

nbgrader (the Jupyter project's grading tool) installs beside the course's JupyterLab, keeps a
gradebook, and is what most instructors running Jupyter classes already know. This module writes
the *source* version of each lab that nbgrader expects, so nbgrader's own commands do the rest:

- each worked solution becomes an nbgrader answer cell whose solution sits between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``, after the stub of :mod:`medlab.student`
  (so the copy nbgrader hands out shows the same stub as ``make student``);
- each check cell becomes a locked, autograded test cell worth one point. nbgrader runs the
  notebook with ``NBGRADER_EXECUTION`` set, so the checks raise (:func:`medlab.exercises.strict`)
  and an unanswered or wrong exercise scores zero.

From the command line (``make grading``)::

    python -m medlab.course grading --course-dir build/grading --profile smoke
    cd build/grading
    nbgrader generate_assignment 03_cnn_from_scratch     # release/03_cnn_from_scratch/ for the class
    # ... collect work into submitted/<student>/03_cnn_from_scratch/ ...
    nbgrader autograde 03_cnn_from_scratch
    nbgrader export                                      # grades.csv
"""

from __future__ import annotations

import re
from copy import deepcopy
from pathlib import Path

import nbformat

from medlab.course import parameters_cell, strip_outputs
from medlab.profiles import check_profile
from medlab.student import find_exercises, stub

SCHEMA_VERSION = 3
"""nbgrader's cell-metadata schema (nbgrader 0.9)."""
CELL_TIMEOUT_S = 1800
"""Longest a cell may run when nbgrader executes a lab (nbgrader's default, 30 s, is too short)."""

CONFIG = '''\
# nbgrader's settings for the MedLab labs (written by `python -m medlab.course grading`).
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.root = "."
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# The stub that names the answer stays in the cell; the solution region leaves nothing behind.
c.ClearSolutions.code_stub = {{"python": ""}}
# A lab trains networks: its cells may run for minutes on a laptop CPU.
c.Execute.timeout = {timeout}
# Kernels talk to nbgrader over encrypted sockets where pyzmq can (no "without encryption" warning).
import zmq  # noqa: E402

if zmq.has("curve"):
    c.KernelManager.transport_encryption = "auto"
'''


def _grade_id(lab: str, title: str, part: str) -> str:
    return f"{lab}-{title.lower().replace(' ', '')}-{part}"


def nbgrader_source(nb: nbformat.NotebookNode, *, lab: str, profile: str | None = None) -> nbformat.NotebookNode:
    """The nbgrader source version of the lab ``nb`` (named ``lab``): answer cells and graded checks.

    ``profile`` (if given) replaces ``PROFILE`` in the parameters cell, so the class runs and is
    graded in that profile (``"smoke"`` for a quick class check, ``"default"`` for the lab itself).
    """
    source = strip_outputs(deepcopy(nb))
    if profile is not None:
        check_profile(profile)
        cell = source.cells[parameters_cell(source)]
        cell.source, count = re.subn(r'(?m)^PROFILE\s*=.*$', f'PROFILE = "{profile}"', cell.source)
        if count != 1:
            raise ValueError(f"{lab}: the parameters cell does not set PROFILE on a line of its own")
    for ex in find_exercises(source):
        solution, check = source.cells[ex.solution], source.cells[ex.check]
        body = stub(solution.source, check.source)
        solution.source = (f"# {ex.title}: your answer. Then run the check below.\n{body}\n"
                           f"### BEGIN SOLUTION\n{solution.source.rstrip()}\n### END SOLUTION")
        solution.metadata["nbgrader"] = {"grade": False, "grade_id": _grade_id(lab, ex.title, "answer"),
                                         "locked": False, "schema_version": SCHEMA_VERSION, "solution": True,
                                         "task": False}
        check.metadata["nbgrader"] = {"grade": True, "grade_id": _grade_id(lab, ex.title, "check"), "locked": True,
                                      "points": 1, "schema_version": SCHEMA_VERSION, "solution": False,
                                      "task": False}
    return source


def write_course(notebooks: list[Path], course_dir: Path, *, profile: str | None = None) -> list[Path]:
    """Write ``course_dir/nbgrader_config.py`` and ``course_dir/source/<lab>/<lab>.ipynb`` for each
    notebook; return the source notebooks' paths. An existing gradebook is left alone."""
    course_dir = Path(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    (course_dir / "nbgrader_config.py").write_text(CONFIG.format(timeout=CELL_TIMEOUT_S), encoding="utf-8")
    written = []
    for path in map(Path, notebooks):
        folder = course_dir / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        nb = nbgrader_source(nbformat.read(path, as_version=4), lab=path.stem, profile=profile)
        nbformat.write(nb, folder / path.name)
        written.append(folder / path.name)
    return written
