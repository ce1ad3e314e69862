"""Replaying an executed notebook with nbval: the second half of every notebook test."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

SANITIZE_FILE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"


def replay(executed: Path, *, cell_timeout_s: int = 900) -> subprocess.CompletedProcess:
    """Re-run ``executed`` (a papermill output) with ``pytest --nbval``; every stored output must
    come out the same again. Results the replay records go to a throw-away folder."""
    executed = Path(executed).resolve()
    with tempfile.TemporaryDirectory(prefix="medlab-replay-") as scratch:
        env = {**os.environ, "MEDLAB_RESULTS_DIR": scratch}
        return subprocess.run(
            [
                sys.executable, "-m", "pytest", str(executed),
                "--nbval", "--nbval-current-env",
                "--nbval-sanitize-with", str(SANITIZE_FILE),
                "--nbval-cell-timeout", str(cell_timeout_s),
                "--rootdir", str(executed.parent), "-c", os.devnull,
                "-p", "no:cacheprovider", "-q", "--color=no",
            ],
            cwd=executed.parent,
            env=env,
            capture_output=True,
            text=True,
        )
