"""Binary segmentation overlap metrics: Dice and IoU per case and averaged over cases.

A *case* is one leading index of the inputs; every other dimension is pooled. EndoMamba's CVC-12k
test (its `trainer.py`, inherited from Endo-FM / TransUNet `calculate_metric_percase`) feeds one test
clip at a time, so there a case is a whole clip `(T, H, W)`; pass `(N_clips, T, H, W)` to reproduce
that, or `(N_frames, H, W)` for per-frame scores. Masks are binarised with `> threshold`
(EndoMamba binarises the argmax label map with `> 0`; both agree on {0, 1} masks).

Empty-mask conventions (`empty=`):

- `'endomamba'` (default, the CVC-12k numbers of EndoMamba / Endo-FM): prediction and ground truth
  both non-empty -> 2|A∩B| / (|A| + |B|) (IoU: |A∩B| / |A∪B|); prediction non-empty but ground truth
  empty -> 1; prediction empty -> 0 (also when the ground truth is empty too).
- `'standard'`: both empty -> 1, exactly one empty -> 0 (the limit of the formula with 0/0 := 1).
- `'nan'`: both empty -> NaN, left out of the mean; exactly one empty -> 0.

The mean over cases is the plain mean of the per-case values (EndoMamba averages per-clip Dice).
"""
from __future__ import annotations

import numpy as np

from endolib.metrics._common import to_numpy

__all__ = ["dice_per_case", "iou_per_case", "mean_dice", "mean_iou", "EMPTY_CONVENTIONS"]

EMPTY_CONVENTIONS = ("endomamba", "standard", "nan")


def _binary_cases(pred, target, threshold: float):
    """pred, target: (N, ...) -> boolean (N, P) with P = prod(...)."""
    p = to_numpy(pred, "pred")
    t = to_numpy(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"segmentation: pred and target must have the same shape, got {p.shape} and "
                         f"{t.shape}. Resize the prediction to the mask size (or the mask to the prediction).")
    if p.ndim < 2:
        raise ValueError(f"segmentation: expected (N, ...) with one case per leading index, got shape {p.shape}; "
                         "add a leading axis for a single image.")
    p = p.reshape(p.shape[0], -1).astype(np.float64) > threshold
    t = t.reshape(t.shape[0], -1).astype(np.float64) > threshold
    return p, t


def _overlap(pred, target, threshold: float, empty: str, kind: str) -> np.ndarray:
    if empty not in EMPTY_CONVENTIONS:
        raise ValueError(f"segmentation: empty must be one of {EMPTY_CONVENTIONS}, got {empty!r}.")
    p, t = _binary_cases(pred, target, threshold)
    inter = np.sum(p & t, axis=1).astype(np.float64)
    n_p, n_t = p.sum(axis=1).astype(np.float64), t.sum(axis=1).astype(np.float64)
    den = (n_p + n_t) if kind == "dice" else (n_p + n_t - inter)
    num = 2.0 * inter if kind == "dice" else inter
    both = (n_p > 0) & (n_t > 0)
    out = np.zeros(p.shape[0], dtype=np.float64)
    out[both] = num[both] / den[both]
    if empty == "endomamba":
        out[(n_p > 0) & (n_t == 0)] = 1.0
    elif empty == "standard":
        out[(n_p == 0) & (n_t == 0)] = 1.0
    else:
        out[(n_p == 0) & (n_t == 0)] = np.nan
    return out


def dice_per_case(pred, target, threshold: float = 0.5, empty: str = "endomamba") -> np.ndarray:
    """Dice of each case. pred, target: (N, ...) masks or probabilities -> (N,) float64."""
    return _overlap(pred, target, threshold, empty, "dice")


def iou_per_case(pred, target, threshold: float = 0.5, empty: str = "endomamba") -> np.ndarray:
    """IoU (Jaccard) of each case. pred, target: (N, ...) -> (N,) float64."""
    return _overlap(pred, target, threshold, empty, "iou")


def _mean(values: np.ndarray) -> float:
    if values.size == 0 or np.all(np.isnan(values)):
        return float("nan")
    return float(np.nanmean(values))


def mean_dice(pred, target, threshold: float = 0.5, empty: str = "endomamba") -> float:
    """Mean of the per-case Dice (NaN cases of `empty='nan'` are left out). pred, target: (N, ...)."""
    return _mean(dice_per_case(pred, target, threshold, empty))


def mean_iou(pred, target, threshold: float = 0.5, empty: str = "endomamba") -> float:
    """Mean of the per-case IoU (NaN cases of `empty='nan'` are left out). pred, target: (N, ...)."""
    return _mean(iou_per_case(pred, target, threshold, empty))
