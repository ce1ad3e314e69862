"""Student copies of the labs: every worked solution replaced by a stub that names the answer.

A lab's exercise is a code cell tagged ``solution`` followed by a check cell (see
:mod:`medlab.exercises`). The student copy keeps every other cell as it is and replaces each
solution with a stub that defines the names the check reads, left empty::

    def sigmoid_derivative(z):
        ...  # your code

    n_trainable = ...  # your code

An empty answer is ``...`` (or ``None``, what an empty function returns); the checks report it
as "Not yet: … still empty" instead of failing on it, so the copy runs top to bottom.

From the command line (``make student``)::

    python -m medlab.course student                 # every lab into build/student/
    python -m medlab.course student 03_cnn_from_scratch --out /tmp/class
"""

from __future__ import annotations

import ast
import re
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import nbformat

from medlab.course import strip_outputs

SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"
"""Tag of a stub cell in a student copy (where the learner writes)."""
CHECK_TAG = "check"
"""Tag of an exercise's check cell, in both copies."""

_HEADING = re.compile(r"^###\s+(Exercise\s+\d+)", re.MULTILINE)


class ExerciseLayoutError(ValueError):
    """A lab's exercises cannot be turned into stubs (the message names the lab and the cell)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lab: its title and the indices of its solution and check cells."""

    title: str
    solution: int
    check: int


def find_exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The exercises of ``nb`` in order: each ``solution`` cell and the code cell after it.

    The title is the last ``### Exercise N`` heading above the solution ("Exercise 1").
    """
    found, title = [], None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            headings = _HEADING.findall(cell.source)
            title = headings[-1] if headings else title
        elif SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            after = next((j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code"), None)
            if after is None or title is None:
                raise ExerciseLayoutError(f"cell {i}: a solution needs an '### Exercise N' heading above it "
                                          "and a check cell after it")
            found.append(Exercise(title=title, solution=i, check=after))
    return found


def _stored_names(node: ast.AST) -> list[str]:
    """Names a statement assigns, in order (not those inside function bodies)."""
    names: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop(0)
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Store):
            names.append(current.id)
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
                                ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue  # their names are their own
        stack.extend(ast.iter_child_nodes(current))
    return names


def _loaded_names(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


GIVEN_MODULES = frozenset({"np", "numpy", "torch", "math"})
"""Names a *given* may use: an assignment built only from literals and these modules' functions
(``raw = np.array([0, 24, 1064])``) is data the task states, and stays in the stub."""


def _is_given(statement: ast.stmt, wanted: set[str]) -> bool:
    if not isinstance(statement, ast.Assign) or len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
        return False
    if any(t.id in wanted for t in statement.targets):
        return False  # an answer, not a given
    return {n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name)} <= GIVEN_MODULES


def stub(solution: str, check: str) -> str:
    """The stub for a solution cell: the functions and values its check reads, left empty.

    A function keeps its signature and docstring; a value becomes ``...``. Data the task gives
    (an assignment of literals, see :data:`GIVEN_MODULES`) stays as it is; names the solution
    uses only on its way to the answer are left out.

    >>> print(stub("import math\\ndef area(r):\\n    return math.pi * r ** 2\\nscale = abs(-2)\\ntotal = area(scale)",
    ...            "check_close(area(1.0), 3.14159, name='area')\\ncheck_close(total, 12.566, name='total')"))
    def area(r):
        ...  # your code
    <BLANKLINE>
    total = ...  # your code
    """
    tree = ast.parse(solution)
    wanted = _loaded_names(check)
    parts: list[tuple[str, str]] = []
    seen: set[str] = set()
    lines = solution.splitlines()
    for statement in tree.body:
        if _is_given(statement, wanted):
            parts.append(("given", "\n".join(lines[statement.lineno - 1:statement.end_lineno])))
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if statement.name not in wanted or statement.name in seen:
                continue
            seen.add(statement.name)
            first_body = statement.body[0]
            header_end = first_body.lineno - 1
            if (isinstance(first_body, ast.Expr) and isinstance(first_body.value, ast.Constant)
                    and isinstance(first_body.value.value, str)):  # keep the docstring
                header_end = first_body.end_lineno
            start = statement.decorator_list[0].lineno if statement.decorator_list else statement.lineno
            header = lines[start - 1:header_end]
            indent = re.match(r"\s*", lines[first_body.lineno - 1]).group(0) or "    "
            parts.append(("function", "\n".join(header + [f"{indent}...  # your code"])))
        else:
            for name in _stored_names(statement):
                if name in wanted and name not in seen:
                    seen.add(name)
                    parts.append(("value", f"{name} = ...  # your code"))
    if not any(kind != "given" for kind, _ in parts):
        raise ExerciseLayoutError("the check reads nothing that the solution defines")
    text = parts[0][1]
    for (before, _), (kind, part) in zip(parts, parts[1:]):  # functions stand apart, values together
        text += ("\n" if before != "function" and kind != "function" else "\n\n") + part
    return text


def student_copy(nb: nbformat.NotebookNode, *, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``nb`` with each solution replaced by its :func:`stub` and outputs cleared.

    Stub cells are tagged ``answer`` and check cells ``check``; every other cell is unchanged.
    """
    copy = deepcopy(nb)
    for ex in find_exercises(copy):
        solution, check = copy.cells[ex.solution], copy.cells[ex.check]
        try:
            body = stub(solution.source, check.source)
        except (SyntaxError, ExerciseLayoutError) as exc:
            raise ExerciseLayoutError(f"{name}, {ex.title} (cell {ex.solution}): {exc}") from None
        solution.source = f"# {ex.title}: your answer. Then run the check below.\n{body}"
        solution.metadata["tags"] = [ANSWER_TAG if t == SOLUTION_TAG else t for t in solution.metadata["tags"]]
        tags = check.metadata.setdefault("tags", [])
        if CHECK_TAG not in tags:
            tags.append(CHECK_TAG)
    return strip_outputs(copy)


def write_student_copies(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """Write the student copy of each notebook into ``out_dir`` (same file names); return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        path = Path(path)
        copy = student_copy(nbformat.read(path, as_version=4), name=path.name)
        nbformat.write(copy, out_dir / path.name)
        written.append(out_dir / path.name)
    return written
