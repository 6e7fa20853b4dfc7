"""Loaders for the colonoscopy benchmarks in their official layouts: PolypDiag, CVC-12k, KUMC.

Items: ``{"video": (3, T, S, S)}`` plus ``"label"`` (PolypDiag), ``"mask"`` (T, S, S) {0, 1} (CVC-12k),
``"boxes"`` list of T ``(k, 4)`` xyxy tensors in pixels of the resized frame and ``"box_labels"`` (KUMC).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

from endolib.data.datasets.base import ClipDataset, check_label, require, resolve_root
from endolib.data.datasets.classes import CVC12K_CLASSES, KUMC_CLASSES, POLYPDIAG_CLASSES
from endolib.data.transforms import augment_clip, resize_masks, scale_boxes, to_tensor_clip

log = logging.getLogger(__name__)


def _read_image(path: Path, mode: str = "RGB") -> np.ndarray:
    from PIL import Image

    from endolib.data.io import VideoReadError
    try:
        with Image.open(path) as im:
            if mode == "L" and im.mode not in ("L", "1", "P", "RGB", "RGBA"):  # 16-bit masks
                return (np.asarray(im) > 0).astype(np.uint8) * 255
            return np.asarray(im.convert(mode))
    except FileNotFoundError:
        raise
    except Exception as e:
        raise VideoReadError(f"cannot read image {path} ({type(e).__name__}: {e}): corrupt or not an image. "
                             "Re-download or re-extract that frame.") from e


class PolypDiag(ClipDataset):
    """PolypDiag (Endo-FM distribution): ``videos/*.mp4`` + ``splits/{train,val}.txt`` lines ``<video> <0|1>``."""

    name, classes = "polypdiag", POLYPDIAG_CLASSES
    layout = ("PolypDiag/\n  videos/<name>.mp4 ...\n  splits/train.txt   lines '<name>.mp4 <label>' "
              "(0 normal, 1 abnormal)\n  splits/val.txt")

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, mode: str | None = None, **kw):
        self.dir = resolve_root(root, "PolypDiag", "splits", self.name, self.layout)
        self.mode = mode
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)
        self.items = [(v, 0) for v in range(len(self.videos_meta))]  # one video-level item per video

    @property
    def labels(self) -> list[int]:
        """The label of every item, without decoding any video."""
        return [self.videos_meta[v]["label"] for v, _ in self.items]

    def _index(self):
        split = "val" if self.split == "test" else self.split
        lst = require(self.dir / "splits" / f"{split}.txt", self.name, f"the {split} split list", self.layout)
        out = []
        for n, line in enumerate(lst.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{self.name}: line {n} of {lst} is {line!r}; expected '<video path> <label>'.")
            path = self.dir / "videos" / parts[0]
            require(path, self.name, f"video listed on line {n} of {lst}", self.layout)
            out.append(dict(path=path, num=1, label=check_label(parts[1], self.classes, self.name, f"{lst} line {n}")))
        return out

    def __getitem__(self, i):
        from endolib.data.io import read_video
        from endolib.data.sampling import clip_indices
        meta, rng = self.videos_meta[self.items[i][0]], self._rng(i)
        frames = read_video(meta["path"])
        mode = self.mode or ("random" if self.train else "uniform")
        idx = clip_indices(len(frames), self.num_frames, self.sampling_rate, mode=mode, rng=rng)
        clip = frames[idx]
        if self.augment:
            clip, _, _ = augment_clip(clip, rng)
        return {"video": to_tensor_clip(clip, self.img_size), "label": meta["label"]}


class CVC12k(ClipDataset):
    """CVC-12k as Endo-FM reads it: ``CVC-ClinicDB/{Original,Ground Truth}/<i>.tif`` + ``videolist.txt``."""

    name, classes = "cvc12k", CVC12K_CLASSES
    layout = ("CVC-12k/\n  videolist.txt      lines '<video> <first frame> <number of frames>'\n"
              "  CVC-ClinicDB/Original/<i>.tif       frames\n  CVC-ClinicDB/Ground Truth/<i>.tif   masks "
              "(255 = polyp)\n(the first `num_train` = 20 videos are train, the rest val/test)")

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, num_train: int = 20, **kw):
        self.dir = resolve_root(root, "CVC-12k", "videolist.txt", self.name, self.layout)
        self.num_train = num_train
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)

    def _index(self):
        lst = self.dir / "videolist.txt"
        rows = [ln.split() for ln in lst.read_text().splitlines() if ln.strip()]
        rows = rows[:self.num_train] if self.split == "train" else rows[self.num_train:]
        out = []
        for r in rows:
            if len(r) < 3:
                raise ValueError(f"{self.name}: {lst} line {r!r}: expected '<video> <first frame> <count>'.")
            first, n = int(r[1]), int(r[2])
            names = [f"{j}.tif" for j in range(first, first + n)]
            for sub in ("Original", "Ground Truth"):
                require(self.dir / "CVC-ClinicDB" / sub / names[0], self.name, f"{sub} frame of video {r[0]}",
                        self.layout)
            out.append(dict(video=r[0], names=names, num=n))
        return out

    def __getitem__(self, i):
        meta, idx = self.clip_of(i, rng := self._rng(i))
        base = self.dir / "CVC-ClinicDB"
        frames, masks = [], []
        for j in idx:
            frames.append(_read_image(require(base / "Original" / meta["names"][j], self.name, "frame", self.layout)))
            gt = require(base / "Ground Truth" / meta["names"][j], self.name, "mask (annotation)", self.layout)
            masks.append(_read_image(gt, "L") >= 128)
        frames, masks = np.stack(frames), np.stack(masks)
        if self.augment:
            frames, masks, _ = augment_clip(frames, rng, masks=masks)
        return {"video": to_tensor_clip(frames, self.img_size), "mask": resize_masks(masks, self.img_size)}


def parse_voc(path: Path, classes, name: str) -> tuple[np.ndarray, list[int]]:
    """Boxes (k, 4) xyxy in pixel-edge coordinates (VOC's 1-based inclusive xmin..xmax -> xmin-1..xmax) and labels."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as e:
        raise ValueError(f"{name}: annotation {path} is not valid XML ({e}); re-download it.") from e
    boxes, labels = [], []
    for obj in tree.getroot().iter("object"):
        labels.append(check_label(obj.findtext("name", "").strip(), classes, name, str(path)))
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([x0 - 1, y0 - 1, x1, y1])
    return np.asarray(boxes, np.float32).reshape(-1, 4), labels


class KUMC(ClipDataset):
    """KUMC PolypsSet: ``<split>2019/Image/<video>/<n>.jpg`` + ``<split>2019/Annotation/<video>/<n>.xml`` (VOC)."""

    name, classes = "kumc", KUMC_CLASSES
    layout = ("KUMC/\n  train2019/Image/<video>/<n>.jpg   train2019/Annotation/<video>/<n>.xml (Pascal VOC, "
              "<name> adenomatous|hyperplastic)\n  val2019/...  test2019/...   (a flat Image/ folder is read as one "
              "sequence)")

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, **kw):
        self.dir = resolve_root(root, "KUMC", f"{split}2019", self.name, self.layout)
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)

    def _index(self):
        from endolib.data.io import IMAGE_EXTS, list_frames
        img_root = require(self.dir / f"{self.split}2019" / "Image", self.name, "image folder", self.layout)
        subdirs = sorted((d for d in img_root.iterdir() if d.is_dir()), key=lambda d: (len(d.name), d.name))
        folders = subdirs or [img_root]
        out = []
        for folder in folders:
            frames = [f for f in list_frames(folder) if f.suffix.lower() in IMAGE_EXTS]
            rel = folder.relative_to(img_root)
            ann = [self.dir / f"{self.split}2019" / "Annotation" / rel / (f.stem + ".xml") for f in frames]
            for a, f in zip(ann, frames):
                require(a, self.name, f"annotation of frame {f}", self.layout)
            out.append(dict(video=str(rel), frames=frames, ann=ann, num=len(frames)))
        return out

    def __getitem__(self, i):
        meta, idx = self.clip_of(i, rng := self._rng(i))
        frames = np.stack([_read_image(meta["frames"][j]) for j in idx])
        parsed = [parse_voc(meta["ann"][j], self.classes, self.name) for j in idx]
        boxes = [np.concatenate([b, np.asarray(lb, np.float32)[:, None]], 1) for b, lb in parsed]  # (k, 5)
        if self.augment:
            frames, _, boxes = augment_clip(frames, rng, boxes=boxes)
        labels = [torch.as_tensor(b[:, 4], dtype=torch.long) for b in boxes]
        hw = frames.shape[1:3]
        size = (self.img_size, self.img_size) if np.isscalar(self.img_size) else tuple(self.img_size)
        return {"video": to_tensor_clip(frames, self.img_size), "boxes": scale_boxes(boxes, hw, size),
                "box_labels": labels}

