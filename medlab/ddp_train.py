"""Train a small CNN on synthetic chest radiographs with distributed data parallelism.

Run it in two processes on a laptop's CPU cores (gloo) or one per GPU (NCCL), unchanged::

    python -m torch.distributed.run --standalone --nproc_per_node=2 -m medlab.ddp_train --out ddp.pt

or alone, as one process: ``python -m medlab.ddp_train --out single.pt``. Every process seeds
alike, builds the same data and the same initial weights, and trains on its share of each
global batch (:func:`medlab.distributed.shard_loader`); ``DistributedDataParallel`` averages
the gradients, so with the same ``--global-batch`` the weights end as a single process's do,
up to float32 rounding. The model has no batch normalisation: each process would normalise
with the statistics of its own share, not of the global batch. Rank 0 writes the checkpoint
(:func:`medlab.train.save_checkpoint`) with ``world_size``, ``seconds`` (wall time of
training, validation included), ``images_per_second`` (training images of all processes per
second) and ``history`` (:class:`medlab.train.History` as a dictionary; its training losses
are those of rank 0's shares, its validation losses those of the whole validation set).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from medlab import arguments
from medlab.distributed import Context, destroy_process_group, init_process_group, shard_loader, unwrap, wrap
from medlab.models import small_cnn
from medlab.phantoms import chest_radiographs
from medlab.runtime import seed_everything, set_threads
from medlab.train import fit, save_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(prog="python -m medlab.ddp_train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (rank 0)")
    parser.add_argument("--images", type=int, default=512, help="training radiographs (a multiple of --global-batch)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--global-batch", type=int, default=32, help="samples per optimiser step, all processes")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-images", type=int, default=128, help="validation radiographs (every process)")
    return parser.parse_args(argv)


def radiograph_dataset(n: int, *, size: int, seed: int) -> TensorDataset:
    """``(image, label)`` pairs of ``n`` cohort radiographs: ``(1, size, size)`` float32 in
    [0, 1] and ``(1,)`` float32, 1 = pneumonia-like opacity (a target for ``BCEWithLogitsLoss``)."""
    batch = chest_radiographs(n, seed=seed, size=size)
    labels = torch.as_tensor(batch.labels, dtype=torch.float32)[:, None]
    return TensorDataset(torch.as_tensor(batch.images, dtype=torch.float32), labels)


def _per_process_batch(images: int, global_batch: int, world_size: int) -> int:
    if global_batch % world_size:
        raise ValueError(f"--global-batch {global_batch} must be divisible by the number of processes ({world_size})")
    if images % global_batch:
        raise ValueError(f"--images {images} must be divisible by --global-batch {global_batch}, so that every "
                         "step has a full batch")
    return global_batch // world_size


def train(*, out: str | Path, context: Context, images: int = 512, size: int = 32, global_batch: int = 32,
          epochs: int = 2, lr: float = 0.05, seed: int = 0, val_images: int = 128) -> dict:
    """Train ``small_cnn(widths=(8, 16, 32), batch_norm=False)`` with SGD on this process's
    shard; rank 0 writes the checkpoint to ``out``. Returns the checkpoint's extra values
    (``world_size``, ``seconds``, ``images_per_second``, ``history``), in every process.

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    images = arguments.integer(images, "images", minimum=1)
    global_batch = arguments.integer(global_batch, "global_batch", minimum=1)
    epochs = arguments.integer(epochs, "epochs", minimum=1)
    batch_size = _per_process_batch(images, global_batch, context.world_size)
    seed_everything(seed)
    model = wrap(small_cnn(widths=(8, 16, 32), batch_norm=False), context=context)
    train_loader = shard_loader(radiograph_dataset(images, size=size, seed=seed), batch_size=batch_size,
                                context=context, seed=seed)
    val_loader = DataLoader(radiograph_dataset(val_images, size=size, seed=seed + 1), batch_size=global_batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    started = time.perf_counter()
    history = fit(model, train_loader, val_loader, loss_fn=torch.nn.BCEWithLogitsLoss(), optimizer=optimizer,
                  device=context.device, epochs=epochs, restore_best=False, progress=False, amp=False)
    seconds = time.perf_counter() - started
    extra = {"world_size": context.world_size, "seconds": seconds, "images_per_second": images * epochs / seconds,
             "history": dataclasses.asdict(history)}
    if context.is_main:
        save_checkpoint(unwrap(model), out, **extra)
        print(f"{context.world_size} process(es), {context.backend or 'no process group'} on {context.device}: "
              f"{seconds:.1f} s, {extra['images_per_second']:.0f} images/s -> {out}")
    return extra


def main(argv: list[str] | None = None) -> int:
    """The command line: parse ``argv``, join the process group, train, leave the group.

    Taught in lab 10, section 5 (Distributed data-parallel training).
    """
    args = parse_args(argv)
    set_threads()
    context = init_process_group()
    try:
        train(out=args.out, context=context, images=args.images, size=args.size, global_batch=args.global_batch,
              epochs=args.epochs, lr=args.lr, seed=args.seed, val_images=args.val_images)
    finally:
        destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
