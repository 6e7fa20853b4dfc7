"""CholecT50 loader (official v2 release layout): ``videos/VIDxx/000000.png`` frames at 1 fps + ``labels/VIDxx.json``.

Each json maps a frame id to its triplet instances, 15 numbers each
``[triplet, instrument, SC, BX, BY, BW, BH, verb, target, SC, BX, BY, BW, BH, phase]`` (-1 = none).
Items carry multi-hot ``"instrument"`` (T, 6), ``"verb"`` (T, 10), ``"target"`` (T, 15), ``"triplet"``
(T, 100) and ``"phase"`` (T,) long. Splits are the official lists (``variant`` 'cholect50' (default),
'cholect50-challenge', or 'cholect50-crossval' with ``fold`` 1..5: the fold is the test set, the last 5
videos of the remaining ones are val, as the official data loader does).
"""
from __future__ import annotations

import json
import logging

import numpy as np
import torch

from endolib.data.datasets.base import check_label, require, resolve_root
from endolib.data.datasets.classes import (CHOLECT50_CROSSVAL, CHOLECT50_INSTRUMENTS, CHOLECT50_PHASES,
                                           CHOLECT50_SPLITS, CHOLECT50_TARGETS, CHOLECT50_TRIPLETS, CHOLECT50_VERBS)
from endolib.data.datasets.videobase import TimelineDataset

log = logging.getLogger(__name__)
HEADS = {"triplet": (0, CHOLECT50_TRIPLETS), "instrument": (1, CHOLECT50_INSTRUMENTS), "verb": (7, CHOLECT50_VERBS),
         "target": (8, CHOLECT50_TARGETS)}


def split_videos(variant: str, split: str, fold: int = 1) -> list[int]:
    """Official video ids of a split of a CholecT50 variant."""
    if variant == "cholect50-crossval":
        test = CHOLECT50_CROSSVAL[fold]
        rest = [v for k, vs in CHOLECT50_CROSSVAL.items() if k != fold for v in vs]
        return {"train": rest[:-5], "val": rest[-5:], "test": test}[split]
    if variant not in CHOLECT50_SPLITS:
        raise ValueError(f"cholect50: unknown variant {variant!r}; expected one of "
                         f"{sorted(CHOLECT50_SPLITS) + ['cholect50-crossval']}.")
    return CHOLECT50_SPLITS[variant][split]


def parse_labels(doc: dict, num: int, where: str) -> dict:
    """Multi-hot arrays (num, classes) per head and phase (num,) from a CholecT50 json document."""
    out = {k: np.zeros((num, len(cl)), np.float32) for k, (_, cl) in HEADS.items()}
    phase = np.zeros(num, np.int64)
    for frame, instances in doc["annotations"].items():
        t = int(frame)
        if t >= num:
            continue
        for inst in instances:
            if len(inst) != 15:
                raise ValueError(f"cholect50: {where} frame {frame}: a triplet instance has {len(inst)} values; "
                                 "expected 15 (ivt, i, SC, BX, BY, BW, BH, v, t, SC, BX, BY, BW, BH, phase).")
            for key, (col, classes) in HEADS.items():
                if inst[col] != -1:
                    out[key][t, check_label(int(inst[col]), classes, "cholect50", f"{where} frame {frame}")] = 1
            if inst[14] != -1:
                phase[t] = check_label(int(inst[14]), CHOLECT50_PHASES, "cholect50", f"{where} frame {frame}")
    out["phase"] = phase
    return out


class CholecT50(TimelineDataset):
    """CholecT50 triplets (see module docstring)."""

    name, classes = "cholect50", CHOLECT50_TRIPLETS
    label_keys = ("instrument", "verb", "target", "triplet", "phase")
    layout = ("CholecT50/\n  videos/VID01/000000.png 000001.png ...   (1 fps)\n  labels/VID01.json   "
              "{video, fps, num_frames, categories, annotations: {frame: [[15 values], ...]}}")
    instruments, verbs, targets = CHOLECT50_INSTRUMENTS, CHOLECT50_VERBS, CHOLECT50_TARGETS

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, variant: str = "cholect50",
                 fold: int = 1, **kw):
        self.dir = resolve_root(root, "CholecT50", "labels", self.name, self.layout)
        self.variant, self.fold = variant, fold
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)

    def _index(self):
        from endolib.data.io import list_frames
        out = []
        for k in split_videos(self.variant, self.split, self.fold):
            vid = f"VID{k:02d}"
            folder = self.dir / "videos" / vid
            if not folder.is_dir():
                continue
            path = require(self.dir / "labels" / f"{vid}.json", self.name, f"label file of {vid}", self.layout)
            try:
                doc = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"{self.name}: {path} is not valid JSON ({e}); re-download it.") from e
            if "annotations" not in doc:
                raise ValueError(f"{self.name}: {path} has no 'annotations' key; expected the CholecT50 v2 json "
                                 "format (video, fps, num_frames, categories, annotations).")
            frames = list_frames(folder)
            num = min(len(frames), int(doc.get("num_frames", len(frames))))
            out.append(dict(id=vid, folder=folder, frames=frames[:num], num=num,
                            labels=parse_labels(doc, num, str(path))))
        return out

    label_dtypes = {"phase": torch.long}
