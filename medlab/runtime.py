"""Seeding, thread count, device choice and run profiles: what a lab's setup cell calls.

Every lab starts with::

    session = setup("00_orientation", profile=PROFILE, seed=SEED, device=DEVICE)

which seeds Python, NumPy and torch, fixes torch's thread count, turns on deterministic
algorithms, picks the device and prints a short environment summary. The returned
:class:`Session` carries the choices and the start time that :func:`medlab.report.record`
turns into the notebook's run time.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

import medlab
from medlab.profiles import PROFILES, T, check_profile, pick  # noqa: F401 (part of this module's API)

THREADS_ENV = "MEDLAB_NUM_THREADS"
"""Environment variable that overrides the number of CPU threads torch uses."""


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and all GPUs).

    With ``deterministic=True`` torch uses deterministic algorithms where they exist (ops
    without one warn instead of failing) and cuDNN stops choosing kernels by benchmark, so a
    run repeats bit for bit on the same machine at the same thread count.

    Taught in lab 00, section 1 (Your session), where ``setup`` calls it.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this set before its first use to be reproducible on CUDA.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def available_cpus() -> int:
    """Number of CPU cores this process may run on (respects affinity and container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows
        return os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Fix torch's intra-op thread count and return it.

    ``None`` reads the environment variable ``MEDLAB_NUM_THREADS``, else uses every available
    core. Results computed with different thread counts can differ in the last bits, so
    the count is set explicitly rather than left to torch.
    """
    if threads is None:
        env = os.environ.get(THREADS_ENV)
        if env is not None:
            try:
                threads = int(env)
            except ValueError:
                raise ValueError(f"{THREADS_ENV} must be a whole number, got {env!r}") from None
        else:
            threads = available_cpus()
    if threads < 1:
        raise ValueError(f"the thread count must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    if "SimpleITK" in sys.modules:  # lab 09's registrations: the same count, for the same reason
        sys.modules["SimpleITK"].ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    return threads


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(device: str = "auto") -> torch.device:
    """Return the torch device to compute on.

    ``"auto"`` picks CUDA if torch sees a GPU, then Apple's MPS, then the CPU. An explicit
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` is checked, so asking for a GPU that is
    not there fails here with a clear message rather than deep inside a training loop.

    >>> choose_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"DEVICE={device!r} is not a device name: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"DEVICE={device!r} asks for a CUDA GPU, but torch {torch.__version__} sees none. "
                "Use DEVICE='auto' to run on what this machine has."
            )
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"DEVICE={device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)."
            )
    elif chosen.type == "mps" and not _mps_available():
        raise RuntimeError(f"DEVICE={device!r} asks for Apple's MPS, which torch cannot use here.")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"DEVICE={device!r}: MedLab runs on 'cpu', 'cuda' or 'mps'.")
    return chosen


def describe_device(device: torch.device, threads: int) -> str:
    """One line naming the device, e.g. ``"cpu (2 threads)"`` or ``"cuda:0 (NVIDIA A100, 40 GB)"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


@dataclass(frozen=True)
class Session:
    """What a lab's setup chose: profile, seed, device, thread count, and when it started.

    ``started`` is a :func:`time.perf_counter` reading in seconds. ``claims`` and ``results``
    collect what :func:`medlab.claims.claim` and :func:`medlab.report.record` were given.

    Taught in lab 00, section 1 (Your session).
    """

    notebook: str
    profile: str
    seed: int
    device: torch.device
    threads: int
    started: float = field(default_factory=time.perf_counter)
    claims: dict = field(default_factory=dict, repr=False, compare=False)
    results: dict = field(default_factory=dict, repr=False, compare=False)

    def pick(self, *, smoke: T, default: T, full: T) -> T:
        """The value for this session's profile: ``session.pick(smoke=1, default=20, full=200)``."""
        return pick(self.profile, smoke=smoke, default=default, full=full)

    def elapsed(self) -> float:
        """Seconds since :func:`setup` ran."""
        return time.perf_counter() - self.started

    @property
    def device_name(self) -> str:
        """Short device description for reports, e.g. ``"cpu (2 threads)"``."""
        return describe_device(self.device, self.threads)


def library_versions() -> dict[str, str]:
    """Versions of Python, MedLab, NumPy, torch and of the course libraries already imported."""
    versions = {
        "python": platform.python_version(),
        "medlab": medlab.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
    }
    for name in ("torchvision", "monai", "pydicom", "sklearn", "skimage"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return versions


def environment_summary(session: Session) -> str:
    """A short, stable text describing the run (no timestamps, so reruns print the same)."""
    versions = " · ".join(f"{k} {v}" for k, v in library_versions().items())
    return (
        f"{session.notebook} · profile {session.profile} · seed {session.seed}\n"
        f"device: {session.device_name}\n"
        f"{versions}"
    )


def setup(
    notebook: str,
    *,
    profile: str = "default",
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
    quiet: bool = False,
) -> Session:
    """Prepare a lab: check the profile, seed everything, fix threads, pick the device.

    Parameters
    ----------
    notebook
        The lab's name, e.g. ``"00_orientation"``; it names the results file.
    profile
        One of :data:`PROFILES`.
    seed
        Seed for Python, NumPy and torch.
    device
        ``"auto"`` (CUDA, then MPS, then CPU) or an explicit device name.
    threads
        CPU threads for torch; ``None`` means ``$MEDLAB_NUM_THREADS`` or all available cores.
    quiet
        Do not print the environment summary.

    Taught in lab 00, section 1 (Your session).
    """
    check_profile(profile)
    seed_everything(seed)
    n_threads = set_threads(threads)
    session = Session(
        notebook=notebook,
        profile=profile,
        seed=int(seed),
        device=choose_device(device),
        threads=n_threads,
    )
    if not quiet:
        print(environment_summary(session))
    return session
