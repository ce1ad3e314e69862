"""The project's folders: where results, checkpoints and downloaded data go.

Each folder is an environment variable if it is set, else a default:

=============  ==========================  ====================================
folder         environment variable        default
=============  ==========================  ====================================
build          ``MEDLAB_BUILD_DIR``        ``build/`` in the project [#]_
results        ``MEDLAB_RESULTS_DIR``      ``<build>/results``
checkpoints    ``MEDLAB_CHECKPOINT_DIR``   ``<build>/checkpoints``
data           ``MEDLAB_DATA_DIR``         ``~/.cache/medlab``
=============  ==========================  ====================================

.. [#] The project is the nearest folder at or above the working directory holding both
   ``pyproject.toml`` and ``medlab/`` (:func:`project_root`); outside a checkout, the working
   directory.

Nothing here creates a folder; the code that writes into one does. The module imports only
the standard library, so the command line (``python -m medlab.course``) can use it cheaply.

>>> import os
>>> os.environ["MEDLAB_CHECKPOINT_DIR"] = "/tmp/medlab-checkpoints"
>>> checkpoint_dir()
PosixPath('/tmp/medlab-checkpoints')
>>> del os.environ["MEDLAB_CHECKPOINT_DIR"]
"""

from __future__ import annotations

import os
from pathlib import Path

BUILD_ENV = "MEDLAB_BUILD_DIR"
"""Environment variable naming the build folder (executed labs, the course report)."""

RESULTS_ENV = "MEDLAB_RESULTS_DIR"
"""Environment variable naming the folder that receives the labs' results files."""

CHECKPOINT_ENV = "MEDLAB_CHECKPOINT_DIR"
"""Environment variable naming the folder for the checkpoints the labs make and share."""

DATA_ENV = "MEDLAB_DATA_DIR"
"""Environment variable naming the folder that receives downloaded datasets."""


def _from_environment(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) that holds
    both ``pyproject.toml`` and ``medlab/``; ``None`` outside a MedLab checkout."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "medlab").is_dir():
            return folder
    return None


def build_dir() -> Path:
    """``$MEDLAB_BUILD_DIR`` if set, else ``build`` in the project (or in the working directory
    outside it).

    Taught in lab 10, section 2 (Fast data: caching what does not change).
    """
    return _from_environment(BUILD_ENV) or (project_root() or Path.cwd()) / "build"


def results_dir(*, build: str | os.PathLike | None = None) -> Path:
    """``$MEDLAB_RESULTS_DIR`` if set, else ``results`` in ``build`` (default: :func:`build_dir`)."""
    return _from_environment(RESULTS_ENV) or Path(build if build is not None else build_dir()) / "results"


def checkpoint_dir() -> Path:
    """``$MEDLAB_CHECKPOINT_DIR`` if set, else ``checkpoints`` in :func:`build_dir`.

    Taught in lab 04, section 2 (Where pretrained weights come from — offline).
    """
    return _from_environment(CHECKPOINT_ENV) or build_dir() / "checkpoints"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """``path`` if given, else ``$MEDLAB_DATA_DIR`` if set, else ``~/.cache/medlab``: outside the
    project, so that a dataset survives a fresh clone and is shared by checkouts.

    >>> data_dir("/tmp/medlab-data")
    PosixPath('/tmp/medlab-data')
    """
    if path is not None:
        return Path(path).expanduser()
    return _from_environment(DATA_ENV) or Path.home() / ".cache" / "medlab"
