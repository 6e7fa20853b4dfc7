"""Base of the per-frame-labelled video datasets (phases, tools, triplets): 1 fps timelines, frame cache, ``videos()``.

A subclass lists its videos in ``_index`` as dicts with ``id``, ``num`` (length of the 1 fps timeline),
``labels`` ({key: array (num, ...)}) and either ``path`` + ``step`` (a video file decoded every
``step``-th frame, i.e. at 1 fps) or ``frames`` (a list of image files, one per second).
Decoded 1 fps frames are cached per video, shrunk to ``cache_side`` pixels on the short side (real
videos are 480p-1080p; keeping them full size would fill the memory).
"""
from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import torch

from endolib.data.datasets.base import ClipDataset
from endolib.data.transforms import augment_clip, to_tensor_clip

log = logging.getLogger(__name__)


def _shrink(frames: np.ndarray, side: int) -> np.ndarray:
    """Resize uint8 frames (T, H, W, 3) so the short side is ``side`` (no-op when already that small)."""
    h, w = frames.shape[1:3]
    if min(h, w) <= side:
        return frames
    size = (round(h * side / min(h, w)), round(w * side / min(h, w)))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


class TimelineDataset(ClipDataset):
    """Items are clips of a video's 1 fps timeline with the per-frame labels of ``label_keys``."""

    label_keys: tuple = ("phase",)
    label_dtypes: dict = {"phase": torch.long}

    def __init__(self, *args, cache_videos: int = 64, cache_side: int | None = None, **kw):
        self._cache: OrderedDict = OrderedDict()
        self._cache_videos, self._cache_side = cache_videos, cache_side
        super().__init__(*args, **kw)

    def frames_of(self, v: int) -> np.ndarray:
        """All 1 fps frames of video ``v`` as uint8 (num, h, w, 3) (cached, shrunk)."""
        if v in self._cache:
            self._cache.move_to_end(v)
            return self._cache[v]
        meta = self.videos_meta[v]
        if "frames" in meta:
            from endolib.data.io import read_frames_folder
            frames = read_frames_folder(meta["folder"], num=meta["num"])
        else:
            from endolib.data.io import read_video
            frames = read_video(meta["path"], step=meta["step"], num=meta["num"])
        if len(frames) < meta["num"]:
            log.warning("%s: %s decoded to %d frames at 1 fps but its annotation covers %d; the rest is padded "
                        "with the last frame", self.name, meta["id"], len(frames), meta["num"])
            frames = np.concatenate([frames, np.repeat(frames[-1:], meta["num"] - len(frames), 0)])
        frames = _shrink(frames[:meta["num"]], self._cache_side or int(max(np.max(self.img_size), 64) * 1.5))
        self._cache[v] = frames
        while len(self._cache) > self._cache_videos:
            self._cache.popitem(last=False)
        return frames

    def _labels(self, meta: dict, idx) -> dict:
        return {k: torch.as_tensor(np.asarray(meta["labels"][k])[idx], dtype=self.label_dtypes.get(k, torch.float32))
                for k in self.label_keys}

    def __getitem__(self, i: int) -> dict:
        meta, idx = self.clip_of(i, rng := self._rng(i))
        clip = self.frames_of(self.items[i][0])[idx]
        if self.augment:
            clip, _, _ = augment_clip(clip, rng)
        return {"video": to_tensor_clip(clip, self.img_size), **self._labels(meta, idx)}

    def iter_videos(self):
        """Yield (video_id, frames (3, T, S, S), {label: (T, ...)}) for every video of the split, at 1 fps."""
        for v, meta in enumerate(self.videos_meta):
            idx = np.arange(meta["num"])
            yield meta["id"], to_tensor_clip(self.frames_of(v), self.img_size), self._labels(meta, idx)

    def videos(self) -> list:
        """Every video of the split, whole, at 1 fps: [(video_id, frames (3, T, S, S), {label: (T, ...)}), ...]."""
        return list(self.iter_videos())
