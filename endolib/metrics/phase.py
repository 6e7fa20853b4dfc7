"""Surgical phase recognition metrics: the official Cholec80 / M2CAI16 evaluation, and EndoMamba's pooled one.

**Official (MATLAB) protocol** — a port of the challenge scripts `Evaluate.m` + `Main.m` (as shipped,
e.g., in the TMRNet / SV-RCNet repositories under `eval/.../matlab-eval`), labels 0-based here:

Per video (`evaluate_video`), with `correct[f]` = prediction equals ground truth at frame f:
- accuracy = mean(correct);
- for each phase p present in the ground truth: with U = frames where gt == p or pred == p and
  TP = #correct frames in U: Jaccard = TP / |U|, precision = TP / #(pred == p), recall = TP / #(gt == p);
  a phase absent from the video's ground truth gets NaN for all three (left out of every mean).
  A division by zero gives NaN (0/0) or +inf (TP > 0 over 0, only possible when relaxed), as in MATLAB.
- **relaxed boundary** (`relaxed=True`): for each ground-truth segment of phase p, within its first
  `t = floor(10 s * fps)` frames (clipped to the segment length) a prediction of an *earlier*
  neighbouring phase counts as correct (pred - gt = -1; also -2 for the last two phases of
  Cholec80 / M2CAI16), and within its last t frames a *later* neighbouring phase (+1; also +2 for the
  four phases named in the script) counts as correct. `rules` picks the script: 'cholec80' (7 phases),
  'm2cai16' (8 phases) or 'general' (only the ±1 rule, for any phase count). TP of a phase then also
  counts relaxed frames of the union, so precision / recall can exceed 1; `Main.m` clips them to 1.
  `matlab_indexing=True` (default) reproduces a quirk of the script exactly: MATLAB's
  `curDiff(curDiff(end-t+1:end)==1) = 0` applies the end-of-segment mask to the *first* t frames of
  the segment; `False` applies it to the last t frames, as the comment in the script intends.

Over videos (`phase_metrics`, `average='phase'`, as `Main.m`): values above 1 are clipped to 1; each
phase's metric is averaged over the videos where it is defined (nanmean), the reported value is the
mean over phases and the ± is the standard deviation *over phases* (N-1). Accuracy is averaged over
videos, ± = std over videos (N-1; 0 for one video, as MATLAB's `std`). `average='video'` instead
averages over phases within each video, then over videos (± over videos), the other convention in
use (see Funke et al., "Metrics Matter in Surgical Phase Recognition", arXiv 2305.13961).
Deviation: `Main.m` takes a plain `mean` over phases for Jaccard and recall (NaN if some phase never
occurs in any test video); we use nanmean throughout, identical whenever every phase occurs.

**Pooled protocol** (`pooled_phase_metrics`) — what EndoMamba's AutoLaparo `evaluation.py` reports:
video-level accuracy (mean ± population std over videos) plus precision / recall / Jaccard / F1
computed on all test frames pooled, macro-averaged over classes (sklearn semantics, 0 for 0/0), with
± = population std of the per-class values.

All values are fractions in [0, 1]; the MATLAB scripts print percentages.
"""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from endolib.metrics._common import labels_1d, safe_div

__all__ = ["RELAXED_RULES", "relaxed_correct", "evaluate_video", "phase_metrics",
           "per_phase_metrics", "pooled_phase_metrics"]

log = logging.getLogger(__name__)

# phase (0-based) -> (allowed pred-gt at the segment start, allowed pred-gt at the segment end)
_GENERAL = ((-1,), (1,))
RELAXED_RULES = {
    "cholec80": {"num_phases": 7, 3: ((-1,), (1, 2)), 4: ((-1,), (1, 2)),
                 5: ((-1, -2), (1, 2)), 6: ((-1, -2), (1, 2))},
    "m2cai16": {"num_phases": 8, 4: ((-1,), (1, 2)), 5: ((-1,), (1, 2)),
                6: ((-1, -2), (1, 2)), 7: ((-1, -2), (1, 2))},
    "general": {"num_phases": None},
}
METRICS = ("jaccard", "precision", "recall")


def _segments(mask: np.ndarray):
    """(start, end) inclusive index pairs of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2], edges[1::2] - 1))


def _check_rules(rules: str, num_classes: int) -> dict:
    if rules not in RELAXED_RULES:
        raise ValueError(f"relaxed boundary: rules must be one of {list(RELAXED_RULES)}, got {rules!r}.")
    table = RELAXED_RULES[rules]
    if table["num_phases"] not in (None, num_classes):
        raise ValueError(f"relaxed boundary: rules={rules!r} is written for {table['num_phases']} phases, "
                         f"got num_classes={num_classes}; pass rules='general' (±1 rule) or the matching set.")
    return table


def relaxed_correct(gt, pred, num_classes: int, fps: float = 1.0, rules: str = "cholec80",
                    matlab_indexing: bool = True) -> np.ndarray:
    """Frames counted correct under the 10-second relaxed boundary. gt, pred: (T,) -> (T,) bool."""
    g, p = labels_1d(gt, "gt"), labels_1d(pred, "pred")
    table = _check_rules(rules, num_classes)
    window = int(math.floor(10.0 * fps + 1e-9))
    diff = p - g
    updated = diff.copy()
    for phase in range(num_classes):
        late, early = table.get(phase, _GENERAL)
        for s, e in _segments(g == phase):
            cur = diff[s:e + 1].copy()
            t = min(window, cur.size)
            cur[:t][np.isin(cur[:t], late)] = 0                    # late transition at the start
            end_mask = np.isin(cur[cur.size - t:], early)          # early transition at the end
            if matlab_indexing:
                cur[:t][end_mask] = 0
            else:
                cur[cur.size - t:][end_mask] = 0
            updated[s:e + 1] = cur
    return updated == 0


def _validate_pair(gt, pred, num_classes: int):
    g, p = labels_1d(gt, "gt"), labels_1d(pred, "pred")
    if g.shape != p.shape or g.size == 0:
        raise ValueError(f"phase metrics: gt and pred must be non-empty and of equal length, got {g.size} and {p.size}.")
    lo, hi = min(g.min(), p.min()), max(g.max(), p.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"phase metrics: labels must lie in [0, {num_classes}), got range [{lo}, {hi}]; "
                         "check num_classes or map the labels to 0-based phase indices.")
    return g, p


def evaluate_video(gt, pred, num_classes: int, fps: float = 1.0, relaxed: bool = False,
                   rules: str = "cholec80", matlab_indexing: bool = True) -> dict:
    """Evaluate.m for one video. gt, pred: (T,) -> {'accuracy': float, 'jaccard'|'precision'|'recall': (P,)}.

    Per-phase values are NaN for phases absent from the ground truth, and NOT yet clipped to 1."""
    g, p = _validate_pair(gt, pred, num_classes)
    correct = relaxed_correct(g, p, num_classes, fps, rules, matlab_indexing) if relaxed else (g == p)
    out = {k: np.full(num_classes, np.nan) for k in METRICS}
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in range(num_classes):
            in_gt, in_pred = g == c, p == c
            if not in_gt.any():
                continue
            union = in_gt | in_pred
            tp = float(np.sum(correct[union]))
            out["jaccard"][c] = tp / union.sum()
            out["precision"][c] = np.float64(tp) / np.float64(in_pred.sum())
            out["recall"][c] = tp / in_gt.sum()
    out["accuracy"] = float(np.mean(correct))
    return out


def _std(x: np.ndarray) -> float:
    """MATLAB nanstd: N-1 normalisation over the non-NaN values, 0 for a single value."""
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan")
    return 0.0 if x.size == 1 else float(np.std(x, ddof=1))


def _nanmean(x, axis=None):
    """np.nanmean without the 'Mean of empty slice' warning: an all-NaN phase is a defined NaN here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _per_video(gts, preds, num_classes, **kw):
    if len(gts) != len(preds) or len(gts) == 0:
        raise ValueError(f"phase metrics: expected one gt and one pred sequence per video, got "
                         f"{len(gts)} gts and {len(preds)} preds.")
    vids = [evaluate_video(g, p, num_classes, **kw) for g, p in zip(gts, preds)]
    mats = {k: np.minimum(np.stack([v[k] for v in vids], axis=1), 1.0) for k in METRICS}  # (P, V), clipped
    acc = np.array([v["accuracy"] for v in vids])
    return mats, acc


def per_phase_metrics(gts, preds, num_classes: int, fps: float = 1.0, relaxed: bool = False,
                      rules: str = "cholec80", matlab_indexing: bool = True) -> dict:
    """Each phase's Jaccard / precision / recall averaged over the videos where it occurs -> {k: (P,)}."""
    mats, _ = _per_video(gts, preds, num_classes, fps=fps, relaxed=relaxed, rules=rules,
                         matlab_indexing=matlab_indexing)
    return {k: _nanmean(m, axis=1) for k, m in mats.items()}


def phase_metrics(gts, preds, num_classes: int, fps: float = 1.0, relaxed: bool = False,
                  rules: str = "cholec80", average: str = "phase", matlab_indexing: bool = True) -> dict:
    """Official metrics over videos. gts, preds: lists of (T_v,) label sequences -> dict of floats.

    Keys: accuracy, accuracy_std, jaccard, jaccard_std, precision, precision_std, recall, recall_std,
    num_videos. `average='phase'` is Main.m (std over phases); `'video'` averages per video first."""
    if average not in ("phase", "video"):
        raise ValueError(f"phase_metrics: average must be 'phase' (Main.m) or 'video', got {average!r}.")
    mats, acc = _per_video(gts, preds, num_classes, fps=fps, relaxed=relaxed, rules=rules,
                           matlab_indexing=matlab_indexing)
    res = {"accuracy": float(np.mean(acc)), "accuracy_std": _std(acc)}
    for k, m in mats.items():
        axis = 1 if average == "phase" else 0   # first reduce over videos (phase) or over phases (video)
        first = _nanmean(m, axis=axis)
        res[k] = float(_nanmean(first))
        res[f"{k}_std"] = _std(first)
    res["num_videos"] = len(acc)
    return res


def pooled_phase_metrics(gts, preds, num_classes: int | None = None) -> dict:
    """EndoMamba AutoLaparo protocol: video accuracy + frame-pooled macro P/R/Jaccard/F1 -> dict of floats."""
    if len(gts) != len(preds) or len(gts) == 0:
        raise ValueError(f"pooled_phase_metrics: expected one gt and one pred per video, got {len(gts)} and {len(preds)}.")
    pairs = [(labels_1d(g, "gt"), labels_1d(p, "pred")) for g, p in zip(gts, preds)]
    acc_v = np.array([np.mean(g == p) for g, p in pairs])
    g = np.concatenate([a for a, _ in pairs])
    p = np.concatenate([b for _, b in pairs])
    present = np.unique(np.concatenate([g, p]))               # sklearn's macro label set
    k = int(num_classes) if num_classes is not None else int(g.max()) + 1   # the script's range(max+1)
    res = {"accuracy_frames": float(np.mean(g == p)), "accuracy_video": float(np.mean(acc_v)),
           "accuracy_video_std": float(np.std(acc_v))}
    macro, spread = _per_class(g, p, present), _per_class(g, p, np.arange(k))
    for name in ("precision", "recall", "jaccard", "f1"):
        res[name] = float(np.mean(macro[name]))
        res[f"{name}_std"] = float(np.nanstd(spread[name]))
    return res


def _per_class(g: np.ndarray, p: np.ndarray, labels) -> dict:
    """sklearn-style per-class precision / recall / Jaccard / F1 (0 for 0/0). g, p: (F,) pooled frames."""
    tp = np.array([np.sum((g == c) & (p == c)) for c in labels], dtype=np.float64)
    n_p = np.array([np.sum(p == c) for c in labels], dtype=np.float64)
    n_g = np.array([np.sum(g == c) for c in labels], dtype=np.float64)
    return {"precision": safe_div(tp, n_p), "recall": safe_div(tp, n_g),
            "jaccard": safe_div(tp, n_p + n_g - tp), "f1": safe_div(2 * tp, n_p + n_g)}
