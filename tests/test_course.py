"""The course runner: finding, executing and reporting labs, and stripping outputs."""

import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from medlab import course


def _lab(source, *, tagged=True):
    params = new_code_cell('PROFILE = "default"\nSEED = 0\nDEVICE = "auto"',
                           metadata={"tags": ["parameters"]} if tagged else {})
    return new_notebook(cells=[params, new_code_cell(source)],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


RECORDING = """
from medlab.runtime import setup
from medlab.report import record
session = setup("{name}", profile=PROFILE, device="cpu", threads=1)
record(session, answer=42, profile_seen=PROFILE)
"""


@pytest.fixture
def labs(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(_lab(RECORDING.format(name="01_good")), folder / "01_good.ipynb")
    nbformat.write(_lab('raise ValueError("no images found")'), folder / "02_bad.ipynb")
    (folder / "sub").mkdir()
    monkeypatch.setenv("MEDLAB_RESULTS_DIR", str(tmp_path / "build" / "results"))
    return folder


def test_find_notebooks_is_sorted_and_flat(labs):
    assert [p.name for p in course.find_notebooks(labs)] == ["01_good.ipynb", "02_bad.ipynb"]
    with pytest.raises(FileNotFoundError, match="no notebook folder"):
        course.find_notebooks(labs / "missing")


def test_parameters_cell_is_required():
    assert course.parameters_cell(_lab("x = 1")) == 0
    with pytest.raises(course.NotebookError, match="no cell is tagged 'parameters'"):
        course.parameters_cell(_lab("x = 1", tagged=False))
    nb = _lab("x = 1")
    nb.cells[1].metadata["tags"] = ["parameters"]
    with pytest.raises(course.NotebookError, match="tag exactly one"):
        course.parameters_cell(nb)


def test_run_course_executes_with_the_profile_and_reports_failures(labs, tmp_path):
    build = tmp_path / "build"
    entries = course.run_course(labs, build, profile="smoke")
    good, bad = entries
    assert good["status"] == "ok" and good["results"] == {"answer": 42, "profile_seen": "smoke"}
    assert good["device"] == "cpu (1 thread)" and good["wall_s"] > 0
    assert bad["status"] == "failed" and "no images found" in bad["error"]
    assert (build / "executed" / "01_good.ipynb").exists() and (build / "executed" / "02_bad.ipynb").exists()
    report = json.loads((build / "report.json").read_text())
    assert [e["notebook"] for e in report["notebooks"]] == ["01_good", "02_bad"]
    assert "| 02_bad | failed |" in (build / "report.md").read_text()


def test_run_course_selects_labs_and_names_unknown_ones(labs, tmp_path):
    entries = course.run_course(labs, tmp_path / "build", profile="smoke", only=["01_good"])
    assert [e["notebook"] for e in entries] == ["01_good"]
    with pytest.raises(FileNotFoundError, match="no such notebook.*07_missing"):
        course.run_course(labs, tmp_path / "build", only=["07_missing"])


def test_main_exit_code_follows_the_labs(labs, tmp_path, capsys):
    build = tmp_path / "b"
    assert course.main(["run", "01_good", "--profile", "smoke", "--notebook-dir", str(labs), "--build-dir", str(build)]) == 0
    assert course.main(["run", "--profile", "smoke", "--notebook-dir", str(labs), "--build-dir", str(build)]) == 1
    assert "1 lab(s) failed: 02_bad" in capsys.readouterr().err


def test_execute_refuses_a_notebook_without_parameters(tmp_path):
    path = tmp_path / "03_untagged.ipynb"
    nbformat.write(_lab("x = 1", tagged=False), path)
    with pytest.raises(course.NotebookError, match="03_untagged.ipynb: no cell is tagged"):
        course.execute(path, tmp_path / "out", profile="smoke")


def test_execute_starts_a_kernel_once_more_only_when_none_ran_a_cell(tmp_path, monkeypatch, capsys):
    import papermill

    path = tmp_path / "04_lab.ipynb"
    nbformat.write(_lab("x = 1"), path)
    real, calls = papermill.execute_notebook, []

    def flaky(source, out, **kwargs):  # the first kernel dies while starting, as on a port clash
        calls.append(out)
        if len(calls) == 1:
            nbformat.write(_lab("x = 1"), out)
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(source, out, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    out = course.execute(path, tmp_path / "out", profile="smoke")
    assert len(calls) == 2 and nbformat.read(out, as_version=4).cells[1].execution_count
    assert "04_lab.ipynb: the kernel did not start (Kernel died before replying" in capsys.readouterr().err

    def dies_mid_lab(source, out, **kwargs):  # a cell ran: the lab itself may be at fault
        calls.append(out)
        nb = _lab("x = 1")
        nb.cells[0].execution_count = 1
        nbformat.write(nb, out)
        raise RuntimeError("Kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", dies_mid_lab)
    calls.clear()
    with pytest.raises(RuntimeError, match="Kernel died"):
        course.execute(path, tmp_path / "out", profile="smoke")
    assert len(calls) == 1


def test_strip_outputs_keeps_sources_and_tags_only(tmp_path):
    nb = _lab("print(1)")
    nb.cells[1].outputs = [new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 4
    nb.cells[1].metadata["scrolled"] = True
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert course.main(["strip", str(path)]) == 0
    stripped = nbformat.read(path, as_version=4)
    assert stripped.cells[1].outputs == [] and stripped.cells[1].execution_count is None
    assert stripped.cells[1].source == "print(1)" and stripped.cells[0].metadata == {"tags": ["parameters"]}
    assert set(stripped.metadata) == {"kernelspec"}


def test_run_takes_a_seed_and_any_parameter(labs, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(course, "run_course", lambda *a, **kw: seen.update(kw) or [])
    build = tmp_path / "b"
    build.mkdir()
    (build / "report.md").write_text("")
    assert course.main(["run", "01_good", "--seed", "3", "-p", "DATASET", "pneumoniamnist", "-p", "N", "20",
                        "--notebook-dir", str(labs), "--build-dir", str(build), "--quiet"]) == 0
    assert seen["parameters"] == {"DATASET": "pneumoniamnist", "N": 20, "SEED": 3}


def test_kernels_start_without_the_unencrypted_transport_warning(tmp_path, capfd):
    path = tmp_path / "lab.ipynb"
    nbformat.write(_lab("print(6 * 7)"), path)
    out = course.execute(path, tmp_path / "out", profile="smoke")
    assert nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"] == "42\n"
    assert "without encryption" not in capfd.readouterr().err


def test_run_course_makes_exercise_checks_strict_unless_told(labs, tmp_path, monkeypatch):
    from medlab.exercises import CHECKS_ENV

    monkeypatch.delenv(CHECKS_ENV, raising=False)
    course.run_course(labs, tmp_path / "build", profile="smoke", only=["01_good"])
    assert os.environ[CHECKS_ENV] == "strict"
    monkeypatch.setenv(CHECKS_ENV, "practice")
    course.run_course(labs, tmp_path / "build", profile="smoke", only=["01_good"])
    assert os.environ[CHECKS_ENV] == "practice"


PROFILED = """
import torch
from torch.profiler import ProfilerActivity, profile
with profile(activities=[ProfilerActivity.CPU]):
    torch.ones(3).sum()
"""


def test_the_profiler_writes_nothing_through_the_progress_bar(labs, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("KINETO_LOG_LEVEL", "0")
    monkeypatch.delenv("KINETO_LOG_LEVEL")  # restored after the test, as run_course sets it
    nbformat.write(_lab(PROFILED), labs / "03_profiled.ipynb")
    [entry] = course.run_course(labs, tmp_path / "build", profile="smoke", only=["03_profiled"])
    err = capfd.readouterr().err
    assert entry["status"] == "ok" and "profiler_start" not in err and "gpuGetDeviceCount" not in err, err
