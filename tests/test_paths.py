"""The project's folders: each an environment variable, else a default in the project."""

import subprocess
import sys
from pathlib import Path

import pytest

from medlab import paths

FOLDERS = [(paths.results_dir, paths.RESULTS_ENV, "results"), (paths.checkpoint_dir, paths.CHECKPOINT_ENV, "checkpoints")]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A checkout-shaped folder, entered from a sub-folder, with no MedLab variable set."""
    for name in (paths.BUILD_ENV, paths.RESULTS_ENV, paths.CHECKPOINT_ENV, paths.DATA_ENV):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "medlab").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    return tmp_path.resolve()


def test_the_project_is_found_from_a_sub_folder_and_not_outside(project, monkeypatch):
    assert paths.project_root() == project
    monkeypatch.chdir(project.parent)
    assert paths.project_root() is None
    assert paths.build_dir() == project.parent / "build"  # outside a checkout: the working directory


@pytest.mark.parametrize("folder, env, name", FOLDERS)
def test_folders_default_to_the_build_folder_and_follow_it(project, monkeypatch, folder, env, name):
    assert folder() == project / "build" / name
    monkeypatch.setenv(paths.BUILD_ENV, str(project / "elsewhere"))
    assert folder() == project / "elsewhere" / name
    monkeypatch.setenv(env, str(project / "mine"))
    assert folder() == project / "mine"


def test_data_prefers_an_argument_then_the_environment_then_the_home_cache(project, monkeypatch):
    monkeypatch.setenv("HOME", str(project / "home"))
    assert paths.data_dir() == project / "home" / ".cache" / "medlab"
    monkeypatch.setenv(paths.DATA_ENV, "~/data")
    assert paths.data_dir() == project / "home" / "data"
    assert paths.data_dir(project / "explicit") == project / "explicit"


def test_an_empty_variable_means_unset(project, monkeypatch):
    monkeypatch.setenv(paths.RESULTS_ENV, "")
    assert paths.results_dir() == project / "build" / "results"


def test_nothing_is_created(project):
    paths.results_dir(), paths.checkpoint_dir(), paths.data_dir()
    assert not (project / "build").exists()


def test_the_command_line_strips_notebooks_without_importing_torch(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1", execution_count=3,
                                                                   outputs=[nbformat.v4.new_output("stream", text="2")])])
    path = tmp_path / "lab.ipynb"
    nbformat.write(nb, path)
    code = ("import sys; from medlab import course; course.main(['strip', sys.argv[1]]); "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'strip imported torch or NumPy'")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=Path(__file__).parent)
    cell = nbformat.read(path, as_version=4).cells[0]
    assert cell.outputs == [] and cell.execution_count is None
