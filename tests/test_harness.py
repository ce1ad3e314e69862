"""The notebook tests themselves are tested: broken notebooks must make them fail.

Small notebooks, each broken in one way, are put in a folder of their own, and
``tests/test_notebooks.py`` is run on that folder in a separate pytest process, as ``make test``
runs it on ``notebooks/``: executed in the default profile, the student copy run in the smoke
profile and replayed.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

TESTS = Path(__file__).resolve().parent

PARAMETERS = 'PROFILE = "default"\nSEED = 0\nDEVICE = "auto"'

# name -> (cells after the parameters cell, text the failure must mention; None = must pass)
CASES = {
    "ok": (['print("profile", PROFILE)', "value = 21 * 2\nprint(value)"], None),
    "exception": (['raise RuntimeError("the data folder is empty")'], "the data folder is empty"),
    "failed_outcome": (['val_dice = 0.42\nassert val_dice >= 0.90, "validation Dice below 0.90"'],
                       "validation Dice below 0.90"),
    "failed_claim": (['from medlab.runtime import setup\nfrom medlab.claims import claim\n'
                      's = setup("failed_claim", profile="default", device="cpu", quiet=True)\n'
                      'claim(s, "val_dice", 0.42, at_least=0.9, why="the U-Net segments the lungs")'],
                     "claim 'val_dice' does not hold"),
    "changed_output": (["import time\nprint(time.perf_counter_ns())"], "Cell outputs differ"),
    "download": (['import urllib.request\nurllib.request.urlopen("http://example.org/data.zip", timeout=5)'],
                 "MedLab runs offline"),
    "no_parameters": (None, "no cell is tagged 'parameters'"),
    "exercise": ([("md", "### Exercise 1: the answer"), ("solution", "answer_value = 42"),
                  'from medlab.exercises import check, exercise\nwith exercise("Exercise 1"):\n'
                  '    check(answer_value == 42, success="right", hint="6 × 7")'], None),
    "wrong_solution": ([("md", "### Exercise 1: the answer"), ("solution", "answer_value = 41"),
                        'from medlab.exercises import check, exercise\nwith exercise("Exercise 1"):\n'
                        '    check(answer_value == 42, success="right", hint="6 × 7")'], "Exercise 1: Not yet. 6 × 7"),
    "hollow_check": ([("md", "### Exercise 1: the answer"), ("solution", "answer_value = 42"),
                      'from medlab.exercises import check, exercise\nwith exercise("Exercise 1"):\n'
                      '    check(answer_value is not None, success="right", hint="6 × 7")'], "hollow"),
}


def _cell(spec):
    """A code cell from its source; ("md", text) is a Markdown cell, ("solution", code) a worked solution."""
    if isinstance(spec, str):
        return new_code_cell(spec)
    kind, source = spec
    return new_markdown_cell(source) if kind == "md" else new_code_cell(source, metadata={"tags": [kind]})


def _notebook(cells):
    if cells is None:  # the parameters are there, but untagged
        body = [new_code_cell(PARAMETERS), new_code_cell("print(PROFILE)")]
    else:
        parameters = new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]})
        body = [parameters] + [_cell(src) for src in cells]
    return new_notebook(cells=[new_markdown_cell("# harness case")] + body,
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Run the notebook tests on the harness cases once; map case name -> (outcome, message),
    the case failing where either of its two tests (the run, the replay) fails."""
    root = tmp_path_factory.mktemp("harness")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    for name, (cells, _) in CASES.items():
        nbformat.write(_notebook(cells), notebooks / f"{name}.ipynb")
    junit = root / "junit.xml"
    env = {**os.environ, "MEDLAB_NOTEBOOK_DIR": str(notebooks), "MEDLAB_BUILD_DIR": str(root / "build"),
           "MEDLAB_RESULTS_DIR": str(root / "results"), "MEDLAB_PROFILE": "default",
           "MEDLAB_REPLAY_PROFILE": "smoke"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(TESTS / "test_notebooks.py"), "-k", "notebook_runs or student_copy",
         "-p", "no:cacheprovider", f"--junitxml={junit}", "-q"],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600,
    )
    assert junit.exists(), run.stdout + run.stderr
    found, tests = {}, {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test, name = case.get("name").rstrip("]").split("[", 1)
        tests.setdefault(name, set()).add(test)
        failure = case.find("failure")
        if failure is not None:
            message = found.get(name, ("", ""))[1] + failure.get("message", "") + (failure.text or "")
            found[name] = ("failed", message)
        else:
            found.setdefault(name, ("passed", ""))
    assert all(t == {"test_notebook_runs", "test_student_copy_runs_with_every_check_not_yet"}
               for t in tests.values()), tests
    return found


@pytest.mark.slow
def test_harness_detects_every_kind_of_breakage(outcomes):
    """One test, so that the harness runs once even when the tests are spread over workers."""
    problems = []
    for case, (_, expected) in sorted(CASES.items()):
        outcome, message = outcomes[case]
        if expected is None and outcome != "passed":
            problems.append(f"{case}: a good notebook failed the notebook tests:\n{message[-3000:]}")
        elif expected is not None and outcome != "failed":
            problems.append(f"{case}: a notebook with a {case} problem passed the notebook tests")
        elif expected is not None and expected not in message:
            problems.append(f"{case}: the failure does not mention {expected!r}:\n{message[-3000:]}")
    assert not problems, "\n".join(problems)
