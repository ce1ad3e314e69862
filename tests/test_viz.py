import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from medlab import viz


def teardown_function():
    plt.close("all")


@pytest.mark.parametrize("shape", [(5, 8, 8), (5, 1, 8, 8)])
def test_show_images_grid_and_shared_scale(shape):
    images = np.arange(np.prod(shape), dtype=float).reshape(shape)
    fig = viz.show_images(images, titles=list("abcde"), ncols=3)
    axes = fig.axes
    assert len(axes) == 6  # 2 rows × 3 columns, the last one empty
    shown = [ax for ax in axes if ax.images]
    assert len(shown) == 5 and shown[0].get_title() == "a"
    assert {ax.images[0].get_clim() for ax in shown} == {(0.0, float(images.max()))}


def test_show_images_accepts_tensors_and_rejects_colour_stacks():
    viz.show_images(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, 1, H, W\)"):
        viz.show_images(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        viz.show_images(np.zeros((2, 4, 4)), titles=["x"])


def test_plot_curves_draws_each_curve_with_a_legend():
    ax = viz.plot_curves({"train": [3, 2, 1], "val": torch.tensor([3.0, 2.5, 2.4])}, logy=True, title="t")
    assert [line.get_label() for line in ax.lines] == ["train", "val"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [3.0, 2.5, 2.4])
    assert ax.get_yscale() == "log" and ax.get_legend() is not None


def test_class_histograms_one_histogram_per_class():
    values = np.array([0.1, 0.2, 0.9, 1.0, 1.1])
    ax = viz.class_histograms(values, np.array([0, 0, 1, 1, 1]), class_names=["healthy", "lesion"], bins=4)
    heights = [sum(p.get_height() for p in container) for container in ax.containers]
    assert heights == [2, 3]
    with pytest.raises(ValueError, match="2 classes but 1 class names"):
        viz.class_histograms(values, np.array([0, 0, 1, 1, 1]), class_names=["x"])


def test_show_contours_draws_one_outline_per_mask_channel():
    images = np.random.default_rng(0).random((2, 16, 16))
    truth = np.zeros((2, 2, 16, 16), bool)
    truth[:, 0, 2:6, 2:6] = True
    truth[0, 1, 8:12, 8:12] = True
    fig = viz.show_contours(images, truth, truth[:, 0], titles=["a", "b"])
    outlines = [len(ax.collections) for ax in fig.axes]
    assert outlines[:2] == [3, 2]
    with pytest.raises(ValueError, match="do not match"):
        viz.show_contours(images, truth[:1])
    plt.close(fig)
