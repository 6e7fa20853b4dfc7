"""Data drawing helpers: mask overlay, box and phase drawings, sampling-scheme figure match their inputs."""
import matplotlib
import numpy as np
import pytest

from endolib.data.sampling import clip_indices
from endolib.data.transforms import to_tensor_clip
from endolib.data.viz import (overlay_mask, plot_boxes, plot_frames, plot_masks, plot_phase_timelines,
                              plot_sampling_scheme, to_images)

matplotlib.use("Agg")


def test_to_images_inverts_normalisation():
    frames = np.random.default_rng(0).integers(1, 256, (3, 16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(to_images(to_tensor_clip(frames, 16)), frames / 255, atol=1e-5)


def test_overlay_tints_only_the_mask_and_outlines_it():
    rng = np.random.default_rng(1)
    img = rng.random((20, 20, 3))
    mask = np.zeros((20, 20))
    mask[5:15, 6:12] = 1
    out = overlay_mask(img, mask, color=(0, 1, 0), alpha=0.5)
    np.testing.assert_array_equal(out[mask == 0], img[mask == 0])
    np.testing.assert_allclose(out[10, 9], 0.5 * img[10, 9] + 0.5 * np.array([0, 1, 0]))  # interior
    np.testing.assert_array_equal(out[5, 8], [0, 1, 0])  # edge


def test_boxes_masks_frames_are_drawn_per_frame():
    rng = np.random.default_rng(2)
    video = to_tensor_clip(rng.integers(1, 256, (4, 32, 32, 3), dtype=np.uint8), 32)
    boxes = [np.array([[2, 3, 10, 12]]), np.zeros((0, 4)), np.array([[1, 1, 5, 5], [20, 20, 30, 30]]),
             np.array([[0, 0, 31, 31]])]
    fig = plot_boxes(video, boxes, names=[["a"], [], ["a", "b"], ["c"]])
    assert [len(ax.patches) for ax in fig.axes] == [1, 0, 2, 1]
    r = fig.axes[0].patches[0]
    assert (r.get_x(), r.get_y(), r.get_width(), r.get_height()) == pytest.approx((1.5, 2.5, 8, 9))
    masks = (rng.random((4, 32, 32)) > 0.7).astype(float)
    assert len(plot_masks(video, masks, max_frames=3).axes) == 3
    assert [ax.get_title() for ax in plot_frames(video, labels=list("wxyz")).axes] == list("wxyz")


def test_phase_timeline_has_one_bar_per_segment():
    fig = plot_phase_timelines({"v1": [0, 0, 1, 1, 1, 2], "v2": [3, 3, 3]}, ["a", "b", "c", "d"])
    ax = fig.axes[0]
    bars = [c for c in ax.collections]
    assert [len(c.get_paths()) for c in bars] == [3, 1]
    assert len(ax.get_legend().get_texts()) == 4


def test_sampling_scheme_plots_the_actual_indices():
    fig = plot_sampling_scheme(num_total=60, num_frames=8, sampling_rate=4, seed=5, short_video=20)
    ax = fig.axes[0]
    pts = [c.get_offsets()[:, 0] for c in ax.collections]
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(pts[0], clip_indices(60, 8, 4, "random", rng))
    np.testing.assert_array_equal(pts[3], clip_indices(60, 8, 4, "uniform"))
    np.testing.assert_array_equal(pts[-1], np.unique(clip_indices(20, 8, 4, "uniform")))
