"""Explanations of a classifier's positive output, and the checks that can fail them.

A *map* explains one image: ``(H, W)``, larger = more relevant to the model's positive logit.
Maps come from gradients, integrated gradients, guided backpropagation, Grad-CAM and Grad-CAM++
(computed here, batched; the last two agree with MONAI's) and from MONAI's occlusion sensitivity
(:func:`saliency` calls them all alike). The checks measure maps against truth: the pointing game and the share of a
map's mass inside a lesion mask (against the chance of a map that knows nothing), the rank
correlation of maps before and after the weights are randomised (Adebayo et al. 2018), and a
deletion curve (the most relevant pixels removed first).

Images ``(N, C, H, W)`` float tensors; models map them to ``(N, 1)`` logits.

>>> import torch
>>> from medlab.models import small_cnn
>>> maps = saliency(small_cnn(widths=(4, 8)), torch.rand(2, 1, 16, 16), method="gradcam", layer="1")
>>> maps.shape, maps.dtype
((2, 16, 16), dtype('float32'))
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medlab import arguments

METHODS = ("gradient", "integrated_gradients", "guided_backprop", "gradcam", "gradcam++", "occlusion")
"""The methods :func:`saliency` knows."""


def _images(images: Any) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a float tensor (N, C, H, W); got {shape}")
    return images


def _positive_logit(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out = model(images)
    if out.ndim != 2 or out.shape[1] != 1:
        raise ValueError(f"the model must give one logit per image, (N, 1); it gave {tuple(out.shape)}")
    return out[:, 0]


def input_gradient(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``|∂ logit / ∂ pixel|``, the largest over channels: ``(N, H, W)``. The plainest saliency map
    (Simonyan et al. 2014).

    Taught in lab 08, section 2 (Saliency maps).
    """
    x = _images(images).detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_positive_logit(model, x).sum(), x)
    return grad.abs().amax(dim=1)


def integrated_gradients(model: nn.Module, images: torch.Tensor, *, baseline: float = 0.0, steps: int = 32
                         ) -> torch.Tensor:
    """Integrated gradients (Sundararajan et al. 2017), summed over channels: ``(N, H, W)``.

    The gradient is averaged along the straight path from a ``baseline`` image (every pixel
    ``baseline``) to the image (``steps`` midpoints) and multiplied by ``image − baseline``. The
    attributions of an image add up to ``logit(image) − logit(baseline)`` (completeness), up to
    the error of the ``steps``-point rule.

    Taught in lab 08, section 2 (Saliency maps).
    """
    x = _images(images).detach()
    steps = arguments.integer(steps, "steps", minimum=1)
    start = torch.full_like(x, float(baseline))
    total = torch.zeros_like(x)
    for alpha in (torch.arange(steps, dtype=x.dtype) + 0.5) / steps:
        point = (start + alpha * (x - start)).requires_grad_(True)
        (grad,) = torch.autograd.grad(_positive_logit(model, point).sum(), point)
        total += grad
    return ((x - start) * total / steps).sum(dim=1)


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0)


class _GuidedReLUModule(nn.Module):
    def forward(self, x):
        return _GuidedReLU.apply(x)


def guided_backprop(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015), the largest over channels: ``(N, H, W)``.
    The gradient, but every ReLU passes back only positive gradients where its input was
    positive. Its maps look sharp, and hardly depend on the weights of the upper layers
    (Adebayo et al. 2018). ``model``'s ReLU modules are swapped for the guided ones in a copy.

    Taught in lab 08, section 4 (Sanity checks: randomised weights and labels).
    """
    guided = copy.deepcopy(model)
    for name, module in list(guided.named_modules()):
        if isinstance(module, nn.ReLU):
            parent, _, child = name.rpartition(".")
            setattr(guided.get_submodule(parent) if parent else guided, child, _GuidedReLUModule())
    x = _images(images).detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_positive_logit(guided, x).sum(), x)
    return grad.abs().amax(dim=1)


def grad_cam(model: nn.Module, images: torch.Tensor, *, layer: str, plus: bool = False) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) of the positive logit at the convolutional ``layer`` (a
    name from ``model.named_modules()``), or Grad-CAM++ (Chattopadhay et al. 2018) with ``plus``:
    ``(N, H, W)``, upsampled bilinearly to the image and scaled to [0, 1] per image.

    Grad-CAM weighs the layer's feature maps ``A_k`` by their mean gradient and keeps the positive
    part of the sum: ``ReLU(Σ_k mean(∂y/∂A_k) · A_k)``. Grad-CAM++ weighs each position's positive
    gradient of ``exp(y)`` by ``α = g² / (2g² + Σ A · g³)`` (``g = ∂y/∂A``), as MONAI's
    ``GradCAMpp`` does. Batched. MONAI's ``GradCAM`` and ``GradCAMpp`` give the same maps, but
    scale them the other way round by default (their maximum to 0).

    Taught in lab 08, section 2 (Saliency maps).
    """
    x = _images(images).detach()
    target = dict(model.named_modules()).get(layer)
    if target is None or not layer:
        raise ValueError(f"the model has no layer {layer!r}; name one of {[n for n, _ in model.named_modules() if n][:12]}")
    saved: list[torch.Tensor] = []
    handle = target.register_forward_hook(lambda module, inputs, output: saved.append(output))
    try:
        logit = _positive_logit(model, x)
    finally:
        handle.remove()
    activations = saved[0]
    (grad,) = torch.autograd.grad(logit.sum(), activations)
    if plus:
        denominator = 2 * grad.pow(2) + (activations * grad.pow(3)).sum(dim=(2, 3), keepdim=True)
        alpha = grad.pow(2) / (torch.where(denominator != 0, denominator, torch.ones_like(denominator)) + 1e-7)
        weights = (alpha * torch.relu(logit.exp()[:, None, None, None] * grad)).sum(dim=(2, 3), keepdim=True)
    else:
        weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activations).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    low, high = cam.amin(dim=(1, 2), keepdim=True), cam.amax(dim=(1, 2), keepdim=True)
    return ((cam - low) / (high - low).clamp(min=1e-12)).detach()


def occlusion(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """MONAI's occlusion sensitivity: how much the positive logit falls when a Gaussian patch (a
    sixth of the image width) around each pixel is blurred away, ``(N, H, W)`` (negative where
    hiding the pixel raises the logit). About 170 forward passes per image at 64 × 64.

    Taught in lab 08, section 2 (Saliency maps).
    """
    import monai.visualize as mv

    x = _images(images).detach()
    sensitivity = mv.OcclusionSensitivity(model, mask_size=max(2, x.shape[-1] // 6), n_batch=256, verbose=False,
                                          mode="gaussian", overlap=0.5, activate=False)
    with warnings.catch_warnings():  # MONAI's indexing, deprecated in PyTorch: not the learner's concern
        warnings.simplefilter("ignore", UserWarning)
        occluded = torch.cat([sensitivity(x[i:i + 1])[0] for i in range(len(x))])  # one image at a time
    with torch.no_grad():
        return _positive_logit(model, x)[:, None, None] - occluded[:, 0]


def saliency(model: nn.Module, images: torch.Tensor, *, method: str, layer: str | None = None,
             batch_size: int = 64) -> np.ndarray:
    """The ``method`` map of each image for the model's positive logit: ``(N, H, W)`` float32.

    ``method`` is one of :data:`METHODS`: ``"gradient"`` (:func:`input_gradient`),
    ``"integrated_gradients"`` (:func:`integrated_gradients`), ``"guided_backprop"``
    (:func:`guided_backprop`), ``"gradcam"`` and ``"gradcam++"`` (:func:`grad_cam` of the convolutional ``layer``) and ``"occlusion"``
    (:func:`occlusion`).
    The model is put in evaluation mode and left so.

    Taught in lab 08, section 2 (Saliency maps).
    """
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; choose one of {', '.join(METHODS)}")
    x = _images(images)
    model.eval()
    parts = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        if method == "gradient":
            part = input_gradient(model, batch)
        elif method == "integrated_gradients":
            part = integrated_gradients(model, batch)
        elif method == "guided_backprop":
            part = guided_backprop(model, batch)
        elif method == "occlusion":
            part = occlusion(model, batch)
        else:
            if layer is None:
                raise ValueError(f"{method} needs the name of a convolutional layer (layer=), e.g. the last block")
            part = grad_cam(model, batch, layer=layer, plus=method == "gradcam++")
        parts.append(part.detach().float().cpu())
    return torch.cat(parts).numpy().astype(np.float32)


def _maps_and_masks(maps: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    maps, masks = np.asarray(maps, dtype=np.float64), np.asarray(masks).astype(bool)
    if maps.ndim != 3 or maps.shape != masks.shape:
        raise ValueError(f"maps and masks must both be (N, H, W) and alike; got {maps.shape} and {masks.shape}")
    if not masks.reshape(len(masks), -1).any(axis=1).all():
        raise ValueError("every mask must mark at least one pixel: explain only images that show the finding")
    return maps, masks


def pointing_game(maps: Any, masks: Any) -> np.ndarray:
    """Per image, whether the map's maximum falls inside the mask: ``(N,)`` bool (Zhang et al.
    2018). A map that knows nothing hits as often as :func:`area_fraction`.

    Taught in lab 08, section 3 (Do the maps point at the lesion?).
    """
    maps, masks = _maps_and_masks(maps, masks)
    flat = maps.reshape(len(maps), -1)
    return masks.reshape(len(masks), -1)[np.arange(len(flat)), flat.argmax(axis=1)]


def energy_inside(maps: Any, masks: Any) -> np.ndarray:
    """Per image, the share of the map's positive mass inside the mask: ``(N,)`` in [0, 1]. A
    map spread evenly scores :func:`area_fraction`; a map with no positive mass scores 0.

    Taught in lab 08, section 3 (Do the maps point at the lesion?).
    """
    maps, masks = _maps_and_masks(maps, masks)
    positive = np.clip(maps, 0, None).reshape(len(maps), -1)
    inside = (positive * masks.reshape(len(masks), -1)).sum(axis=1)
    total = positive.sum(axis=1)
    return np.divide(inside, total, out=np.zeros_like(inside), where=total > 0)


def area_fraction(masks: Any) -> np.ndarray:
    """Per image, the fraction of pixels inside the mask: ``(N,)``, the chance level of the
    pointing game and of :func:`energy_inside`.

    Taught in lab 08, section 3 (Do the maps point at the lesion?).
    """
    masks = np.asarray(masks).astype(bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W); got {masks.shape}")
    return masks.reshape(len(masks), -1).mean(axis=1)


def rank_correlation(maps_a: Any, maps_b: Any) -> np.ndarray:
    """Per image, Spearman's rank correlation between two maps of it: ``(N,)`` in [-1, 1] (NaN
    where a map is constant). Near 1: the two maps rank the pixels alike.

    Taught in lab 08, section 4 (Sanity checks: randomised weights and labels).
    """
    from scipy.stats import spearmanr

    a, b = np.asarray(maps_a, dtype=np.float64), np.asarray(maps_b, dtype=np.float64)
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"maps must both be (N, H, W) and alike; got {a.shape} and {b.shape}")
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a.reshape(len(a), -1), b.reshape(len(b), -1))):
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = spearmanr(x, y).statistic
    return out


def cascading_randomization(model: nn.Module, *, seed: int = 0) -> list[tuple[str, nn.Module]]:
    """Copies of ``model`` with its learnt layers re-initialised from the output backwards, one
    more layer each: ``[(layer name, copy), ...]``, the last copy random throughout
    (Adebayo et al. 2018). ``model`` itself is left as it is.

    A layer is a module with its own parameters (a convolution, a linear layer, a batch norm);
    each is re-initialised by its own ``reset_parameters``, with ``torch.manual_seed(seed)``.

    Taught in lab 08, section 4 (Sanity checks: randomised weights and labels).
    """
    names = [name for name, m in model.named_modules()
             if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    if not names:
        raise ValueError("the model has no layer with parameters to randomise")
    copies, current = [], copy.deepcopy(model)
    torch.manual_seed(seed)
    for name in reversed(names):
        current = copy.deepcopy(current)
        current.get_submodule(name).reset_parameters()
        copies.append((name, current))
    return copies


@torch.no_grad()
def deletion_curve(model: nn.Module, images: torch.Tensor, maps: Any, *, steps: int = 10,
                   fill: float | torch.Tensor | None = None) -> np.ndarray:
    """The mean positive probability as the most relevant pixels are deleted first: ``(steps + 1,)``,
    after deleting ``0, 1/steps, …, 1`` of each image's pixels (Petsiuk et al. 2018). A faithful
    map makes it fall fast: its area is small.

    Deleted pixels take the value ``fill``: a number, images of ``images``' shape to take each
    pixel from (the same patient without the finding, where there is one: a deletion that adds
    nothing new), or by default each image's mean. Ties in a map are broken by pixel order, so a
    constant map deletes row by row.

    Taught in lab 08, section 5 (Faithfulness: delete what the map points at).
    """
    x = _images(images).detach()
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"maps must be (N, H, W) = {(x.shape[0], *x.shape[2:])}; got {maps.shape}")
    steps = arguments.integer(steps, "steps", minimum=1)
    model.eval()
    n, pixels = len(x), maps[0].size
    order = torch.as_tensor(np.argsort(-maps.reshape(n, -1), axis=1, kind="stable"))
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(pixels).expand(n, -1))
    if isinstance(fill, torch.Tensor):
        if fill.shape != x.shape:
            raise ValueError(f"fill images must have the images' shape {tuple(x.shape)}; got {tuple(fill.shape)}")
        values = fill.to(x)
    elif fill is not None:
        values = torch.full_like(x, float(fill))
    else:
        values = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
    curve = []
    for k in range(steps + 1):
        deleted = (rank < round(k * pixels / steps)).reshape(n, 1, *x.shape[2:])
        curve.append(torch.sigmoid(_positive_logit(model, torch.where(deleted, values, x))).mean().item())
    return np.asarray(curve)
