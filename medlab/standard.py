"""The notebook standard every lab follows (``notebooks/README.md``), as a checker.

:func:`check_standard` returns a list of problems, empty when a lab conforms. The test suite
runs it on every notebook; an author can run ``python -m medlab.standard notebooks/*.ipynb``.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

NAME_PATTERN = re.compile(r"^\d\d_[a-z0-9_]+$")
REQUIRED_PARAMETERS = {"PROFILE": "default", "SEED": 0, "DEVICE": "auto"}
INTRO_PARTS = ("learning goals", "prerequisites", "estimated time")
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info"}
ALLOWED_CELL_METADATA = {"tags"}
# "cuda" given as a device (an explicit choice that fails on CPU-only machines); comparing
# session.device.type with "cuda" to enable GPU-only speed-ups is fine.
HARD_CODED_DEVICE = re.compile(r"""((device\s*=\s*|torch\.device\(\s*|\.to\(\s*)["']cuda|\.cuda\(\))""")
INSTALL_COMMAND = re.compile(r"(^|\s|[!%])(pip|conda|mamba)\s+install\b", re.MULTILINE)
CHECK_CALL = re.compile(r"\bcheck\w*\(")
EXERCISE_BLOCK = re.compile(r"^with exercise\(", re.MULTILINE)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _python_source(source: str) -> str:
    """Cell source with IPython magics and shell escapes blanked, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _parameters_problems(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"parameters cell does not parse: {exc.msg}"]
    problems, values = [], {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
                continue
            except ValueError:
                pass
        problems.append(f"parameters cell line {node.lineno}: only `NAME = literal` assignments belong here")
    for name, default in REQUIRED_PARAMETERS.items():
        if name not in values:
            problems.append(f"parameters cell does not set {name}")
        elif values[name] != default:
            problems.append(f"parameters cell sets {name} = {values[name]!r}; its default must be {default!r}")
    if ("DATASET" in values) != ("DATA_DIR" in values):
        problems.append("parameters cell sets one of DATASET and DATA_DIR; a lab with data sets both")
    return problems


def _imports(source: str) -> bool:
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return False
    return any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(tree))


def _tree(source: str) -> ast.AST | None:
    try:
        return ast.parse(_python_source(source))
    except SyntaxError:
        return None


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def checks_something(source: str) -> bool:
    """Whether a cell's code checks a result: an ``assert`` statement, a ``claim(...)`` or a
    NumPy/pytest-style ``assert_...(...)`` call (e.g. ``np.testing.assert_allclose``).

    >>> checks_something("assert x > 0"), checks_something("np.testing.assert_allclose(a, b)"), checks_something("x = 1")
    (True, True, False)
    """
    tree = _tree(source)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call) and (_called(node) == "claim" or _called(node).startswith("assert_")):
            return True
    return False


def _calls(source: str, name: str) -> int:
    tree = _tree(source)
    return 0 if tree is None else sum(isinstance(n, ast.Call) and _called(n) == name for n in ast.walk(tree))


def _asserts(source: str) -> bool:
    tree = _tree(source)
    return tree is not None and any(isinstance(n, ast.Assert) for n in ast.walk(tree))


def _section_problems(cells) -> list[str]:
    """Each numbered section must close with a check: its last code cell checks something."""
    problems, current, last_code = [], None, None

    def close():
        if current is not None and (last_code is None or not checks_something(last_code.source)):
            problems.append(f"section '{current}' does not end with a check (an assert or claim in its last code cell)")

    for cell in cells:
        if cell.cell_type == "markdown":
            heading = next((line.strip() for line in cell.source.splitlines() if line.startswith("## ")), None)
            if heading is not None:
                close()
                current = heading if re.match(r"^## \d+\. ", heading) else None
                last_code = None
        elif cell.cell_type == "code":
            last_code = cell
    close()
    return problems


def check_standard(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Problems that keep notebook ``nb`` (file stem ``name``) from following the standard."""
    cells = nb.cells
    code = [(i, c) for i, c in enumerate(cells) if c.cell_type == "code"]
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    headings = [line.strip() for line in markdown.splitlines() if line.startswith("#")]
    problems = _name_problems(name)
    problems += _title_problems(cells)
    problems += _parameters_cell_problems(cells, code)
    problems += _setup_cell_problems(code, name)
    problems += _numbered_section_problems(cells, headings)
    problems += _exercise_problems(cells, headings)
    problems += _outcome_problems(code)
    problems += _summary_problems(headings, markdown)
    problems += _storage_problems(nb, code)
    return problems


def _name_problems(name: str) -> list[str]:
    """The file name follows ``NAME_PATTERN``: two digits, an underscore, lower case."""
    if not NAME_PATTERN.match(name):
        return [f"file name {name!r} should look like '03_cnn_from_scratch' (two digits, lower case)"]
    return []


def _title_problems(cells) -> list[str]:
    """1. The first cell is Markdown with the title, and its introduction states each of
    ``INTRO_PARTS``."""
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.startswith("# "):
        return ["the first cell should be Markdown starting with the title ('# ...')"]
    intro = cells[0].source.lower()
    return [f"the introduction does not state its {part}" for part in INTRO_PARTS if part not in intro]


def _parameters_cell_problems(cells, code) -> list[str]:
    """2. Exactly one cell is tagged ``parameters``: the first code cell, holding plain
    literals (see :func:`_parameters_problems`)."""
    tagged = [i for i, c in enumerate(cells) if "parameters" in _tags(c)]
    if len(tagged) != 1:
        return [f"exactly one cell must be tagged 'parameters' (found {len(tagged)})"]
    if not code or code[0][0] != tagged[0]:
        return ["the cell tagged 'parameters' must be the first code cell"]
    return _parameters_problems(cells[tagged[0]].source)


def _setup_cell_problems(code, name: str) -> list[str]:
    """3. The second code cell calls ``setup()`` with the notebook's name and holds every import."""
    if len(code) < 2:
        return ["there is no setup cell after the parameters cell"]
    problems = []
    setup_source = code[1][1].source
    match = re.search(r"\bsetup\(\s*[\"']([^\"']+)[\"']", setup_source)
    if not match:
        problems.append("the setup cell (second code cell) should call setup('<notebook name>', ...)")
    elif match.group(1) != name:
        problems.append(f"setup() is called with {match.group(1)!r} but the notebook is {name!r}")
    late = [i for i, c in code[2:] if _imports(c.source)]
    if late:
        problems.append(f"cells {late} import modules; all imports belong in the setup cell")
    return problems


def _numbered_section_problems(cells, headings: list[str]) -> list[str]:
    """4. The lab has at least two numbered sections (``## 1. ...``), each ending with a check."""
    problems = []
    sections = [h for h in headings if re.match(r"^## \d+\. ", h)]
    if len(sections) < 2:
        problems.append("the lab needs numbered sections ('## 1. ...', '## 2. ...')")
    return problems + _section_problems(cells)


def _exercise_problems(cells, headings: list[str]) -> list[str]:
    """5. An ``## Exercises`` section with at least three exercises, each solution cell
    followed by a check cell whose checks (``check...()``) run inside ``with exercise(...)``."""
    problems = []
    exercises = [h for h in headings if re.match(r"^### Exercise \d+", h)]
    solutions = [i for i, c in enumerate(cells) if "solution" in _tags(c)]
    if "## Exercises" not in headings:
        problems.append("there is no '## Exercises' section")
    if len(exercises) < 3 or len(solutions) < 3:
        problems.append(f"at least three exercises with solution cells are needed "
                        f"(found {len(exercises)} exercises, {len(solutions)} solution cells)")
    for i in solutions:
        after = next((c for c in cells[i + 1:] if c.cell_type == "code"), None)
        if cells[i].cell_type != "code":
            problems.append(f"cell {i} is tagged 'solution' but is not a code cell")
        elif after is None or "solution" in _tags(after) or not CHECK_CALL.search(after.source):
            problems.append(f"the solution in cell {i} is not followed by a check cell (calling check...())")
        elif not EXERCISE_BLOCK.search(after.source):
            problems.append(f"the check after the solution in cell {i} does not run inside 'with exercise(...)', "
                            "so a student copy would stop there")
    return problems


def _outcome_problems(code) -> list[str]:
    """6. Exactly one cell, the learning-outcome cell, calls ``record(...)``; it states the
    outcomes with ``claim(...)`` (no ``assert``), and no other cell claims."""
    outcome = [(i, c) for i, c in code if _calls(c.source, "record")]
    claiming = [i for i, c in code if _calls(c.source, "claim")]
    if len(outcome) != 1:
        return [f"exactly one cell must call record(...), the learning-outcome cell (found {len(outcome)})"]
    problems = []
    i, cell = outcome[0]
    if not _calls(cell.source, "claim"):
        problems.append(f"the learning-outcome cell {i} states no claim(...): assert the outcomes with claim()")
    if _asserts(cell.source):
        problems.append(f"the learning-outcome cell {i} uses assert: state learning outcomes with claim(...)")
    elsewhere = [j for j in claiming if j != i]
    if elsewhere:
        problems.append(f"cells {elsewhere} call claim(...); claims belong in the learning-outcome cell")
    return problems


def _summary_problems(headings: list[str], markdown: str) -> list[str]:
    """7. A ``## Summary`` section and further reading."""
    problems = []
    if "## Summary" not in headings:
        problems.append("there is no '## Summary' section")
    if "further reading" not in markdown.lower():
        problems.append("the summary gives no further reading")
    return problems


def _storage_problems(nb: nbformat.NotebookNode, code) -> list[str]:
    """The notebook is stored clean (no outputs, no machine-specific metadata), portable
    (no hard-coded CUDA device) and offline (no package installs)."""
    problems = []
    for i, c in code:
        if c.get("outputs") or c.get("execution_count") is not None:
            problems.append(f"cell {i} has stored outputs or an execution count (run `make strip`)")
        if HARD_CODED_DEVICE.search(c.source):
            problems.append(f"cell {i} hard-codes a CUDA device; use session.device")
        if INSTALL_COMMAND.search(c.source):
            problems.append(f"cell {i} installs packages; dependencies belong in pyproject.toml")
    extra = set(nb.metadata) - ALLOWED_NOTEBOOK_METADATA
    if extra:
        problems.append(f"notebook metadata has machine-specific keys {sorted(extra)} (run `make strip`)")
    for i, c in enumerate(nb.cells):
        extra = set(c.get("metadata", {})) - ALLOWED_CELL_METADATA
        if extra:
            problems.append(f"cell {i} metadata has keys {sorted(extra)} (run `make strip`)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    failed = 0
    for path in paths:
        problems = check_standard(nbformat.read(path, as_version=4), path.stem)
        for problem in problems:
            print(f"{path}: {problem}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
