"""pyproject.toml, environment.yml and constraints.txt describe one environment."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch", "matplotlib-base": "matplotlib"}  # conda-forge name -> PyPI name
CONDA_ONLY = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_names_the_same_packages_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {CONDA_NAMES.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    pip = [entry for d in env["dependencies"] if isinstance(d, dict) for entry in d["pip"]]
    assert pip[-1] == "--editable .", "environment.yml installs medlab itself, last, with pip"
    from_pip = {_name(entry) for entry in pip[:-1]}  # packages that conda-forge does not carry
    declared = {_name(d) for d in _pyproject()["dependencies"]}
    assert (conda - CONDA_ONLY) | from_pip == declared and not (conda & from_pip)


def test_lower_bounds_agree():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    entries = [d for d in env["dependencies"] if isinstance(d, str)]
    entries += [e.split("#")[0].strip() for d in env["dependencies"] if isinstance(d, dict) for e in d["pip"]]
    conda = {CONDA_NAMES.get(_name(d), _name(d)): d.split(">=")[1] for d in entries
             if ">=" in d and _name(d) not in CONDA_ONLY}
    pypi = {_name(d): d.split(">=")[1] for d in _pyproject()["dependencies"]}
    assert conda == pypi


def test_pyproject_uses_lower_bounds_not_pins():
    for requirement in _pyproject()["dependencies"]:
        assert ">=" in requirement and "==" not in requirement, requirement


def test_constraints_pin_every_dependency_within_its_bounds():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version
    for requirement in _pyproject()["dependencies"]:
        name, lower = _name(requirement), requirement.split(">=")[1]
        assert name in pins, f"constraints.txt does not pin {name}"
        as_tuple = lambda v: tuple(int(x) for x in re.findall(r"\d+", v)[:3])  # noqa: E731
        assert as_tuple(pins[name]) >= as_tuple(lower), f"{name}=={pins[name]} is below {lower}"
    # torch and torchvision come from the same release train (PyPI's torchvision fails with other torch builds)
    assert "+" not in pins["torch"], "pin a PyPI build of torch, not a local one"


def test_nothing_generated_is_committed():
    ignored = (ROOT / ".gitignore").read_text().split()
    for path in ("/.venv/", "/build/", "/data/"):
        assert path in ignored
