"""Shared machinery of the downstream loaders: root resolution, clear layout errors, clip items, randomness.

A loader lists its videos once (``_index``), then serves items ``(video, window)``: every video is cut
into ``sliding_windows`` of ``num_frames`` frames every ``sampling_rate`` frames; at training time the
window's start is drawn at random inside the video instead (``clip_indices(mode='random')``), so one
epoch still visits each video about (its length / clip span) times.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from endolib.data.sampling import clip_indices, sliding_windows

log = logging.getLogger(__name__)


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder or one of its annotation files is missing or not where the official layout puts it."""


def resolve_root(root, folder: str, marker: str, name: str, layout: str) -> Path:
    """The dataset folder: ``root`` itself when it holds ``marker``, else ``root/folder``; clear error otherwise."""
    root = Path(root)
    for cand in (root, root / folder):
        if (cand / marker).exists():
            return cand
    raise DatasetLayoutError(
        f"{name}: no dataset found at {root} (looked for {root / marker} and {root / folder / marker}).\n"
        f"Expected the official layout:\n{layout}\n"
        f"Point `root` at your copy of {name}, or create a synthetic one with "
        f"`endolib.data.synthetic.ensure('{name}')` (it returns the folder to pass as root).")


def require(path: Path, name: str, what: str, layout: str) -> Path:
    """``path`` if it exists, else a DatasetLayoutError naming the missing file and the expected layout."""
    if not Path(path).exists():
        raise DatasetLayoutError(f"{name}: missing {what}: {path}.\nExpected layout:\n{layout}")
    return Path(path)


def check_label(value, classes, name: str, where: str) -> int:
    """Index of a label given as a class name or an integer id; ValueError naming the file when unknown."""
    i = -1
    if isinstance(value, str):
        s = value.strip()
        if s in classes:
            return classes.index(s)
        if s.lstrip("-").isdigit():
            i = int(s)
    elif isinstance(value, (int, np.integer)):
        i = int(value)
    if 0 <= i < len(classes):
        return i
    raise ValueError(f"{name}: label {value!r} in {where} is not one of the {len(classes)} known classes "
                     f"({', '.join(map(str, classes[:8]))}{', ...' if len(classes) > 8 else ''}). "
                     "Fix the annotation file or check you passed the right dataset name.")


class ClipDataset(torch.utils.data.Dataset):
    """Base of every downstream loader: ``self.videos_meta`` (one dict per video with ``num`` frames) -> items."""

    name = "dataset"
    classes: list = []

    def __init__(self, root, split: str, num_frames: int = 8, img_size: int = 64, sampling_rate: int = 1,
                 train: bool | None = None, augment: bool | None = None, seed: int = 0, stride: int | None = None):
        self.root, self.split = Path(root), split
        self.num_frames, self.img_size, self.sampling_rate = int(num_frames), img_size, int(sampling_rate)
        self.train = (split == "train") if train is None else bool(train)
        self.augment = self.train if augment is None else bool(augment)
        self.seed = seed
        self.videos_meta = self._index()
        if not self.videos_meta:
            raise ValueError(f"{self.name}: split {split!r} under {self.root} lists no video; check the split "
                             "files, or regenerate the synthetic copy.")
        self.items = []
        for v, meta in enumerate(self.videos_meta):
            for k in range(len(sliding_windows(meta["num"], self.num_frames, self.sampling_rate, stride))):
                self.items.append((v, k))
        self._stride = stride

    def _index(self) -> list[dict]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, i: int) -> np.random.Generator:
        if self.train:  # fresh randomness per call, reproducible under torch.manual_seed (and per worker)
            return np.random.default_rng([self.seed, i, int(torch.randint(0, 2 ** 31 - 1, ()))])
        return np.random.default_rng([self.seed, i])

    def clip_of(self, i: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
        """(video meta, frame indices (num_frames,)) of item ``i``."""
        v, k = self.items[i]
        meta = self.videos_meta[v]
        if self.train:
            idx = clip_indices(meta["num"], self.num_frames, self.sampling_rate, mode="random", rng=rng)
        else:
            idx = sliding_windows(meta["num"], self.num_frames, self.sampling_rate, self._stride)[k]
        return meta, idx
