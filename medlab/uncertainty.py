"""Predictive uncertainty of a binary classifier: several probabilities per case (MC dropout,
an ensemble, test-time augmentation), what they say about uncertainty, and selective prediction
(refer the least certain cases to a human).

*Samples* are ``(K, N)`` positive-class probabilities: ``K`` draws (passes, members, views) for
each of ``N`` cases. Entropies are in nats (at most ``ln 2`` for one binary prediction).

>>> import numpy as np
>>> samples = np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.9]])
>>> predictive_entropy(samples).round(3), mutual_information(samples).round(3)
(array([0.325, 0.693, 0.693]), array([0.   , 0.   , 0.368]))
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from medlab import arguments
from medlab.metrics.classification import check_binary


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def _samples(samples: Any) -> np.ndarray:
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 2 or 0 in s.shape:
        raise ValueError(f"samples must be (K, N) probabilities, K draws for N cases; got shape {s.shape}")
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ValueError("samples must be probabilities in [0, 1]; apply a sigmoid to logits first")
    return s


def predictive_entropy(samples: Any) -> np.ndarray:
    """The entropy of the mean prediction, ``(N,)`` nats: total uncertainty.

    Taught in lab 08, section 8 (Uncertainty: does the model know when it does not know?).
    """
    return _binary_entropy(_samples(samples).mean(axis=0))


def mutual_information(samples: Any) -> np.ndarray:
    """Entropy of the mean minus the mean entropy, ``(N,)`` nats: how much the draws disagree
    (the model's own, epistemic, uncertainty; 0 when all draws agree).

    Taught in lab 08, section 8 (Uncertainty: does the model know when it does not know?).
    """
    s = _samples(samples)
    return np.clip(_binary_entropy(s.mean(axis=0)) - _binary_entropy(s).mean(axis=0), 0.0, None)


@torch.no_grad()
def _probabilities(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    out = [torch.sigmoid(model(images[i:i + batch_size].to(device))[:, 0]).float().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def ensemble_probabilities(models: Sequence[nn.Module], images: torch.Tensor, *, device: torch.device,
                           batch_size: int = 256) -> np.ndarray:
    """Each member's positive probability for each image, in evaluation mode: ``(M, N)``.

    Taught in lab 08, section 8 (Uncertainty: does the model know when it does not know?).
    """
    if not models:
        raise ValueError("an ensemble needs at least one model")
    return np.stack([_probabilities(m.eval(), images, device, batch_size).numpy() for m in models])


def mc_dropout_probabilities(model: nn.Module, images: torch.Tensor, *, passes: int = 20, seed: int = 0,
                             device: torch.device, batch_size: int = 256) -> np.ndarray:
    """``passes`` predictions of each image with dropout left on (Gal & Ghahramani 2016) and
    everything else (batch norm) in evaluation mode: ``(passes, N)``. The model is back in
    evaluation mode afterwards.

    Taught in lab 08, section 8 (Uncertainty: does the model know when it does not know?).
    """
    passes = arguments.integer(passes, "passes", minimum=1)
    dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if not dropouts:
        raise ValueError("the model has no dropout layer, so MC dropout would repeat one prediction")
    model.eval()
    for m in dropouts:
        m.train()
    try:
        torch.manual_seed(seed)
        return np.stack([_probabilities(model, images, device, batch_size).numpy() for _ in range(passes)])
    finally:
        model.eval()


def tta_probabilities(model: nn.Module, images: torch.Tensor, *, views: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                      device: torch.device, batch_size: int = 256) -> np.ndarray:
    """The model's probability for each image under each of ``views`` (functions of a batch to
    a batch, e.g. flips and small shifts): ``(len(views), N)``, test-time augmentation.

    Taught in lab 08, section 8 (Uncertainty: does the model know when it does not know?).
    """
    if not views:
        raise ValueError("test-time augmentation needs at least one view")
    model.eval()
    return np.stack([_probabilities(model, view(images), device, batch_size).numpy() for view in views])


def accuracy_coverage(y_true: Any, probability: Any, uncertainty: Any, *, threshold: float = 0.5
                      ) -> dict[str, np.ndarray]:
    """Selective prediction: keep the most certain cases, refer the rest. Per coverage ``k / N``
    (``k`` = 1…N most certain cases kept, ties by case order), the accuracy on the kept cases at
    ``threshold``: ``{"coverage": (N,), "accuracy": (N,)}``.

    Taught in lab 08, section 8 (Uncertainty: does the model know when it does not know?).
    """
    y, p = check_binary(y_true, probability)
    u = np.asarray(uncertainty, dtype=np.float64).reshape(-1)
    if len(u) != len(y):
        raise ValueError(f"{len(y)} cases but {len(u)} uncertainties")
    correct = ((p >= threshold).astype(int) == y)[np.argsort(u, kind="stable")]
    k = np.arange(1, len(y) + 1)
    return {"coverage": k / len(y), "accuracy": np.cumsum(correct) / k}


def selective_accuracy(y_true: Any, probability: Any, uncertainty: Any, *, coverage: float,
                       threshold: float = 0.5) -> float:
    """The accuracy on the ``coverage`` fraction of cases with the lowest uncertainty (at least
    one case), the rest referred.

    Taught in lab 08, section 8 (Uncertainty: does the model know when it does not know?).
    """
    coverage = arguments.number(coverage, "coverage", low=0.0, high=1.0, low_open=True)
    curve = accuracy_coverage(y_true, probability, uncertainty, threshold=threshold)
    keep = max(1, int(np.floor(coverage * len(curve["coverage"]) + 1e-9)))
    return float(curve["accuracy"][keep - 1])
