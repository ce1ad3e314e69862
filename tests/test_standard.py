"""The notebook-standard checker accepts a conforming lab and names each departure."""

import copy

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from medlab.standard import check_standard

INTRO = """# 99 · Example
Overview.

**Learning goals.** ...
**Prerequisites.** ...
**Estimated time.** 5 minutes."""


def good_notebook():
    cells = [
        new_markdown_cell(INTRO),
        new_code_cell('PROFILE = "default"\nSEED = 0\nDEVICE = "auto"', metadata={"tags": ["parameters"]}),
        new_code_cell('import numpy as np\nfrom medlab.runtime import setup\nsession = setup("99_example", profile=PROFILE)'),
        new_markdown_cell("## 1. First idea"),
        new_code_cell("x = np.ones(3)"),
        new_code_cell("np.testing.assert_allclose(x.sum(), 3.0, rtol=1e-5)"),
        new_markdown_cell("## 2. Second idea"),
        new_code_cell("assert x.sum() == 3"),
        new_markdown_cell("## Exercises\n\n### Exercise 1: a\n\n### Exercise 2: b\n\n### Exercise 3: c"),
    ]
    for _ in range(3):
        cells += [new_code_cell("answer = 1", metadata={"tags": ["solution"]}),
                  new_code_cell('with exercise("Exercise 1"):\n    check_close(answer, 1, name="answer")')]
    cells += [
        new_code_cell('claim(session, "total", x.sum(), at_least=2.5)\nrecord(session, size=3)'),
        new_markdown_cell("## Summary\n\n- ...\n\n**Further reading**: ..."),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def test_a_conforming_notebook_has_no_problems():
    assert check_standard(good_notebook(), "99_example") == []


def _edit(nb, index, source=None, **fields):
    nb = copy.deepcopy(nb)
    if source is not None:
        nb.cells[index].source = source
    for key, value in fields.items():
        nb.cells[index][key] = value
    return nb


CASES = {
    "bad name": (lambda nb: nb, "file name", "99-Example"),
    "no title": (lambda nb: _edit(nb, 0, "Some text"), "title", None),
    "no goals": (lambda nb: _edit(nb, 0, INTRO.replace("Learning goals", "Aims")), "learning goals", None),
    "untagged parameters": (lambda nb: _edit(nb, 1, metadata={}), "exactly one cell must be tagged", None),
    "code in parameters": (lambda nb: _edit(nb, 1, 'PROFILE = "default"\nSEED = 0\nDEVICE = "auto"\nN = len("ab")'),
                           "only `NAME = literal`", None),
    "missing SEED": (lambda nb: _edit(nb, 1, 'PROFILE = "default"\nDEVICE = "auto"'), "does not set SEED", None),
    "wrong default": (lambda nb: _edit(nb, 1, 'PROFILE = "full"\nSEED = 0\nDEVICE = "auto"'),
                      "its default must be 'default'", None),
    "dataset without folder": (lambda nb: _edit(nb, 1, 'PROFILE = "default"\nSEED = 0\nDEVICE = "auto"\nDATASET = "x"'),
                               "DATASET and DATA_DIR", None),
    "setup name": (lambda nb: _edit(nb, 2, 'from medlab.runtime import setup\nsession = setup("98_other")'),
                   "setup() is called with '98_other'", None),
    "late import": (lambda nb: _edit(nb, 4, "import os\nx = 1"), "all imports belong in the setup cell", None),
    "unnumbered sections": (lambda nb: _edit(nb, 6, "## Second idea"), "numbered sections", None),
    "section without check": (lambda nb: _edit(nb, 5, "y = x + 1"), "section '## 1. First idea' does not end with a check", None),
    "check not last": (lambda nb: _edit(_edit(nb, 4, "assert np.ones(3).sum() == 3"), 5, "y = 2"), "does not end with a check", None),
    "too few exercises": (lambda nb: _edit(nb, 9, metadata={}), "at least three exercises", None),
    "solution without check": (lambda nb: _edit(nb, 10, "print(answer)"), "not followed by a check cell", None),
    "check outside exercise": (lambda nb: _edit(nb, 10, 'check_close(answer, 1, name="answer")'),
                               "does not run inside 'with exercise", None),
    "no claim": (lambda nb: _edit(nb, 15, "record(session, total=3.0)"), "states no claim", None),
    "assert in outcome": (lambda nb: _edit(nb, 15, 'assert x.sum() == 3\nclaim(session, "t", 3.0, at_least=2)\nrecord(session, n=3)'),
                          "uses assert: state learning outcomes with claim", None),
    "claim elsewhere": (lambda nb: _edit(nb, 7, 'claim(session, "total", x.sum(), at_least=2.5)'),
                        "claims belong in the learning-outcome cell", None),
    "two outcome cells": (lambda nb: _edit(nb, 7, "assert x.sum() == 3\nrecord(session, again=1)"),
                          "exactly one cell must call record", None),
    "no summary": (lambda nb: _edit(nb, 16, "## The end"), "'## Summary'", None),
    "stored output": (lambda nb: _edit(nb, 4, execution_count=3), "stored outputs", None),
    "cuda": (lambda nb: _edit(nb, 4, 'x = np.ones(3)\ndevice = "cuda"'), "hard-codes a CUDA device", None),
    "cuda call": (lambda nb: _edit(nb, 4, "x = model.cuda()"), "hard-codes a CUDA device", None),
    "cuda to": (lambda nb: _edit(nb, 4, "x = x.to('cuda:0')"), "hard-codes a CUDA device", None),
    "pip install": (lambda nb: _edit(nb, 4, "%pip install monai\nx = 1"), "installs packages", None),
    "cell metadata": (lambda nb: _edit(nb, 4, metadata={"scrolled": True}), "metadata has keys ['scrolled']", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_departure_is_named(case):
    change, message, name = CASES[case]
    problems = check_standard(change(good_notebook()), name or "99_example")
    assert any(message in p for p in problems), problems


def test_checking_the_device_type_is_not_hard_coding():
    nb = _edit(good_notebook(), 4, 'x = np.ones(3)\npin = session.device.type == "cuda"')
    assert check_standard(nb, "99_example") == []


def test_a_section_check_may_be_any_assert_or_assert_call():
    nb = _edit(good_notebook(), 5, "if PROFILE != 'smoke':\n    assert x.sum() > 2")
    assert check_standard(nb, "99_example") == []


def test_machine_specific_notebook_metadata():
    nb = good_notebook()
    nb.metadata["widgets"] = {}
    assert any("machine-specific keys ['widgets']" in p for p in check_standard(nb, "99_example"))
