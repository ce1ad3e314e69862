"""Interactive viewers for volumes, with a static picture wherever widgets cannot run.

In JupyterLab, :func:`window_viewer` gives sliders for the slice, the window level and the
window width. An executed notebook read on GitHub, exported to HTML or run by papermill has no
widget front end; it still shows the static figure the viewer draws first.
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from medlab.windowing import window


def widgets_available() -> bool:
    """True inside an IPython kernel with ipywidgets installed (and ``MEDLAB_STATIC`` unset)."""
    if os.environ.get("MEDLAB_STATIC"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_slice(volume: np.ndarray, *, index: int, center: float, width: float,
               spacing: tuple[float, float, float] | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Draw axial slice ``index`` of ``volume`` ``(z, y, x)`` in HU through a window."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.imshow(window(volume[index], center=center, width=width), cmap="gray", vmin=0, vmax=1,
              aspect=1.0 if spacing is None else spacing[1] / spacing[2])
    ax.set_title(f"slice {index} · level {center:g} HU · width {width:g} HU", fontsize=9)
    ax.axis("off")
    return ax


def window_viewer(volume: np.ndarray, *, spacing: tuple[float, float, float] | None = None,
                  center: float = 40.0, width: float = 400.0, index: int | None = None) -> Any:
    """A slice viewer for a CT volume ``(z, y, x)`` in HU: slice, level and width sliders.

    Always draws the starting view as a static figure; returns the sliders and a live view
    when a widget front end can show them (see :func:`widgets_available`), else ``None``.

    Taught in lab 01, section 3 (Window and level).
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"window_viewer needs a (z, y, x) volume, got shape {volume.shape}")
    start = volume.shape[0] // 2 if index is None else int(index)
    show_slice(volume, index=start, center=center, width=width, spacing=spacing)
    plt.show()
    if not widgets_available():
        return None
    import ipywidgets as w

    sliders = {
        "index": w.IntSlider(value=start, min=0, max=volume.shape[0] - 1, description="slice"),
        "center": w.IntSlider(value=int(center), min=-1000, max=1500, step=10, description="level (HU)"),
        "width": w.IntSlider(value=int(width), min=10, max=3000, step=10, description="width (HU)"),
    }
    live = w.Output()

    def redraw(_change=None):
        # Drawn only when a slider moves: creating the viewer displays nothing by itself, so an
        # executed notebook stores the same outputs on every run.
        with live:
            live.clear_output(wait=True)
            show_slice(volume, **{k: s.value for k, s in sliders.items()}, spacing=spacing)
            plt.show()

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    hint = w.Label("Move a slider: the live view appears below.")
    return w.VBox([w.HBox(list(sliders.values())), hint, live])


def show_overlay(volume: np.ndarray, masks: dict[str, np.ndarray], *, index: int, center: float = 40.0,
                 width: float = 400.0, spacing: tuple[float, float, float] | None = None,
                 ax: plt.Axes | None = None) -> plt.Axes:
    """Axial slice ``index`` of ``volume`` ``(z, y, x)`` in HU with the outline of each named
    ``(z, y, x)`` mask in its own colour (a legend names them)."""
    ax = show_slice(volume, index=index, center=center, width=width, spacing=spacing, ax=ax)
    handles = []
    for colour, (name, mask) in zip(("lime", "red", "deepskyblue", "orange", "magenta"), masks.items()):
        plane = np.asarray(mask[index], dtype=float)
        if plane.any() and not plane.all():
            ax.contour(plane, levels=[0.5], colors=colour, linewidths=1.0)
        handles.append(plt.Line2D([], [], color=colour, label=name))
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False, labelcolor="white")
    return ax


def overlay_viewer(volume: np.ndarray, masks: dict[str, np.ndarray], *, spacing: tuple[float, float, float] | None = None,
                   center: float = 40.0, width: float = 400.0, index: int | None = None) -> Any:
    """A slice viewer for a CT volume ``(z, y, x)`` in HU with mask outlines over it (for
    example ``{"truth": ..., "prediction": ...}``, each ``(z, y, x)``), and a slice slider.

    Draws the starting slice (default: the one where the first mask is largest) as a static
    figure; returns the slider and a live view when a widget front end can show them, else ``None``.

    Taught in lab 05, section 10 (Three dimensions: organs in CT volumes).
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"overlay_viewer needs a (z, y, x) volume, got shape {volume.shape}")
    for name, mask in masks.items():
        if np.shape(mask) != volume.shape:
            raise ValueError(f"mask {name!r} has shape {np.shape(mask)}, the volume {volume.shape}")
    if index is None:
        first = np.asarray(next(iter(masks.values()))) if masks else np.zeros(volume.shape)
        index = int(first.reshape(len(first), -1).sum(1).argmax()) if first.any() else volume.shape[0] // 2
    show_overlay(volume, masks, index=index, center=center, width=width, spacing=spacing)
    plt.show()
    if not widgets_available():
        return None
    import ipywidgets as w

    slider = w.IntSlider(value=index, min=0, max=volume.shape[0] - 1, description="slice")
    live = w.Output()

    def redraw(change):
        with live:  # drawn only when the slider moves, like window_viewer
            live.clear_output(wait=True)
            show_overlay(volume, masks, index=change["new"], center=center, width=width, spacing=spacing)
            plt.show()

    slider.observe(redraw, names="value")
    return w.VBox([slider, w.Label("Move the slider: the live view appears below."), live])
