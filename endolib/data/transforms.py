"""Turn uint8 video frames into normalised model input, and augment a clip (with its masks and boxes) consistently.

- ``to_tensor_clip(frames (T, H, W, 3) uint8, img_size) -> (3, T, S, S)`` float, ImageNet-normalised.
- ``denormalize(x)`` undoes the normalisation for display (values in [0, 1]).
- ``random_resized_crop`` / ``hflip`` / ``augment_clip``: one random crop and one flip for the whole clip,
  applied identically to frames, masks ``(T, H, W)`` and xyxy boxes (list of ``(k, 4)``), so labels stay aligned.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _size(img_size) -> tuple[int, int]:
    return (int(img_size), int(img_size)) if np.isscalar(img_size) else (int(img_size[0]), int(img_size[1]))


def to_tensor_clip(frames, img_size) -> torch.Tensor:
    """frames: (T, H, W, 3) uint8 (numpy or torch) -> (3, T, h, w) float32, resized (bilinear) and normalised."""
    x = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"to_tensor_clip expects frames shaped (T, H, W, 3); got {tuple(x.shape)}.")
    if x.dtype != torch.uint8:
        raise ValueError(f"to_tensor_clip expects uint8 frames (0..255); got {x.dtype}. "
                         "Convert with (x * 255).round().clip(0, 255).astype(np.uint8).")
    x = x.permute(0, 3, 1, 2).float().div_(255)  # (T, 3, H, W)
    size = _size(img_size)
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).permute(1, 0, 2, 3).contiguous()  # (3, T, h, w)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalisation; channel axis is dim 0 of (3, ...) or dim 1 of (B, 3, ...). Clamped to [0, 1]."""
    dim = 0 if x.shape[0] == 3 else 1
    shape = [1] * x.ndim
    shape[dim] = 3
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(shape)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(shape)
    return (x * std + mean).clamp(0, 1)


def resize_masks(masks, img_size) -> torch.Tensor:
    """masks: (T, H, W) {0, 1} -> (T, h, w) float {0, 1} by nearest-neighbour resizing."""
    m = torch.as_tensor(np.asarray(masks, dtype=np.float32))
    size = _size(img_size)
    if tuple(m.shape[-2:]) != size:
        m = F.interpolate(m[:, None], size=size, mode="nearest")[:, 0]
    return m


def scale_boxes(boxes, from_hw, to_hw) -> list[torch.Tensor]:
    """Rescale per-frame xyxy boxes (list of (k, 4)) from a (H, W) frame to a (h, w) frame."""
    sy, sx = to_hw[0] / from_hw[0], to_hw[1] / from_hw[1]
    scale = torch.tensor([sx, sy, sx, sy], dtype=torch.float32)
    return [torch.as_tensor(_as_boxes(b)[:, :4]) * scale for b in boxes]


def random_resized_crop(rng: np.random.Generator, h: int, w: int, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3)):
    """(y0, x0, ch, cw) of a crop covering a random area fraction in ``scale`` with aspect ratio in ``ratio``."""
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        ar = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw, ch = int(round(np.sqrt(area * ar))), int(round(np.sqrt(area / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    return 0, 0, h, w


def _as_boxes(b) -> np.ndarray:
    b = np.asarray(b, np.float32)
    return b.reshape(-1, 4) if b.ndim == 1 else b


def crop_boxes(boxes, y0: int, x0: int, ch: int, cw: int, min_size: float = 1.0):
    """Shift xyxy boxes into a crop, clip them to it, drop those left thinner than ``min_size`` px.

    Boxes are ``(k, 4 + extra)``: columns after the 4th (e.g. a class id) travel with their box.
    """
    out = []
    for b in map(_as_boxes, boxes):
        xy = np.clip(b[:, :4] - np.array([x0, y0, x0, y0], np.float32), 0, [cw, ch, cw, ch])
        keep = ((xy[:, 2] - xy[:, 0]) >= min_size) & ((xy[:, 3] - xy[:, 1]) >= min_size)
        out.append(np.concatenate([xy, b[:, 4:]], 1)[keep])
    return out


def hflip_boxes(boxes, w: int):
    """Mirror xyxy boxes ``(k, 4 + extra)`` of a frame of width ``w``."""
    out = []
    for b in map(_as_boxes, boxes):
        f = b.copy()
        f[:, 0], f[:, 2] = w - b[:, 2], w - b[:, 0]
        out.append(f)
    return out


def augment_clip(frames: np.ndarray, rng: np.random.Generator, masks=None, boxes=None, scale=(0.6, 1.0),
                 flip_p: float = 0.5):
    """One random resized crop and (with probability ``flip_p``) one horizontal flip for the whole clip.

    frames (T, H, W, 3) uint8; masks (T, H, W) or None; boxes list of (k, 4) xyxy pixels or None.
    Returns (frames, masks, boxes) cropped and flipped alike (not resized: ``to_tensor_clip`` does that).
    """
    _, h, w, _ = frames.shape
    y0, x0, ch, cw = random_resized_crop(rng, h, w, scale)
    frames = frames[:, y0:y0 + ch, x0:x0 + cw]
    masks = None if masks is None else np.asarray(masks)[:, y0:y0 + ch, x0:x0 + cw]
    boxes = None if boxes is None else crop_boxes(boxes, y0, x0, ch, cw)
    if rng.uniform() < flip_p:
        frames = frames[:, :, ::-1]
        masks = None if masks is None else masks[:, :, ::-1]
        boxes = None if boxes is None else hflip_boxes(boxes, cw)
    return np.ascontiguousarray(frames), (None if masks is None else np.ascontiguousarray(masks)), boxes
