"""The training loop the labs use after lab 03 has written it out once.

:func:`fit` runs epochs of :func:`train_one_epoch` and :func:`evaluate`, keeps a
:class:`History`, shows a progress bar, stops early when the validation score stops improving,
and restores the best weights. Nothing is hidden: each step is the plain PyTorch loop
(forward, loss, backward, step). On CUDA it adds what makes GPUs fast — mixed precision and the
``channels_last`` memory layout — and nothing else changes.

Batches are dictionaries with ``"image"`` and ``"label"`` (MONAI's keys, as the datasets of
:mod:`medlab.realdata` and the labs' MONAI datasets serve them), or ``(inputs, targets)`` pairs
(a ``TensorDataset``'s).
Checkpoints are written atomically and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medlab.errors import reason

Metric = Callable[[np.ndarray, np.ndarray], float]
"""``metric(targets, scores) -> float``, higher is better (e.g. ``sklearn.metrics.roc_auc_score``)."""


@dataclass
class History:
    """Per-epoch training record. ``best_epoch`` counts from 0; ``val_metric`` is empty when no
    metric was given.

    Taught in lab 03, section 3 (The training loop).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def best(self) -> float:
        """The validation score at the best epoch (metric if any, else loss)."""
        if self.best_epoch < 0:
            raise ValueError("no epoch has been scored yet: History.best exists once fit() has run an epoch")
        values = self.val_metric or self.val_loss
        return values[self.best_epoch]


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of a dictionary batch with MONAI's keys or of a pair."""
    if isinstance(batch, dict):
        if "image" not in batch or "label" not in batch:
            hint = " (name the targets 'label', as MONAI does, not 'mask')" if "mask" in batch else ""
            raise KeyError(f"a dictionary batch needs 'image' and 'label'{hint}; it has {sorted(batch)}")
        return batch["image"], batch["label"]
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(
            "a batch must be a pair (inputs, targets) or a dictionary with 'image' and 'label'; got "
            + (f"a {type(batch).__name__} of {len(batch)} items" if isinstance(batch, (tuple, list))
               else f"a {type(batch).__name__}")
        )
    inputs, targets = batch
    return inputs, targets


def _check_finite(value: float | torch.Tensor, what: str, hint: str) -> None:
    number = float(value.detach()) if torch.is_tensor(value) else float(value)
    if not math.isfinite(number):
        raise FloatingPointError(f"{what} is {number}: {hint}")


def _to_device(inputs: torch.Tensor, targets: torch.Tensor, device: torch.device):
    inputs = torch.as_tensor(inputs).to(device, non_blocking=True)
    if device.type == "cuda" and inputs.ndim == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, torch.as_tensor(targets).to(device, non_blocking=True)


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The reduced precision :func:`fit`'s ``amp`` computes in on ``device``: float16 on CUDA
    (with a gradient scaler, since float16 underflows small gradients), bfloat16 elsewhere
    (float32's exponent range in 16 bits, so no scaler is needed; fast on CPUs with AVX-512
    BF16 or AMX, emulated and slower on others).

    Taught in lab 10, section 3 (Mixed precision and memory layout).
    """
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return torch.autocast(device_type="cpu", enabled=False)
    return torch.autocast(device_type=device.type, dtype=autocast_dtype(device))


def train_one_epoch(model: torch.nn.Module, loader: Iterable, *, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                    device: torch.device | str, regularizer: Callable[[torch.nn.Module], torch.Tensor] | None = None,
                    augment: Callable[[torch.Tensor], torch.Tensor] | None = None, scheduler: Any | None = None,
                    amp: bool = False, scaler: torch.amp.GradScaler | None = None) -> float:
    """One pass over ``loader``: forward, loss (+ ``regularizer(model)``), backward, step.

    ``augment``, if given, maps each batch of inputs (already on ``device``) to new inputs of
    the same shape before the forward pass (random augmentation, drawn afresh every batch).
    ``scheduler``, if given, steps after every optimiser step (a per-batch schedule such as
    ``OneCycleLR``). Returns the mean training loss (without the regulariser) per sample.

    Taught in lab 03, section 3 (The training loop).
    """
    device = torch.device(device)
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        inputs, targets = _to_device(*_unpack(batch), device)
        if augment is not None:
            with torch.no_grad():
                inputs = augment(inputs)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, amp):
            loss = loss_fn(model(inputs), targets)
        objective = loss + regularizer(model) if regularizer is not None else loss
        _check_finite(objective, "the training loss", "lower the learning rate, or check the inputs and "
                      "targets for NaN; the weights are those before this step")
        if scaler is not None:
            scaler.scale(objective).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            objective.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(inputs)
        count += len(inputs)
    return total / max(count, 1)


@torch.no_grad()
def _run(model, loader, device, *, amp=False, loss_fn=None):
    """Outputs and targets over ``loader`` (CPU tensors) and the mean loss if ``loss_fn`` is given."""
    device = torch.device(device)
    model.eval()
    outputs, targets, total, count = [], [], 0.0, 0
    for batch in loader:
        inputs, target = _to_device(*_unpack(batch), device)
        with _autocast(device, amp):
            out = model(inputs)
        if loss_fn is not None:
            total += float(loss_fn(out.float(), target)) * len(inputs)
            count += len(inputs)
        outputs.append(out.float().cpu())
        targets.append(target.cpu())
    return torch.cat(outputs), torch.cat(targets), (total / max(count, 1) if loss_fn is not None else None)


def predict(model: torch.nn.Module, loader: Iterable, *, device: torch.device | str, amp: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs and targets over ``loader``, as NumPy arrays (outputs squeezed to ``(N,)``
    for single-output models).

    Taught in lab 03, section 3 (The training loop).
    """
    outputs, targets, _ = _run(model, loader, device, amp=amp)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    return outputs.numpy(), targets.numpy()


def evaluate(model: torch.nn.Module, loader: Iterable, *, loss_fn: Callable, device: torch.device | str,
             metric: Metric | None = None, score: Callable[[torch.Tensor], torch.Tensor] | None = None,
             amp: bool = False) -> tuple[float, float | None]:
    """Mean loss over ``loader`` and, if given, ``metric(targets, score(outputs))``.

    ``score`` turns the outputs ``(N, C)`` into what the metric ranks (default: a single output
    column as it is, e.g. a logit for an AUC; use a softmax column for multi-class outputs)."""
    outputs, targets, loss = _run(model, loader, device, amp=amp, loss_fn=loss_fn)
    value = None
    if metric is not None:
        scores = score(outputs) if score is not None else (outputs[:, 0] if outputs.ndim == 2 and outputs.shape[1] == 1 else outputs)
        value = float(metric(targets.numpy(), scores.numpy()))
    return loss, value


def channels_last_applies(model: torch.nn.Module) -> bool:
    """``channels_last`` is a layout for 4D tensors: True unless the model has 3D (5D-weight) layers."""
    return all(p.dim() != 5 for p in model.parameters())


def _secondary_rank() -> bool:
    """True in a process of a :mod:`torch.distributed` group other than rank 0."""
    distributed = torch.distributed
    return distributed.is_available() and distributed.is_initialized() and distributed.get_rank() != 0


def fit(
    model: torch.nn.Module,
    train_loader: Iterable,
    val_loader: Iterable,
    *,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    epochs: int,
    metric: Metric | None = None,
    score: Callable[[torch.Tensor], torch.Tensor] | None = None,
    patience: int | None = None,
    regularizer: Callable[[torch.nn.Module], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scheduler: Any | None = None,
    scheduler_interval: str = "epoch",
    amp: bool | str = "auto",
    restore_best: bool = True,
    progress: bool = True,
    desc: str = "epochs",
) -> History:
    """Train ``model`` for up to ``epochs`` epochs; return its :class:`History`.

    After each epoch the model is evaluated on ``val_loader``: with ``metric`` the best epoch is
    the one with the highest metric, otherwise the lowest validation loss. With ``patience``,
    training stops after that many epochs without improvement (early stopping), and with
    ``restore_best`` the model ends with the best epoch's weights. ``amp="auto"`` uses mixed
    precision on CUDA only; ``amp=True`` uses it on any device (see :func:`autocast_dtype`).
    ``augment`` transforms each training batch's inputs (see :func:`train_one_epoch`; never the
    validation batches). ``scheduler.step()`` runs once per
    epoch, or after every batch with ``scheduler_interval="batch"`` (``OneCycleLR`` and other
    schedules counted in optimiser steps). Each epoch starts with
    ``train_loader.sampler.set_epoch(epoch)`` where the sampler has it (a ``DistributedSampler``
    reshuffles per epoch), and in a :mod:`torch.distributed` process group only rank 0 shows
    the progress bar.

    Taught in lab 03, section 3 (The training loop).
    """
    from tqdm.auto import tqdm

    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
    per_batch = scheduler if scheduler_interval == "batch" else None
    device = torch.device(device)  # "cpu", "cuda:0" or a torch.device
    use_amp = (device.type == "cuda") if amp == "auto" else bool(amp)
    scaler = torch.amp.GradScaler("cuda") if (use_amp and device.type == "cuda") else None
    model.to(device)
    if device.type == "cuda" and channels_last_applies(model):
        model.to(memory_format=torch.channels_last)
    history, best_value, best_state = History(), -math.inf, None
    sampler = getattr(train_loader, "sampler", None)
    bar = tqdm(range(epochs), desc=desc, disable=not progress or _secondary_rank(), leave=False)
    for epoch in bar:
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        history.train_loss.append(train_one_epoch(model, train_loader, loss_fn=loss_fn, optimizer=optimizer, device=device,
                                                  regularizer=regularizer, augment=augment, scheduler=per_batch,
                                                  amp=use_amp, scaler=scaler))
        val_loss, value = evaluate(model, val_loader, loss_fn=loss_fn, device=device, metric=metric, score=score, amp=use_amp)
        _check_finite(val_loss, f"the validation loss after epoch {epoch + 1}",
                      "the model's outputs overflowed; lower the learning rate")
        if value is not None:
            _check_finite(value, f"the validation metric after epoch {epoch + 1}",
                          "the metric is undefined on this validation set (an AUC needs both classes, "
                          "for example) or the outputs are not finite; check the validation data")
        history.val_loss.append(val_loss)
        if value is not None:
            history.val_metric.append(value)
        current = value if value is not None else -val_loss
        if current > best_value:
            best_value, history.best_epoch = current, epoch
            if restore_best:
                best_state = copy.deepcopy(model.state_dict())
        if scheduler is not None and per_batch is None:
            scheduler.step()
        bar.set_postfix(train=f"{history.train_loss[-1]:.3f}", val=f"{val_loss:.3f}",
                        **({"metric": f"{value:.3f}"} if value is not None else {}))
        if patience is not None and epoch - history.best_epoch >= patience:
            history.stopped_early = epoch < epochs - 1
            break
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, **extra: Any) -> Path:
    """Write ``model``'s weights (and plain ``extra`` values) to ``path`` atomically.

    Taught in lab 04, section 2 (Where pretrained weights come from — offline).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save({"state_dict": model.state_dict(), **extra}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load weights written by :func:`save_checkpoint` into ``model`` (tensors and plain values
    only: ``weights_only=True``); return the extra values.

    Taught in lab 04, section 2 (Where pretrained weights come from — offline).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for damaged files
        raise ValueError(
            f"{path} is not a readable checkpoint ({reason(exc)}); delete it "
            "and train again"
        ) from exc
    if not isinstance(data, dict) or "state_dict" not in data:
        raise ValueError(f"{path} was not written by save_checkpoint (no 'state_dict'); delete it and train again")
    try:
        model.load_state_dict(data.pop("state_dict"))
    except RuntimeError as exc:
        raise ValueError(
            f"the weights in {path} do not fit this {type(model).__name__} ({reason(exc)}): they were "
            "saved from another architecture; delete the file and train again"
        ) from exc
    return data



def code_fingerprint(*objects: Any) -> str:
    """A short hash of the source code of ``objects`` (functions, classes, modules).

    Put it in a checkpoint's recipe with the code that trains the weights, so that weights made
    by older code are never reused without notice: a changed line gives another fingerprint.

    >>> code_fingerprint(code_fingerprint) == code_fingerprint(code_fingerprint)
    True

    Taught in lab 04, section 2 (Where pretrained weights come from — offline).
    """
    if not objects:
        raise ValueError("code_fingerprint() needs at least one function, class or module")
    digest = hashlib.sha256()
    for obj in objects:
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError) as exc:
            raise ValueError(f"cannot read the source code of {obj!r}: {exc}") from None
        digest.update(source.encode("utf-8"))
    return digest.hexdigest()[:16]
