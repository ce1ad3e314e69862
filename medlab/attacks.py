"""Adversarial examples under an L∞ budget: FGSM, PGD, and a wrapper for IBM ART's attacks.

An attack moves each pixel of an image by at most ``eps`` (in the image's own units: radiograph
intensities in [0, 1]) to raise the classifier's loss on the true label, and keeps the result in
the valid range. Models map ``(N, C, H, W)`` images to ``(N, 1)`` logits of the positive class;
labels are ``(N,)`` 0/1.

>>> import torch
>>> from medlab.models import small_cnn
>>> x, y = torch.rand(4, 1, 16, 16), torch.tensor([0.0, 1.0, 0.0, 1.0])
>>> adv = pgd(small_cnn(widths=(4, 8)).eval(), x, y, eps=4 / 255, steps=3)
>>> bool((adv - x).abs().max() <= 4 / 255 + 1e-6), bool(adv.min() >= 0 and adv.max() <= 1)
(True, True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from medlab import arguments


def _checked(images: Any, labels: Any, eps: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, C, H, W); got {getattr(images, 'shape', type(images))}")
    labels = torch.as_tensor(labels, dtype=images.dtype, device=images.device).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return images.detach(), labels, arguments.number(eps, "eps", low=0.0)


def _loss_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, images: torch.Tensor, labels: Any, *, eps: float,
         value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of ``eps`` along the sign of
    the loss gradient, clipped to ``value_range``. Returns the adversarial images, same shape.

    The model should be in evaluation mode (batch norm and dropout as at test time).

    Taught in lab 08, section 6 (Adversarial examples).
    """
    x, y, eps = _checked(images, labels, eps)
    return (x + eps * _loss_gradient(model, x, y).sign()).clamp(*value_range).detach()


def pgd(model: nn.Module, images: torch.Tensor, labels: Any, *, eps: float, steps: int = 10,
        step_size: float | None = None, random_start: bool = False, generator: torch.Generator | None = None,
        value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Projected gradient descent under an L∞ budget (Madry et al. 2018): ``steps`` signed
    gradient steps of ``step_size`` (default ``2.5 · eps / steps``), each projected back into the
    ``eps``-box around the image and into ``value_range``. ``random_start`` begins at a uniform
    point of the box (drawn with ``generator``). Returns the adversarial images, same shape.

    Taught in lab 08, section 6 (Adversarial examples).
    """
    x, y, eps = _checked(images, labels, eps)
    steps = arguments.integer(steps, "steps", minimum=1)
    alpha = 2.5 * eps / steps if step_size is None else arguments.number(step_size, "step_size", low=0.0)
    adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        adv = (x + (2 * noise - 1) * eps).clamp(*value_range)
    for _ in range(steps):
        adv = adv + alpha * _loss_gradient(model, adv, y).sign()
        adv = torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp(*value_range).detach()
    return adv


class TwoLogits(nn.Module):
    """A one-logit binary classifier seen as a two-class one: ``z ↦ (0, z)``, so that softmax
    cross-entropy over the two equals binary cross-entropy on ``z`` (what ART's classifiers
    expect).

    Taught in lab 08, section 6 (Adversarial examples).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.model(images)
        return torch.cat([torch.zeros_like(z), z], dim=1)


def art_classifier(model: nn.Module, *, input_shape: tuple[int, ...], device: torch.device,
                   value_range: tuple[float, float] = (0.0, 1.0)) -> Any:
    """``model`` (one logit) as an IBM ART ``PyTorchClassifier`` of two classes, for ART's
    attacks (``art.attacks.evasion``). ``input_shape`` is one image's ``(C, H, W)``.

    Taught in lab 08, section 6 (Adversarial examples).
    """
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=TwoLogits(model).eval(), loss=nn.CrossEntropyLoss(), input_shape=tuple(input_shape),
                             nb_classes=2, clip_values=tuple(value_range), device_type="gpu" if device.type == "cuda" else "cpu")
