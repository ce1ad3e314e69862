"""Distributed data parallelism: sharding, the process group, torchrun from Python, and the
check that two processes train to the same weights as one process with the combined batch."""

import os
import textwrap
import time

import psutil
import pytest
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from medlab.ddp_train import train
from medlab.distributed import (TORCHRUN_ENV, Context, destroy_process_group, init_process_group, launch,
                                shard_loader, unwrap, wrap)
from medlab.models import small_cnn
from medlab.runtime import seed_everything
from medlab.train import fit

CPU = torch.device("cpu")
SMALL = {"images": 64, "size": 32, "global_batch": 16, "epochs": 2, "val_images": 32, "seed": 0}


def context(rank, world_size):
    return Context(rank=rank, world_size=world_size, local_rank=rank, device=CPU, backend="gloo")


def batches(loader):
    return [batch[0].tolist() for batch in loader]


def test_without_torchrun_a_single_process_and_no_group(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    ctx = init_process_group()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.backend, ctx.is_main) == (0, 1, 0, None, True)
    assert not torch.distributed.is_initialized()
    model = torch.nn.Linear(2, 1)
    assert wrap(model, context=context(0, 1)) is model and unwrap(model) is model
    destroy_process_group()  # no group: nothing to do
    with pytest.raises(ValueError, match="backend must be one of"):
        init_process_group(backend="mpi")
    with pytest.raises(ValueError, match="timeout_s must be a number > 0"):
        init_process_group(timeout_s=0)
    with pytest.raises(RuntimeError, match="no process group exists"):
        wrap(model, context=context(0, 2))


def test_the_ranks_share_out_the_single_process_batches():
    dataset = TensorDataset(torch.arange(48))
    ranks = [shard_loader(dataset, batch_size=8, context=context(r, 2), seed=3) for r in (0, 1)]
    single = shard_loader(dataset, batch_size=16, context=context(0, 1), seed=3)
    for epoch in (0, 1):
        for loader in (*ranks, single):
            loader.sampler.set_epoch(epoch)
        shares = [set(sum(batches(loader), [])) for loader in ranks]
        assert not shares[0] & shares[1] and shares[0] | shares[1] == set(range(48))
        together = [set(a) | set(b) for a, b in zip(*map(batches, ranks))]
        assert together == [set(batch) for batch in batches(single)]
    assert batches(single) != batches(shard_loader(dataset, batch_size=16, context=context(0, 1), seed=3))
    with pytest.raises(ValueError, match="chooses the sampler"):
        shard_loader(dataset, batch_size=8, context=context(0, 2), seed=3, sampler=None)


class RecordingSampler(Sampler):
    def __init__(self, n):
        self.n, self.epochs = n, []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_fit_tells_the_sampler_each_epoch():
    x, y = torch.randn(16, 3), torch.rand(16, 1)
    sampler = RecordingSampler(16)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, sampler=sampler)
    model = torch.nn.Linear(3, 1)
    fit(model, loader, loader, loss_fn=torch.nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), 0.1),
        device=CPU, epochs=3, progress=False)
    assert sampler.epochs == [0, 1, 2]


def _max_difference(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.slow
def test_two_processes_train_to_the_weights_of_one(tmp_path):
    args = [f"--{key.replace('_', '-')}={value}" for key, value in SMALL.items()]
    launch("medlab.ddp_train", ["--out", tmp_path / "ddp.pt", *args], nproc=2, timeout_s=180,
           env={"CUDA_VISIBLE_DEVICES": ""})
    train(out=tmp_path / "single.pt", context=Context(0, 1, 0, CPU, None), **SMALL)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = torch.load(tmp_path / "single.pt", weights_only=True)
    assert (ddp["world_size"], single["world_size"]) == (2, 1) and ddp["images_per_second"] > 0
    seed_everything(SMALL["seed"])
    initial = small_cnn(widths=(8, 16, 32), batch_norm=False).state_dict()
    # The two runs add the same float32 gradients in another order (two half-batch means,
    # averaged): a few units of float32 rounding (~1e-7) per step, far below what training moves.
    assert _max_difference(ddp["state_dict"], single["state_dict"]) < 1e-5
    assert _max_difference(initial, single["state_dict"]) > 1e-3
    assert ddp["history"]["val_loss"] == pytest.approx(single["history"]["val_loss"], abs=1e-5)


def _module(tmp_path, name, source):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_a_failing_process_is_quoted(tmp_path):
    env = _module(tmp_path, "failing_rank", """
        import os
        if os.environ["RANK"] == "1":
            raise ValueError("rank 1 cannot read its shard")
    """)
    with pytest.raises(RuntimeError, match=r"failing_rank in 2 process\(es\)(.|\n)*"
                                           r"ValueError: rank 1 cannot read its shard"):
        launch("failing_rank", nproc=2, timeout_s=120, env=env)


@pytest.mark.slow
def test_a_hanging_run_is_stopped_with_all_its_processes(tmp_path):
    env = _module(tmp_path, "hanging_rank", """
        import os, time
        (open(os.environ["PID_DIR"] + "/" + os.environ["RANK"], "w")).write(str(os.getpid()))
        time.sleep(600)
    """)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="ran past timeout_s=15 s"):
        launch("hanging_rank", nproc=2, timeout_s=15, env={**env, "PID_DIR": str(tmp_path)})
    assert time.monotonic() - started < 15 + 10
    pids = [int((tmp_path / rank).read_text()) for rank in ("0", "1")]
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_launch_checks_its_arguments():
    with pytest.raises(ValueError, match="nproc must be an integer >= 1"):
        launch("medlab.ddp_train", nproc=0, timeout_s=10)
    with pytest.raises(ValueError, match="timeout_s must be a number > 0"):
        launch("medlab.ddp_train", nproc=1, timeout_s=0)
