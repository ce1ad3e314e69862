"""Shared set-up for MedLab's tests: offline, headless, results kept under build/, checkpoints
made afresh, a fixed thread count."""

import importlib.util
import os
import tempfile
from pathlib import Path

import matplotlib
import torch

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_DIR = Path(__file__).resolve().parent / "offline"

# Every process the tests start (notebook kernels included) imports the network guard at start-up.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(OFFLINE_DIR)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
if not os.environ.get("MEDLAB_RESULTS_DIR"):
    os.environ["MEDLAB_RESULTS_DIR"] = str(ROOT / "build" / "results")
# Nothing left over from earlier runs: checkpoints are made afresh, in a folder of this run's own.
os.environ["MEDLAB_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="medlab-test-checkpoints-")
# A fixed thread count, shared out between the test workers (`make test WORKERS=2`), so that
# executing and replaying a lab compute alike.
# The first import (pytest's main process) remembers whether the user chose a thread count;
# worker processes inherit its environment, so they must not take its value for a choice.
_given = os.environ.setdefault("MEDLAB_TEST_THREADS_GIVEN", os.environ.get("MEDLAB_NUM_THREADS", ""))
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # set in every worker, restarted ones too
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
os.environ["MEDLAB_NUM_THREADS"] = _given or str(max(1, _cores // _workers))
os.environ.pop("MEDLAB_CLAIMS", None)  # claims fail where they are made
os.environ["MEDLAB_CHECKS"] = "strict"  # a worked solution that fails its exercise check fails the lab
torch.set_num_threads(int(os.environ["MEDLAB_NUM_THREADS"]))  # the unit tests in this process too

# This process draws off-screen (kernels keep their inline backend) and runs offline too.
matplotlib.use("Agg")
_spec = importlib.util.spec_from_file_location("medlab_offline_guard", OFFLINE_DIR / "sitecustomize.py")
_guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guard)


# The longest tests first (seconds on two single-thread workers, roughly), so that with
# `make test WORKERS=2` no worker is left running a long lab at the end while the other idles.
_LONGEST_FIRST = (
    "test_notebook_runs[04_transfer_learning]",
    "test_notebook_runs[05_segmentation]",
    "test_notebook_runs[03_cnn_from_scratch]",
    "test_notebook_runs[08_interpretability_robustness]",
    "test_notebook_runs[06_detection]",
    "test_notebook_runs[07_evaluation]",
    "test_notebook_runs[09_registration]",
    "test_student_copy_runs_with_every_check_not_yet[10_scaling_out]",
    "test_notebook_runs[10_scaling_out]",
    "test_student_copy_runs_with_every_check_not_yet[08_interpretability_robustness]",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        for k, name in enumerate(_LONGEST_FIRST):
            if name in item.nodeid:
                return k
        return len(_LONGEST_FIRST) + (0 if item.get_closest_marker("slow") else 1)

    items.sort(key=rank)  # stable: the rest keep their order, slow tests before quick ones
