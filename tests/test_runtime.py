import random

import numpy as np
import pytest
import torch

from medlab import runtime


@pytest.mark.parametrize("profile, expected", [("smoke", 1), ("default", 2), ("full", 3)])
def test_pick_returns_the_profiles_value(profile, expected):
    assert runtime.pick(profile, smoke=1, default=2, full=3) == expected


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown profile 'fast'.*'smoke', 'default', 'full'"):
        runtime.pick("fast", smoke=1, default=2, full=3)


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    runtime.seed_everything(7)
    first = draw()
    runtime.seed_everything(7)
    assert draw() == first
    runtime.seed_everything(8)
    assert draw() != first
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        runtime.seed_everything(seed)


def test_set_threads_explicit_and_from_environment(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert runtime.set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv(runtime.THREADS_ENV, "2")
        assert runtime.set_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv(runtime.THREADS_ENV, "many")
        with pytest.raises(ValueError, match="MEDLAB_NUM_THREADS must be a whole number"):
            runtime.set_threads()
        with pytest.raises(ValueError, match="at least 1"):
            runtime.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.choose_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.choose_device("auto").type == "mps"
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.choose_device("auto") == torch.device("cpu")


def test_missing_gpu_is_reported_clearly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="asks for a CUDA GPU.*DEVICE='auto'"):
        runtime.choose_device("cuda")
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS"):
        runtime.choose_device("mps")


@pytest.mark.parametrize("name", ["gpu", "tpu"])
def test_unknown_device_name(name):
    with pytest.raises(ValueError, match="DEVICE="):
        runtime.choose_device(name)


def test_setup_returns_a_session_and_prints_a_stable_summary(capsys):
    session = runtime.setup("99_example", profile="smoke", seed=3, device="cpu", threads=1)
    out = capsys.readouterr().out
    assert session.profile == "smoke" and session.seed == 3 and session.device == torch.device("cpu")
    assert session.pick(smoke="s", default="d", full="f") == "s"
    assert "99_example · profile smoke · seed 3" in out
    assert "device: cpu (1 thread)" in out and f"torch {torch.__version__}" in out
    assert 0 <= session.elapsed() < 60
    runtime.setup("99_example", profile="smoke", seed=3, device="cpu", threads=1)
    assert capsys.readouterr().out == out  # nothing volatile: nbval compares this output
    torch.set_num_threads(runtime.available_cpus())


def test_setup_checks_the_profile_first():
    with pytest.raises(ValueError, match="Unknown profile"):
        runtime.setup("99_example", profile="Default", quiet=True)
