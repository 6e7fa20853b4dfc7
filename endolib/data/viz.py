"""Draw data for inspection: frames with masks or boxes, phase timelines, and the clip-sampling scheme.

Videos are the loaders' normalised tensors ``(3, T, H, W)``; they are denormalised for display.
Every function returns the matplotlib figure it drew (or draws into given axes).
"""
from __future__ import annotations

import numpy as np

from endolib.data.sampling import clip_indices, clip_span, sliding_windows


def to_images(video) -> np.ndarray:
    """video: normalised (3, T, H, W) tensor -> (T, H, W, 3) float in [0, 1] for imshow."""
    from endolib.data.transforms import denormalize

    return denormalize(video.detach().cpu().float()).permute(1, 2, 3, 0).numpy()


def overlay_mask(image: np.ndarray, mask: np.ndarray, color=(0.1, 1.0, 0.2), alpha: float = 0.45) -> np.ndarray:
    """image: (H, W, 3) in [0, 1]; mask: (H, W) {0, 1} -> (H, W, 3) with the mask tinted and outlined."""
    m = np.asarray(mask) > 0.5
    out = image.copy()
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color)
    edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    out[edge] = color
    return out


def _frame_axes(n: int, axes=None, size: float = 1.8, title: str = ""):
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(size * n, size + 0.4), squeeze=False)
        axes = axes[0]
        if title:
            fig.suptitle(title)
    for ax in axes:
        ax.set_axis_off()
    return axes[0].figure, axes


def plot_frames(video, max_frames: int = 6, axes=None, title: str = "", labels=None):
    """The first ``max_frames`` frames of a clip; ``labels`` (one string per frame) as captions."""
    imgs = to_images(video)[:max_frames]
    fig, axes = _frame_axes(len(imgs), axes, title=title)
    for t, (ax, im) in enumerate(zip(axes, imgs)):
        ax.imshow(im)
        ax.set_title(labels[t] if labels is not None else f"t={t}", fontsize=8)
    return fig


def plot_masks(video, masks, max_frames: int = 6, axes=None, title: str = ""):
    """Frames with their segmentation masks overlaid; masks: (T, H, W) {0, 1}."""
    imgs, masks = to_images(video)[:max_frames], np.asarray(masks)[:max_frames]
    fig, axes = _frame_axes(len(imgs), axes, title=title)
    for t, (ax, im, m) in enumerate(zip(axes, imgs, masks)):
        ax.imshow(overlay_mask(im, m))
        ax.set_title(f"t={t}  {100 * m.mean():.0f}% polyp", fontsize=8)
    return fig


def plot_boxes(video, boxes, max_frames: int = 6, axes=None, title: str = "", names=None):
    """Frames with xyxy boxes (list of (k, 4) per frame, pixels of the shown frame); ``names`` per frame list."""
    from matplotlib.patches import Rectangle

    imgs = to_images(video)[:max_frames]
    fig, axes = _frame_axes(len(imgs), axes, title=title)
    for t, (ax, im) in enumerate(zip(axes, imgs)):
        ax.imshow(im)
        b = np.asarray(boxes[t], dtype=float).reshape(-1, 4)
        for k, (x0, y0, x1, y1) in enumerate(b):
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="yellow", lw=1.5))
            if names is not None and len(names[t]) > k:
                ax.text(x0, y0 - 1, str(names[t][k]), color="yellow", fontsize=7, va="bottom")
        ax.set_title(f"t={t}  {len(b)} box{'es' * (len(b) != 1)}", fontsize=8)
    return fig


def plot_phase_timelines(timelines: dict, classes, ax=None, seconds_per_step: float = 1.0):
    """One horizontal band per video, coloured by phase. timelines: {video_id: (T,) int phase ids}."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.45 * len(timelines) + 1.2))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    colors = [cmap(i % cmap.N) for i in range(len(classes))]
    for row, (vid, ph) in enumerate(timelines.items()):
        ph = np.asarray(ph)
        change = np.flatnonzero(np.diff(ph)) + 1
        starts, ends = np.r_[0, change], np.r_[change, len(ph)]
        ax.broken_barh([(s * seconds_per_step, (e - s) * seconds_per_step) for s, e in zip(starts, ends)],
                       (row - 0.4, 0.8), facecolors=[colors[ph[s]] for s in starts])
    ax.set_yticks(range(len(timelines)), [str(v) for v in timelines])
    ax.set_xlabel("time (s)" if seconds_per_step == 1.0 else "time")
    ax.invert_yaxis()
    ax.legend(handles=[Patch(color=colors[i], label=c) for i, c in enumerate(classes)], fontsize=7,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.figure.tight_layout()
    return ax.figure


def plot_sampling_scheme(num_total: int = 60, num_frames: int = 8, sampling_rate: int = 4, stride=None,
                         seed: int = 0, short_video: int = 20):
    """Which frames a clip takes: random training clips, the centred evaluation clip, whole-video spread,
    sliding windows, and a short video padded with its last frame."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    rows = [(f"random #{k + 1}", clip_indices(num_total, num_frames, sampling_rate, "random", rng), num_total)
            for k in range(3)]
    rows.append(("uniform (centred)", clip_indices(num_total, num_frames, sampling_rate, "uniform"), num_total))
    rows.append(("spread", clip_indices(num_total, num_frames, sampling_rate, "spread"), num_total))
    windows = sliding_windows(num_total, num_frames, sampling_rate, stride)
    rows += [(f"window {w + 1}", idx, num_total) for w, idx in enumerate(windows)]
    rows.append((f"short video ({short_video})", clip_indices(short_video, num_frames, sampling_rate, "uniform"),
                 short_video))
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.4))
    for r, (label, idx, n) in enumerate(rows):
        ax.plot([0, n - 1], [r, r], color="0.85", lw=6, solid_capstyle="butt")
        vals, counts = np.unique(idx, return_counts=True)
        ax.scatter(vals, np.full(len(vals), r), s=18 + 14 * (counts - 1), color="tab:red" if (counts > 1).any()
                   else "tab:blue", zorder=3)
        ax.text(n, r, f" {'repeats last frame' if (counts > 1).any() else ''}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("frame index")
    ax.set_title(f"{num_frames} frames every {sampling_rate} (span {clip_span(num_frames, sampling_rate)} frames) "
                 f"from a {num_total}-frame video; windows every {stride or clip_span(num_frames, sampling_rate)}")
    fig.tight_layout()
    return fig
