"""Plots the labs share: image grids, training curves and per-class histograms.

Images are channel-first, as everywhere in MedLab: ``(N, H, W)`` or ``(N, 1, H, W)``; only
this module turns them into what matplotlib expects. Each function draws into the ``ax``
(or figure) it is given, or a new one, and returns it; a notebook cell ends with
``plt.show()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def _to_numpy(images: Any) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    return np.asarray(images)


def _as_grayscale_stack(images: Any) -> np.ndarray:
    """``(N, H, W)`` or ``(N, 1, H, W)`` → ``(N, H, W)``."""
    array = _to_numpy(images)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W) or (N, 1, H, W), got {array.shape}")
    return array


def show_images(
    images: Any,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    size: float = 1.6,
) -> plt.Figure:
    """A grid of grayscale images, one shared intensity scale (``vmin``/``vmax``, default:
    the stack's range), so brightness compares across panels.

    Taught in lab 00, section 2 (A toy imaging task: is there a lesion in this patch?).
    """
    stack = _as_grayscale_stack(images)
    n = len(stack)
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    lo = float(stack.min()) if vmin is None else vmin
    hi = float(stack.max()) if vmax is None else vmax
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(stack[i], cmap=cmap, vmin=lo, vmax=hi)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "step",
    ylabel: str = "loss",
    title: str | None = None,
    logy: bool = False,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """One line per named curve (e.g. ``{"train": [...], "val": [...]}``) against its index.

    Taught in lab 00, section 3 (Logistic regression by hand).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for label, values in curves.items():
        values = _to_numpy(values).astype(float)
        ax.plot(np.arange(len(values)), values, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(curves) > 3:  # many curves: keep the legend off the lines
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    elif len(curves) > 1:
        ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def class_histograms(
    values: Any,
    labels: Any,
    *,
    class_names: Sequence[str] | None = None,
    bins: int = 30,
    xlabel: str = "value",
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Overlaid histograms of ``values`` (shape ``(N,)``), one per class in ``labels`` (``(N,)``).

    Taught in lab 00, section 2 (A toy imaging task: is there a lesion in this patch?).
    """
    values, labels = _to_numpy(values).ravel(), _to_numpy(labels).ravel()
    if values.shape != labels.shape:
        raise ValueError(f"values {values.shape} and labels {labels.shape} must have the same length")
    classes = np.unique(labels)
    names = class_names if class_names is not None else [str(c) for c in classes]
    if len(names) != len(classes):
        raise ValueError(f"{len(classes)} classes but {len(names)} class names")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    edges = np.histogram_bin_edges(values, bins=bins)
    for cls, name in zip(classes, names):
        ax.hist(values[labels == cls], bins=edges, alpha=0.55, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(frameon=False)
    return ax


def show_contours(
    images: Any,
    truth: Any | None = None,
    prediction: Any | None = None,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 2.4,
    vmin: float | None = None,
    vmax: float | None = None,
) -> plt.Figure:
    """Images with mask outlines drawn over them: ``truth`` in green, ``prediction`` in red
    (dashed), so a reader sees at a glance where they disagree.

    ``images`` ``(N, H, W)`` or ``(N, 1, H, W)``; masks ``(N, H, W)`` or ``(N, K, H, W)`` (one
    outline per channel, all in the same colour).

    Taught in lab 05, section 1 (The task: lungs and heart on chest radiographs).
    """
    stack = _as_grayscale_stack(images)

    def channels(masks):
        if masks is None:
            return None
        array = _to_numpy(masks).astype(bool)
        array = array[:, None] if array.ndim == 3 else array
        if array.ndim != 4 or array.shape[0] != len(stack) or array.shape[-2:] != stack.shape[-2:]:
            raise ValueError(f"masks of shape {array.shape} do not match images of shape {stack.shape}")
        return array

    truth, prediction = channels(truth), channels(prediction)
    fig = show_images(stack, titles=titles, ncols=ncols, size=size, vmin=vmin, vmax=vmax)
    for i, ax in enumerate(fig.axes[:len(stack)]):
        for masks, colour, style in ((truth, "lime", "solid"), (prediction, "red", "dashed")):
            if masks is None:
                continue
            for mask in masks[i]:
                if mask.any() and not mask.all():
                    ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=1.0, linestyles=style)
    return fig
