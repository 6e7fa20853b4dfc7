"""A pretraining dataset of normalised video clips drawn from several indexed sources with per-source weights.

Each source is a folder of videos / frame folders (indexed on construction with
``endolib.data.index.build_index``) or a ready index file. Unreadable entries of the index are left
out and logged (the index keeps them with their reason). Items are the readable videos of all
sources; ``sample_weights()`` gives each item the probability mass that makes source ``s`` drawn with
probability ``weights[s] / sum(weights)``, and ``sampler(num_samples)`` wraps it in a
``torch.utils.data.WeightedRandomSampler``. Within a source, a video is drawn in proportion to its
frame count (``within='frames'``, so long videos give proportionally more clips) or uniformly
(``within='videos'``).

Clips are reproducible: item ``i`` in epoch ``e`` always gives the same clip for a given ``seed``
(``set_epoch(e)`` between epochs), whatever the number of DataLoader workers.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from endolib.data.index import build_index, full_paths, load_index
from endolib.data.sampling import clip_indices

log = logging.getLogger(__name__)


def _load_source(name: str, src, checksum: bool) -> pd.DataFrame:
    if isinstance(src, pd.DataFrame):
        df = src.copy()
    else:
        src = Path(src)
        if src.is_file():
            df = load_index(src)
        elif src.is_dir():
            df = build_index(src, source=name, checksum=checksum, check="header", progress=False)
        else:
            raise FileNotFoundError(f"pretraining source {name!r}: {src} is neither a folder of videos nor an "
                                    "index file. Generate the corpus (endolib.data.synthetic.ensure"
                                    "('pretrain_corpus')) or point ENDOLIB_DATA at your data root.")
    df["source"] = name
    bad = df[df.status != "ok"]
    for r in bad.itertuples():
        log.warning("pretraining source %s: skipping unreadable %s (%s)", name, r.path, r.error)
    return df[(df.status == "ok") & (df.frames > 0)]


class PretrainClips(Dataset):
    """``{"video": float (3, T, H, W) ImageNet-normalised, "source": str, "path": str}`` clips over many sources.

    sources: ``{name: folder | index file | index DataFrame}``; weights: ``{name: weight}`` (None: each
    source in proportion to its share of the items' mass, i.e. no re-weighting).
    """

    def __init__(self, sources: dict, weights: dict | None = None, num_frames: int = 16, sampling_rate: int = 4,
                 img_size: int = 64, within: str = "frames", seed: int = 0, checksum: bool = False,
                 max_retries: int = 3):
        if not sources:
            raise ValueError("PretrainClips needs at least one source: {name: folder_or_index}.")
        if within not in ("frames", "videos"):
            raise ValueError(f"within must be 'frames' or 'videos'; got {within!r}.")
        unknown = set(weights or {}) - set(sources)
        if unknown:
            raise ValueError(f"weights name sources {sorted(unknown)} that are not in sources {sorted(sources)}.")
        frames = [_load_source(name, src, checksum) for name, src in sources.items()]
        empty = [n for n, df in zip(sources, frames) if len(df) == 0]
        if empty:
            raise ValueError(f"pretraining sources {empty} have no readable video; check their index "
                             "(status/error columns) or drop them.")
        self.items = pd.concat(frames, ignore_index=True)
        self.paths = full_paths(self.items)
        self.weights = {n: float((weights or {}).get(n, 1.0 if weights else np.nan)) for n in sources}
        if any(w < 0 for w in self.weights.values()):
            raise ValueError(f"source weights must be >= 0; got {self.weights}.")
        self.num_frames, self.sampling_rate, self.img_size = num_frames, sampling_rate, img_size
        self.within, self.seed, self.epoch, self.max_retries = within, seed, 0, max_retries
        self.failures: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def sample_weights(self) -> np.ndarray:
        """Probability of each item (sums to 1): source mass by ``weights``, spread within a source by ``within``."""
        mass = self.items.frames.to_numpy(float) if self.within == "frames" else np.ones(len(self.items))
        if all(np.isnan(w) for w in self.weights.values()):
            return mass / mass.sum()  # no weights given: the natural mix
        p = np.zeros(len(self.items))
        for name, w in self.weights.items():
            sel = (self.items.source == name).to_numpy()
            p[sel] = w * mass[sel] / mass[sel].sum()
        if p.sum() <= 0:
            raise ValueError(f"all source weights are zero: {self.weights}.")
        return p / p.sum()

    def source_probabilities(self) -> dict:
        """Probability that a drawn clip comes from each source."""
        p = self.sample_weights()
        return {n: float(p[(self.items.source == n).to_numpy()].sum()) for n in self.weights}

    def sampler(self, num_samples: int | None = None, generator: torch.Generator | None = None):
        """A ``WeightedRandomSampler`` (with replacement) drawing ``num_samples`` items per epoch (default len)."""
        return WeightedRandomSampler(torch.as_tensor(self.sample_weights(), dtype=torch.double),
                                     num_samples or len(self), replacement=True, generator=generator)

    def _frames(self, i: int, rng: np.random.Generator) -> np.ndarray:
        from endolib.data.io import read_frames_folder, read_video

        row = self.items.iloc[i]
        idx = clip_indices(int(row.frames), self.num_frames, self.sampling_rate, "random", rng)
        read = read_video if row.kind == "video" else read_frames_folder
        span = read(self.paths[i], start=int(idx[0]), num=int(idx[-1] - idx[0] + 1))
        return span[np.minimum(idx - idx[0], len(span) - 1)]  # header counts can overstate: clamp

    def __getitem__(self, i: int) -> dict:
        from endolib.data.io import VideoReadError
        from endolib.data.transforms import to_tensor_clip

        rng = np.random.default_rng([self.seed, self.epoch, i])
        for attempt in range(self.max_retries + 1):
            j = i if attempt == 0 else int(rng.integers(len(self)))
            try:
                frames = self._frames(j, rng)
            except (VideoReadError, ValueError) as e:  # a file that broke after indexing: note it, draw another
                self.failures.append((str(self.paths[j]), str(e)))
                log.warning("PretrainClips: %s failed (%s); drawing another video", self.paths[j], e)
                continue
            video = to_tensor_clip(frames, self.img_size)  # (3, T, H, W)
            return {"video": video, "source": str(self.items.source.iloc[j]), "path": str(self.paths[j])}
        raise VideoReadError(f"PretrainClips: {self.max_retries + 1} videos in a row failed to read, last "
                             f"{self.failures[-1]}. Rebuild the index with check='full' to find the broken files.")
