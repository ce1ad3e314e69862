"""What ``medlab.train.fit`` costs against a bare PyTorch training loop, on the CPU or a GPU.

    python benchmarks/fit_overhead.py                 # about a minute on 2 CPU cores
    python benchmarks/fit_overhead.py --device cuda   # the same on a GPU

Both loops train the same model (lab 03's ``small_cnn``) on the same batches of 64 × 64
radiographs, held as tensors in memory so that the loops, not the data, are timed, in float32
and the contiguous layout (``fit(amp=False)``; the bare loop does the same). ``fit`` also
evaluates on a validation batch of 128 after each epoch, as it does in the labs. Each loop runs
``--repeats`` times after a warm-up, alternating; the median throughput of each is reported in
training images per second, with their ratio. Target: ``fit`` within 5 % of the bare loop.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from medlab.models import small_cnn
from medlab.phantoms import chest_radiographs
from medlab.runtime import choose_device, seed_everything, set_threads
from medlab.train import fit


def bare_loop(model, loader, *, optimizer, loss_fn, device, epochs):
    model.to(device)
    for _ in range(epochs):
        model.train()
        for inputs, targets in loader:
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(inputs), targets).backward()
            optimizer.step()


def medlab_fit(model, loader, *, optimizer, loss_fn, device, epochs, val_loader):
    fit(model, loader, val_loader, loss_fn=loss_fn, optimizer=optimizer, device=device, epochs=epochs, amp=False,
        restore_best=False, progress=False)


def images_per_second(train, *, device, images, epochs, **options):
    model = small_cnn(widths=(16, 32, 64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train(model, optimizer=optimizer, loss_fn=torch.nn.BCEWithLogitsLoss(), device=device, epochs=epochs, **options)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images * epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads, device = set_threads(), choose_device(args.device)
    seed_everything(0)
    batch = chest_radiographs(args.images + 128, seed=0, size=64)
    x, y = torch.as_tensor(batch.images), torch.as_tensor(batch.labels, dtype=torch.float32)[:, None]
    train = DataLoader(TensorDataset(x[:args.images], y[:args.images]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(x[args.images:], y[args.images:]), batch_size=128)
    loops = {"bare loop": (bare_loop, {}), "medlab.train.fit": (medlab_fit, {"val_loader": val})}
    for loop, options in loops.values():  # warm-up: allocation, kernel choice
        images_per_second(lambda model, **kw: loop(model, train, **kw), device=device, images=args.images, epochs=1,
                          **options)
    speeds = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, (loop, options) in loops.items():
            speeds[name].append(images_per_second(lambda model, **kw: loop(model, train, **kw), device=device,
                                                  images=args.images, epochs=args.epochs, **options))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} threads)"
    print(f"{args.images} images of 64 x 64, {args.epochs} epochs, median of {args.repeats} on {device_name}:")
    median = {name: statistics.median(values) for name, values in speeds.items()}
    for name, value in median.items():
        print(f"  {name:18s} {value:8.0f} training images/s")
    print(f"  fit / bare loop: {median['medlab.train.fit'] / median['bare loop']:.3f}")


if __name__ == "__main__":
    main()
