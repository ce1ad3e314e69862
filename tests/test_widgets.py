import matplotlib.pyplot as plt
import numpy as np
import pytest

from medlab import widgets


def teardown_function():
    plt.close("all")


def test_outside_a_kernel_the_viewer_is_static(monkeypatch):
    volume = np.linspace(-1000, 1000, 5 * 8 * 8, dtype=np.float32).reshape(5, 8, 8)
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    assert widgets.widgets_available() is False
    assert widgets.window_viewer(volume, center=0, width=2000) is None
    ax = shown[0].axes[0]
    assert ax.get_title() == "slice 2 · level 0 HU · width 2000 HU"
    np.testing.assert_allclose(ax.images[0].get_array(), (volume[2] + 1000) / 2000, atol=1e-6)


def test_static_mode_can_be_forced(monkeypatch):
    monkeypatch.setenv("MEDLAB_STATIC", "1")
    assert widgets.widgets_available() is False


def test_viewer_needs_a_volume():
    with pytest.raises(ValueError, match=r"\(z, y, x\) volume"):
        widgets.window_viewer(np.zeros((8, 8)))


def test_in_a_kernel_the_sliders_redraw_the_view(monkeypatch):
    volume = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    drawn = []
    monkeypatch.setattr(widgets, "show_slice", lambda vol, *, index, center, width, spacing=None: drawn.append((index, center, width)))
    monkeypatch.setattr(plt, "show", lambda: None)
    viewer = widgets.window_viewer(volume, center=0, width=100)
    assert drawn == [(1, 0, 100)]  # the static first view only
    sliders = viewer.children[0].children
    sliders[0].value = 2
    sliders[2].value = 500
    assert drawn[1:] == [(2, 0, 100), (2, 0, 500)]


def test_overlay_viewer_starts_where_the_mask_is_largest(monkeypatch):
    volume = np.zeros((6, 16, 16), np.float32)
    truth = np.zeros((6, 16, 16), bool)
    truth[1, 4:8, 4:8] = True
    truth[4, 2:14, 2:14] = True
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    assert widgets.overlay_viewer(volume, {"truth": truth, "prediction": truth[::-1]}) is None
    ax = shown[0].axes[0]
    assert ax.get_title().startswith("slice 4 ")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["truth", "prediction"]
    with pytest.raises(ValueError, match="mask 'x'"):
        widgets.overlay_viewer(volume, {"x": truth[:2]})


def test_overlay_viewer_slider_redraws(monkeypatch):
    volume = np.zeros((3, 8, 8), np.float32)
    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    drawn = []
    monkeypatch.setattr(widgets, "show_overlay", lambda vol, masks, *, index, **kw: drawn.append(index))
    monkeypatch.setattr(plt, "show", lambda: None)
    viewer = widgets.overlay_viewer(volume, {"m": np.zeros((3, 8, 8), bool)})
    viewer.children[0].value = 2
    assert drawn == [1, 2]
