from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from medlab import course
from medlab.course import find_notebooks
from medlab.student import ExerciseLayoutError, find_exercises, stub, student_copy, write_student_copies

ROOT = Path(__file__).resolve().parents[1]


def test_a_function_keeps_its_signature_and_docstring():
    solution = 'def area(r, *, pi=3.14):\n    """Area of a disc of radius r (mm²)."""\n    return pi * r * r\n'
    assert stub(solution, "check_close(area(1.0), 3.14, name='area')") == (
        'def area(r, *, pi=3.14):\n    """Area of a disc of radius r (mm²)."""\n    ...  # your code')


def test_only_the_names_the_check_reads_are_stubbed():
    solution = ("b = boxes[0]\ntp = fp = 0\nfor s in scores:\n    tp += 1\n"
                "precision_at, recall_at = tp / (tp + fp), 0.5\nprint(precision_at)")
    check = "check_close([precision_at, recall_at], [1.0, 0.5], name='pr')"
    assert stub(solution, check) == "precision_at = ...  # your code\nrecall_at = ...  # your code"


def test_names_inside_comprehensions_and_with_blocks():
    solution = ("with torch.no_grad():\n    expected = net(x).mean()\n"
                "idx = [i for p in patients for i in range(p)]")
    check = "check_close(expected, 1.0, name='e')\nall(p > 0 for p in idx)"
    assert stub(solution, check) == "expected = ...  # your code\nidx = ...  # your code"


def test_data_the_task_gives_stays_in_the_stub():
    solution = "raw = np.array([0, 24, 1064])\nslope = 1.0\nhu = raw * slope - 1024\nscale = hu.max()"
    assert stub(solution, "check_close(hu, [-1024, -1000, 40], name='hu')") == (
        "raw = np.array([0, 24, 1064])\nslope = 1.0\nhu = ...  # your code")


def test_a_check_that_reads_nothing_of_the_solution_is_an_error():
    with pytest.raises(ExerciseLayoutError, match="reads nothing"):
        stub("x = 1", "check(True, success='', hint='')")


def _lab(*cells):
    return new_notebook(cells=[new_markdown_cell("# 99 · A lab"), *cells])


def test_student_copy_replaces_solutions_and_keeps_everything_else():
    nb = _lab(
        new_code_cell("x = 2", outputs=[], execution_count=3),
        new_markdown_cell("## Exercises\n\n### Exercise 1: double it"),
        new_code_cell("y = 2 * x\nprint(y)", metadata={"tags": ["solution"]}),
        new_code_cell('with exercise("Exercise 1"):\n    check_close(y, 4, name="y")'),
    )
    copy = student_copy(nb)
    assert copy.cells[3].source == "# Exercise 1: your answer. Then run the check below.\ny = ...  # your code"
    assert copy.cells[3].metadata["tags"] == ["answer"]
    assert copy.cells[4].metadata["tags"] == ["check"]
    assert [c.source for i, c in enumerate(copy.cells) if i != 3] == [c.source for i, c in enumerate(nb.cells) if i != 3]
    assert copy.cells[1].execution_count is None
    assert nb.cells[3].source.startswith("y = 2 * x"), "the original is left alone"


def test_a_solution_needs_a_heading_and_a_check():
    no_heading = _lab(new_code_cell("y = 1", metadata={"tags": ["solution"]}), new_code_cell("check(y)"))
    with pytest.raises(ExerciseLayoutError, match="Exercise N"):
        find_exercises(no_heading)
    no_check = _lab(new_markdown_cell("### Exercise 1: a"), new_code_cell("y = 1", metadata={"tags": ["solution"]}))
    with pytest.raises(ExerciseLayoutError, match="check cell"):
        find_exercises(no_check)


def test_every_lab_has_a_student_copy_with_every_solution_stubbed(tmp_path):
    labs = find_notebooks(ROOT / "notebooks")
    written = write_student_copies(labs, tmp_path)
    assert [p.name for p in written] == [p.name for p in labs]
    for lab, copy_path in zip(labs, written):
        original, copy = nbformat.read(lab, as_version=4), nbformat.read(copy_path, as_version=4)
        exercises = find_exercises(original)
        assert len(exercises) >= 3, lab.name
        for ex in exercises:
            stubbed = copy.cells[ex.solution].source
            assert "# your code" in stubbed and stubbed != original.cells[ex.solution].source, (lab.name, ex.title)
            compile(stubbed, f"{lab.name} {ex.title}", "exec")
        assert not any("solution" in c.metadata.get("tags", []) for c in copy.cells), lab.name


def test_command_line_writes_the_copies(tmp_path, capsys):
    assert course.main(["student", "00_orientation", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "00_orientation.ipynb")
    with pytest.raises(FileNotFoundError, match="no such notebook"):
        course.main(["student", "99_missing", "--out", str(tmp_path)])
