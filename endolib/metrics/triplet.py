"""CholecT50 action-triplet recognition AP, as the public `ivtmetrics` package (CAMMA) defines it.

- AP of one class = scikit-learn's `average_precision_score` over frames (non-interpolated:
  sum over score thresholds of (R_n - R_{n-1}) * P_n, tied scores forming one threshold). A class with no
  positive frame has no AP (NaN) and is left out of the mean: mAP = nanmean over classes.
- Components: instrument `i` (6 classes), verb `v` (10), target `t` (15), triplet `ivt` (100). When
  component scores are derived from triplet scores (`ivtmetrics.Recognition.compute_*AP(component=...)`),
  a component class gets the **max** over the triplets that contain it, for labels and scores alike
  (`triplet_to_component`, with the CholecT50 triplet dictionary `TRIPLET_MAP`).
- `mode='global'` (`compute_global_AP`): frames of all videos pooled, one AP per class.
  `mode='video'` (`compute_video_AP`, the CholecT50 benchmark's recommended protocol): AP per class in
  each video (NaN where absent), averaged over videos per class (nanmean), then over classes.
- `ignore_null=True` drops the last 6 triplet classes (94-99, the null-verb/null-target triplets) from
  the `ivt` result, as ivtmetrics does.

Caveat found while testing: ivtmetrics (0.1.5) detects "no positive" classes by the `-0.0` that
scikit-learn 1.1+ returned for them; recent scikit-learn (1.9) returns `+0.0`, so ivtmetrics run with
it silently counts absent classes as AP = 0 and lowers the mAP. We keep the documented NaN rule.
"""
from __future__ import annotations

import numpy as np

from endolib.metrics._common import to_numpy

__all__ = ["TRIPLET_MAP", "NUM_CLASSES", "triplet_to_component", "average_precision", "triplet_ap", "mean_ap"]

NUM_CLASSES = {"i": 6, "v": 10, "t": 15, "ivt": 100}

# CholecT50 triplet dictionary: triplet id (row) -> instrument, verb, target ids (0-based).
_I = "0" * 22 + "1" * 24 + "2" * 19 + "3" * 12 + "4" * 5 + "5" * 12 + "012345"
_V = "2220000000000811111111333333333322222200011111333333335522222221135555555522244444622222777111999999"
_T = ("1,0,10,3,2,4,1,0,12,8,10,11,13,0,2,4,1,0,12,8,10,11,7,5,3,2,4,1,0,8,10,11,9,3,2,1,0,10,1,8,13,2,4,0,"
      "8,10,5,3,2,4,1,0,8,10,5,11,5,3,2,1,0,10,11,0,8,10,9,5,3,2,1,8,10,11,1,0,10,5,3,2,4,1,6,2,4,1,0,10,7,"
      "4,8,0,8,10,14,14,14,14,14,14")
TRIPLET_MAP = np.stack([np.array([int(c) for c in _I]), np.array([int(c) for c in _V]),
                        np.array([int(c) for c in _T.split(",")])], axis=1)   # (100, 3): i, v, t
_COLUMN = {"i": 0, "v": 1, "t": 2}


def triplet_to_component(x, component: str) -> np.ndarray:
    """Component labels/scores from triplet ones: max over the triplets of each class. x: (F, 100) -> (F, K)."""
    a = to_numpy(x, "triplet array").astype(np.float64)
    if a.ndim != 2 or a.shape[1] != 100:
        raise ValueError(f"triplet_to_component: expected (frames, 100) triplet labels or scores, got {a.shape}.")
    if component == "ivt":
        return a
    if component not in _COLUMN:
        raise ValueError(f"triplet_to_component: component must be 'i', 'v', 't' or 'ivt', got {component!r}.")
    ids = TRIPLET_MAP[:, _COLUMN[component]]
    return np.stack([a[:, ids == k].max(axis=1) for k in range(NUM_CLASSES[component])], axis=1)


def _binary_ap(y: np.ndarray, s: np.ndarray) -> float:
    """Non-interpolated AP of one class (sklearn semantics); NaN without positives. y, s: (F,)."""
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]   # last index of each group of tied scores
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1.0)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def average_precision(y_true, scores) -> np.ndarray:
    """Per-class AP over frames. y_true: (F, K) multi-hot, scores: (F, K) -> (K,), NaN for absent classes."""
    y = to_numpy(y_true, "y_true").astype(np.float64)
    s = to_numpy(scores, "scores").astype(np.float64)
    if y.ndim == 1:
        y, s = y[:, None], s[:, None]
    if y.shape != s.shape or y.ndim != 2:
        raise ValueError(f"average_precision: y_true and scores must both be (frames, classes), got "
                         f"{y.shape} and {s.shape}.")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("average_precision: y_true must be multi-hot (0/1) labels.")
    return np.array([_binary_ap(y[:, k], s[:, k]) for k in range(y.shape[1])])


def _as_videos(x, name: str) -> list:
    if isinstance(x, (list, tuple)):
        return [to_numpy(v, name) for v in x]
    return [to_numpy(x, name)]


def triplet_ap(targets, scores, component: str | None = None, mode: str = "global",
               ignore_null: bool = False) -> np.ndarray:
    """Per-class AP (K,), NaN for classes absent from the ground truth.

    targets, scores: (F, K) arrays, or lists of per-video (F_v, K) arrays. `component` in
    {'i', 'v', 't'} with K = 100 first maps triplets to that component (max rule); with K already the
    component's class count (a separate head) the arrays are used as they are."""
    if mode not in ("global", "video"):
        raise ValueError(f"triplet_ap: mode must be 'global' or 'video', got {mode!r}.")
    ys, ss = _as_videos(targets, "targets"), _as_videos(scores, "scores")
    if len(ys) != len(ss):
        raise ValueError(f"triplet_ap: got {len(ys)} target videos but {len(ss)} score videos.")
    if component is not None and component != "ivt" and ys[0].shape[-1] == 100:
        ys = [triplet_to_component(y, component) for y in ys]
        ss = [triplet_to_component(s, component) for s in ss]
    if mode == "global":
        ap = average_precision(np.concatenate(ys), np.concatenate(ss))
    else:
        per_video = np.stack([average_precision(y, s) for y, s in zip(ys, ss)])   # (V, K)
        with np.errstate(invalid="ignore"):
            ap = _nanmean0(per_video)
    if ignore_null and ap.size == 100:
        ap = ap[:-6]
    return ap


def _nanmean0(x: np.ndarray) -> np.ndarray:
    """nanmean over axis 0 without numpy's empty-slice warning (all-NaN columns stay NaN)."""
    n = np.sum(~np.isnan(x), axis=0)
    total = np.nansum(x, axis=0)
    out = np.full(x.shape[1], np.nan)
    np.divide(total, n, out=out, where=n > 0)
    return out


def mean_ap(targets, scores, component: str | None = None, mode: str = "global",
            ignore_null: bool = False) -> dict:
    """{'AP': (K,) per class, 'mAP': mean over the classes present} (ivtmetrics' return format)."""
    ap = triplet_ap(targets, scores, component=component, mode=mode, ignore_null=ignore_null)
    present = ap[~np.isnan(ap)]
    return {"AP": ap, "mAP": float(present.mean()) if present.size else float("nan")}
