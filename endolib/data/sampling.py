"""Choose which frame indices form a clip: random/centred clips for training and sliding windows for evaluation.

A clip of ``num_frames`` frames taken every ``sampling_rate`` frames spans
``span = (num_frames - 1) * sampling_rate + 1`` frames of the video.

Short videos (``num_total < span``): the clip starts at frame 0 and every index past the end is
replaced by the last frame (``num_total - 1``), i.e. the clip is padded by repeating the last frame.
The sampling rate is kept (the model always sees the same temporal stride) rather than squeezed.
"""
from __future__ import annotations

import numpy as np

MODES = ("random", "uniform", "spread")


def clip_span(num_frames: int, sampling_rate: int) -> int:
    """Number of video frames a clip covers, first to last inclusive."""
    return (num_frames - 1) * sampling_rate + 1


def _check(num_total: int, num_frames: int, sampling_rate: int) -> None:
    if num_total < 1 or num_frames < 1 or sampling_rate < 1:
        raise ValueError(f"expected num_total >= 1, num_frames >= 1, sampling_rate >= 1; got num_total={num_total}, "
                         f"num_frames={num_frames}, sampling_rate={sampling_rate}. An empty video has no clip: "
                         "check the index for videos with 0 frames.")


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def clip_indices(num_total: int, num_frames: int, sampling_rate: int, mode: str = "random",
                 rng=None) -> np.ndarray:
    """Frame indices ``(num_frames,)`` int64 of one clip from a video of ``num_total`` frames.

    mode:
      - ``'random'`` (training): the clip starts at a uniformly random frame among those where it fits.
      - ``'uniform'`` (evaluation): the deterministic centred clip.
      - ``'spread'``: ``num_frames`` indices spread evenly over the whole video (``sampling_rate``
        ignored), the whole-video sampling of video-level classification (e.g. PolypDiag).
    ``rng``: a ``np.random.Generator``, a seed, or None (fresh entropy). Short videos are padded by
    repeating the last frame (module docstring).
    """
    _check(num_total, num_frames, sampling_rate)
    if mode not in MODES:
        raise ValueError(f"clip_indices mode must be one of {MODES}; got {mode!r}.")
    if mode == "spread":
        # centre of each of num_frames equal segments
        return np.floor((np.arange(num_frames) + 0.5) * num_total / num_frames).astype(np.int64)
    span = clip_span(num_frames, sampling_rate)
    slack = num_total - span
    if slack <= 0:
        start = 0
    elif mode == "random":
        start = int(_as_rng(rng).integers(0, slack + 1))
    else:
        start = slack // 2
    idx = start + np.arange(num_frames, dtype=np.int64) * sampling_rate
    return np.minimum(idx, num_total - 1)


def sliding_windows(num_total: int, num_frames: int, sampling_rate: int, stride: int | None = None) -> np.ndarray:
    """Every evaluation window over a video: ``(num_windows, num_frames)`` int64 frame indices.

    Windows start at ``0, stride, 2*stride, ...``; if the last one stops short of the final frame, one
    more window ending exactly at the final frame is added, so the spans reach the end of the video. ``stride``
    defaults to the span (non-overlapping). A video shorter than one span gives a single padded window.
    """
    _check(num_total, num_frames, sampling_rate)
    span = clip_span(num_frames, sampling_rate)
    stride = span if stride is None else stride
    if stride < 1:
        raise ValueError(f"sliding_windows stride must be >= 1; got {stride}.")
    if num_total <= span:
        return clip_indices(num_total, num_frames, sampling_rate, mode="uniform")[None]
    starts = list(range(0, num_total - span + 1, stride))
    if starts[-1] + span < num_total:
        starts.append(num_total - span)
    offsets = np.arange(num_frames, dtype=np.int64) * sampling_rate
    return np.asarray(starts, dtype=np.int64)[:, None] + offsets[None, :]
