import numpy as np
import pytest
import torch

from medlab.exercises import (
    CHECKS_ENV,
    ExerciseError,
    check,
    check_between,
    check_close,
    exercise,
    filled_in,
    strict,
)


def test_check_passes_and_fails_with_the_hint(capsys):
    check(True, success="well done", hint="unused")
    assert capsys.readouterr().out == "✔ well done\n"
    with pytest.raises(ExerciseError, match="Not yet. look at the sign"):
        check(False, success="well done", hint="look at the sign")


def test_exercise_error_is_an_assertion_so_executed_labs_fail():
    assert issubclass(ExerciseError, AssertionError)


def test_check_close_accepts_tensors_arrays_and_lists(capsys):
    check_close(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0]), name="x")
    check_close((1.0, 2.0 + 1e-9), [1.0, 2.0], name="y")
    assert capsys.readouterr().out == "✔ x is correct\n✔ y is correct\n"


@pytest.mark.parametrize(
    "actual, expected, message",
    [
        (..., 1.0, "still empty"),
        (None, 1.0, "still empty"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], r"shape \(2,\), expected \(3,\)"),
        ([1.0, np.nan], [1.0, 2.0], "NaN"),
        ([1.0, 2.5], [1.0, 2.0], "differs from the expected value by up to 0.5"),
        ("abc", 1.0, "should be numbers"),
    ],
)
def test_check_close_explains_what_is_wrong(actual, expected, message):
    with pytest.raises(ExerciseError, match=message):
        check_close(actual, expected, name="answer", hint="h")


def test_check_between():
    check_between(0.5, low=0.0, high=1.0, name="p")
    with pytest.raises(ExerciseError, match="p = 1.5, expected between 0 and 1. Hint: smaller"):
        check_between(1.5, low=0.0, high=1.0, name="p", hint="smaller")
    with pytest.raises(ExerciseError, match="still empty"):
        check_between(..., low=0.0, high=1.0, name="p")


def test_missing_answers_include_lists_of_stub_results():
    with pytest.raises(ExerciseError, match="still empty"):
        check_close([None, None], [1.0, 2.0], name="conv_out")
    with pytest.raises(ExerciseError, match=r"still empty; fill in the cell above\.$"):
        filled_in(..., name="my_lr", hint="the hint waits for a first try")
    assert filled_in(0.0, name="zero is an answer") == 0.0


def test_practice_mode_prints_not_yet_and_goes_on(monkeypatch, capsys):
    monkeypatch.delenv(CHECKS_ENV, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not strict()
    with exercise("Exercise 7"):
        check_close(..., 1.0, name="answer", hint="h")
        print("not reached")
    assert capsys.readouterr().out == "✘ Exercise 7 · Not yet: answer is still empty; fill in the cell above.\n"


@pytest.mark.parametrize("variable, value", [(CHECKS_ENV, "strict"), ("NBGRADER_EXECUTION", "autograde")])
def test_strict_mode_raises_with_the_exercise_named(monkeypatch, variable, value):
    monkeypatch.delenv(CHECKS_ENV, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv(variable, value)
    assert strict()
    with pytest.raises(ExerciseError, match="Exercise 2: Not yet. wrong sign"):
        with exercise("Exercise 2"):
            check(False, success="", hint="wrong sign")


def test_exercise_leaves_other_errors_alone(monkeypatch):
    monkeypatch.delenv(CHECKS_ENV, raising=False)
    with pytest.raises(ZeroDivisionError):
        with exercise("Exercise 3"):
            1 / 0
