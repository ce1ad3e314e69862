"""Distributed data-parallel training with :mod:`torch.distributed`: the same script on a
two-core laptop (the gloo backend, one process per core) and on a machine of GPUs (NCCL, one
process per GPU).

``torchrun`` (``python -m torch.distributed.run``) starts the processes and tells each its
place in the environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``LOCAL_WORLD_SIZE``. In each process :func:`init_process_group` reads them and joins the
group, :func:`shard_loader` serves that process its share of every batch, and :func:`wrap`
puts the model in PyTorch's ``DistributedDataParallel``, which averages the gradients over the
processes in ``backward()``, so every process takes the same optimiser step. Without
``torchrun`` the same script runs as one process. :func:`launch` starts ``torchrun`` from
Python (a notebook, a test) and turns a failure or a hang into an exception.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from medlab import arguments
from medlab.runtime import choose_device

BACKENDS = ("auto", "gloo", "nccl")
"""The ``backend`` values :func:`init_process_group` accepts."""

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
"""The environment variables ``torchrun`` sets in every process it starts."""


@dataclass(frozen=True)
class Context:
    """Where this process stands in a distributed run.

    ``rank`` counts the processes from 0 to ``world_size - 1``; ``local_rank`` counts those on
    this machine (it picks the GPU). ``device`` is where this process computes; ``backend`` is
    ``"gloo"`` or ``"nccl"``, or ``None`` for a single process without a process group.

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True in the process of rank 0, the one that prints and writes files."""
        return self.rank == 0


def _torchrun_environment() -> dict[str, int] | None:
    """torchrun's four variables as integers, or ``None`` when this process was not started by it."""
    if not all(name in os.environ for name in TORCHRUN_ENV):
        return None
    values = {}
    for name in TORCHRUN_ENV:
        try:
            values[name] = int(os.environ[name])
        except ValueError:
            raise ValueError(f"the environment variable {name} must be a whole number (torchrun sets it); "
                             f"got {os.environ[name]!r}") from None
    return values


def _gpus_for(local_world_size: int) -> bool:
    """True when every process on this machine can have a GPU of its own (NCCL refuses two
    ranks on one GPU)."""
    return torch.cuda.is_available() and torch.cuda.device_count() >= local_world_size


def init_process_group(*, backend: str = "auto", timeout_s: float = 60.0) -> Context:
    """Join the process group ``torchrun`` set up, and return this process's :class:`Context`.

    ``backend="auto"`` takes NCCL, with device ``cuda:LOCAL_RANK``, when this machine has a GPU
    for each of its processes, and gloo on the CPU otherwise. ``timeout_s`` (seconds) bounds
    how long a collective operation waits for the other processes before failing. Without
    torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) no
    group is formed: the context is a single process (world size 1, backend ``None``) on
    :func:`medlab.runtime.choose_device`'s ``"auto"`` device. Wraps
    :func:`torch.distributed.init_process_group`.

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    timeout_s = arguments.number(timeout_s, "timeout_s", low=0.0, low_open=True)
    env = _torchrun_environment()
    if env is None:
        return Context(rank=0, world_size=1, local_rank=0, device=choose_device("auto"), backend=None)
    local_rank, local_world = env["LOCAL_RANK"], env["LOCAL_WORLD_SIZE"]
    if backend == "auto":
        backend = "nccl" if _gpus_for(local_world) else "gloo"
    if backend == "nccl":
        if not _gpus_for(local_world):
            raise RuntimeError(f"backend='nccl' needs one CUDA GPU per process: {local_world} processes on this "
                               f"machine, {torch.cuda.device_count() if torch.cuda.is_available() else 0} GPU(s). "
                               "Use backend='auto' or 'gloo', or start fewer processes.")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group(backend=backend, rank=env["RANK"], world_size=env["WORLD_SIZE"],
                            timeout=timedelta(seconds=timeout_s))
    return Context(rank=env["RANK"], world_size=env["WORLD_SIZE"], local_rank=local_rank, device=device,
                   backend=backend)


def shard_loader(dataset: Dataset, *, batch_size: int, context: Context, seed: int, shuffle: bool = True,
                 **loader_kwargs) -> DataLoader:
    """A ``DataLoader`` over this process's share of ``dataset``, ``batch_size`` samples a step.

    ``batch_size`` is per process: one optimiser step sees ``batch_size × world_size`` samples
    (the global batch). PyTorch's ``DistributedSampler`` draws one permutation of the indices
    from ``seed`` and the epoch (the same in every process; :func:`medlab.train.fit` calls its
    ``set_epoch``), and rank ``r`` takes ``indices[r::world_size]``: its ``j``-th sample is
    position ``r + world_size·j`` of the permutation. Its ``k``-th batch has ``j`` from
    ``k·batch_size`` to ``(k+1)·batch_size − 1``, so the ``k``-th batches of all ranks together
    hold positions ``k·B … (k+1)·B − 1``, with ``B = batch_size × world_size``: the ``k``-th
    batch of a single process (world size 1, the same permutation) with batch size ``B``. This
    holds when ``len(dataset)`` is divisible by the global batch; otherwise the sampler pads
    the shares to equal length by repeating indices, and the last batches differ. ``loader_kwargs`` go to the ``DataLoader`` (``num_workers``, ``collate_fn``, ...).

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    batch_size = arguments.integer(batch_size, "batch_size", minimum=1)
    seed = arguments.integer(seed, "seed", minimum=0)
    taken = sorted({"sampler", "batch_sampler"} & set(loader_kwargs))
    if taken:
        raise ValueError(f"shard_loader chooses the sampler itself; do not pass {taken}")
    sampler = DistributedSampler(dataset, num_replicas=context.world_size, rank=context.rank, shuffle=shuffle,
                                 seed=seed, drop_last=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **loader_kwargs)


def wrap(model: torch.nn.Module, *, context: Context) -> torch.nn.Module:
    """``model`` on ``context.device``, in ``DistributedDataParallel`` when there is more than
    one process (on the GPU of this process under NCCL); the model itself for a single process.

    On CUDA the weights take the ``channels_last`` layout :func:`medlab.train.fit` uses there,
    before DDP lays out its gradient buckets.

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    from medlab.train import channels_last_applies

    model.to(context.device)
    if context.device.type == "cuda" and channels_last_applies(model):
        model.to(memory_format=torch.channels_last)
    if context.world_size == 1:
        return model
    if not dist.is_initialized():
        raise RuntimeError(f"wrap: the context has {context.world_size} processes but no process group exists; "
                           "get the context from init_process_group() in a process torchrun started")
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a ``DistributedDataParallel`` (what to save or evaluate), else ``model``.

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    return model.module if isinstance(model, DistributedDataParallel) else model


def destroy_process_group() -> None:
    """Leave the process group, if this process is in one (safe to call when it is not).

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _stop(process: subprocess.Popen) -> None:
    """Kill ``process`` and every process it started, and reap it. (torchrun starts each worker
    in a session of its own, so killing torchrun's process group alone would leave them running.)"""
    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for child in tree:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # Windows has no process groups of this kind
            process.kill()
    except ProcessLookupError:
        pass
    psutil.wait_procs(tree, timeout=10)
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _first_failure(log_dir: Path) -> str | None:
    """``" (local rank N):"`` and the last 15 lines of the error output of the process that
    failed first (whose ``stderr.log`` under torchrun's ``log_dir`` was last written earliest),
    or ``None`` when no process wrote any."""
    logs = [(path.stat().st_mtime, path) for path in Path(log_dir).rglob("stderr.log") if path.stat().st_size]
    if not logs:
        return None
    path = min(logs)[1]
    lines = path.read_text(errors="replace").strip().splitlines()
    return f" (local rank {path.parent.name}):\n" + "\n".join(lines[-15:])


def launch(module: str, args: Sequence[object] = (), *, nproc: int, timeout_s: float,
           env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m module args...`` in ``nproc`` processes under ``torchrun`` on this machine;
    return the finished process, its output captured as text.

    Each process gets one torch thread (``OMP_NUM_THREADS=1``, ``MEDLAB_NUM_THREADS=1``) unless
    ``env`` (added to this process's environment) says otherwise. A non-zero exit raises
    ``RuntimeError`` quoting the last lines of the error output of the process that failed
    first (torchrun keeps each process's error output apart, ``--redirects 2 --tee 2``, and
    prefixes its lines with the process's rank in ``stderr``); a run longer than ``timeout_s``
    seconds is killed, with every process it started, and raises ``TimeoutError``, so a hang
    fails rather than blocks.

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    nproc = arguments.integer(nproc, "nproc", minimum=1)
    timeout_s = arguments.number(timeout_s, "timeout_s", low=0.0, low_open=True)
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "MEDLAB_NUM_THREADS": "1", **(env or {})}
    with tempfile.TemporaryDirectory(prefix="medlab-torchrun-") as log_dir:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   f"--log-dir={log_dir}", "--redirects=2", "--tee=2", "-m", module, *map(str, args)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=child_env, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise TimeoutError(f"{module} in {nproc} process(es) under torchrun ran past timeout_s={timeout_s:g} s "
                               "and was stopped") from None
        except BaseException:  # Ctrl-C in a notebook: leave no processes behind
            _stop(process)
            raise
        if process.returncode != 0:
            tail = _first_failure(log_dir) or ":\n" + "\n".join(stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{module} in {nproc} process(es) under torchrun failed (exit status "
                               f"{process.returncode}); the end of its error output{tail}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
