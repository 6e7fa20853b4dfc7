"""Deterministic batches addressed by training step, so a resumed run reads exactly the data it would have.

Global sample position q = step * global_batch + j lives in epoch q // L at slot q % L of that epoch's
permutation (seeded by seed + epoch). Rank r of W takes the contiguous slice j in [r*G/W, (r+1)*G/W), so a
2-process run sees the same global batch as a 1-process run. Random augmentation inside the dataset is
seeded per (step, index) and runs in a forked RNG, so workers and resumes do not change it.
"""
import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def _derived_seed(*parts: int) -> int:
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) + 0x632BE59BD9B4E019 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
    return h % (2**31 - 1)


class StepBatchSampler(Sampler):
    """Yields, for steps start..total-1, this rank's list of (step, dataset_index) pairs."""

    def __init__(self, length: int, global_batch: int, seed: int, start_step: int, total_steps: int,
                 rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} must be divisible by the {world_size} processes.")
        if length < 1:
            raise ValueError("the pretraining dataset is empty: generate or point at some videos first.")
        self.length, self.global_batch, self.seed = length, global_batch, seed
        self.start, self.total, self.rank, self.world = start_step, total_steps, rank, world_size
        self._perms = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(_derived_seed(self.seed, epoch))
            self._perms = {epoch: torch.randperm(self.length, generator=g)}
        return self._perms[epoch]

    def indices(self, step: int) -> list:
        per = self.global_batch // self.world
        qs = range(step * self.global_batch + self.rank * per, step * self.global_batch + (self.rank + 1) * per)
        return [(step, int(self._perm(q // self.length)[q % self.length])) for q in qs]

    def __iter__(self):
        for step in range(self.start, self.total):
            yield self.indices(step)

    def __len__(self):
        return max(self.total - self.start, 0)


class SeededItems(Dataset):
    """Wraps a dataset: item (step, i) = dataset[i] with python/numpy/torch RNG seeded by (seed, step, i)
    (and `set_epoch(step)` first when the dataset has it)."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        step, i = key
        s = _derived_seed(self.seed, step, i)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                random.seed(s)
                np.random.seed(s)
                torch.manual_seed(s)
                if hasattr(self.dataset, "set_epoch"):  # e.g. PretrainClips: a fresh clip choice per step
                    self.dataset.set_epoch(step)
                return self.dataset[i]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def collate_videos(items: list) -> torch.Tensor:
    """list of dicts with 'video' (3, T, H, W) (or bare tensors) -> (B, 3, T, H, W)."""
    return torch.stack([it["video"] if isinstance(it, dict) else it for it in items])


def step_generator(seed: int, step: int) -> torch.Generator:
    """CPU generator for the masks of one step (same on every rank: the global batch's masks)."""
    return torch.Generator().manual_seed(_derived_seed(seed, step, 0x4D41534B))


class NoiseClips(Dataset):
    """`length` fixed random clips {'video': (3, T, H, W)} (item i seeded by i): data domain 'noise', for
    tests and throughput benchmarks that must not depend on video files."""

    def __init__(self, length: int = 64, num_frames: int = 16, img_size: int = 224, seed: int = 0):
        self.length, self.shape, self.seed = length, (3, num_frames, img_size, img_size), seed

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 100003 + int(i))
        return {"video": torch.randn(self.shape, generator=g)}
