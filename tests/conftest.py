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


# Seconds each slow test took in `make test` with two single-thread workers (a fresh clone's run;
# they vary by a quarter between runs). pytest-xdist's worksteal hands each worker a contiguous
# share of the collected tests and later steals from the back of a queue, so the slow tests are
# shared out here: each worker's share starts with its slow tests, assigned longest first to the
# share with the least work so far, and its quick tests come after them, to be stolen at the end.
_SECONDS = {
    "test_notebook_runs[04_transfer_learning]": 348,
    "test_notebook_runs[05_segmentation]": 282,
    "test_notebook_runs[03_cnn_from_scratch]": 265,
    "test_notebook_runs[08_interpretability_robustness]": 259,
    "test_notebook_runs[06_detection]": 258,
    "test_notebook_runs[09_registration]": 212,
    "test_student_copy_runs_with_every_check_not_yet[08_interpretability_robustness]": 199,
    "test_notebook_runs[10_scaling_out]": 178,
    "test_notebook_runs[07_evaluation]": 152,
    "test_student_copy_runs_with_every_check_not_yet[10_scaling_out]": 147,
    "test_student_copy_runs_with_every_check_not_yet[04_transfer_learning]": 68,
    "test_transfer_lab_on_real_medmnist_meets_its_claims[pneumoniamnist": 58,
    "test_student_copy_runs_with_every_check_not_yet[03_cnn_from_scratch]": 55,
    "test_harness_detects_every_kind_of_breakage": 52,
}
_SLOW_DEFAULT_S, _QUICK_S = 20, 0.05


def _seconds(item) -> float:
    for name, seconds in _SECONDS.items():
        if name in item.nodeid:
            return seconds
    return _SLOW_DEFAULT_S if item.get_closest_marker("slow") else _QUICK_S


def pytest_collection_modifyitems(config, items):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # set in the workers, which collect
    ordered = sorted(items, key=_seconds, reverse=True)  # stable
    n = len(ordered)
    bounds = [w * n // workers for w in range(workers + 1)]
    room = [bounds[w + 1] - bounds[w] for w in range(workers)]
    shares, load = [[] for _ in range(workers)], [0.0] * workers
    for item in ordered:  # longest first, each to the share with the least work that has room
        w = min((w for w in range(workers) if len(shares[w]) < room[w]), key=lambda w: load[w])
        shares[w].append(item)
        load[w] += _seconds(item)
    items[:] = [item for share in shares for item in share]
