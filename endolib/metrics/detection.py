"""Polyp detection metrics (KUMC): box-level precision / recall / F1 at IoU >= 0.5, and Endo-FM's frame-level rule.

**Box level** (`detection_prf`, DESIGN.md §6): per frame, predictions with score >= `score_threshold`
are taken in descending score order (ties: input order); each is matched to the still-unmatched
ground-truth box with the highest IoU, if that IoU >= `iou_threshold` (inclusive) -> TP; otherwise
-> FP. Ground-truth boxes left unmatched are FN. Counts are summed over all frames (micro average);
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R), each 0 when undefined
(no predictions, no ground truth). Boxes are `xyxy` in pixels; IoU uses continuous coordinates
(area = (x2 - x1) * (y2 - y1), no +1).

**Frame level** (`frame_detection_prf`): what Endo-FM's STFT code (`cvcvideo_detection_eval`, used
for KUMC, which EndoMamba follows) calls detection: a frame with a polyp and at least one box scored
>= threshold is a TP, a polyp-free frame with such a box an FP, a polyp frame without one an FN,
regardless of where the box is. Precision / recall / F1 from those frame counts (Endo-FM adds 1e-7
to denominators; we return 0 for 0/0 instead). Endo-FM logs it at thresholds 0.0, 0.1, ..., 0.9.
"""
from __future__ import annotations

import numpy as np

from endolib.metrics._common import safe_div, to_numpy

__all__ = ["box_iou", "match_frame", "detection_prf", "frame_detection_prf"]


def _boxes(x, name: str) -> np.ndarray:
    a = to_numpy(x, name).astype(np.float64)
    if a.size == 0:
        return a.reshape(0, 4)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{name}: expected boxes of shape (k, 4) in xyxy pixels, got {a.shape}.")
    if np.any(a[:, 2] < a[:, 0]) or np.any(a[:, 3] < a[:, 1]):
        raise ValueError(f"{name}: boxes must be xyxy with x2 >= x1 and y2 >= y1; convert xywh with "
                         "x2 = x + w, y2 = y + h.")
    return a


def box_iou(a, b) -> np.ndarray:
    """Pairwise IoU. a: (N, 4), b: (M, 4) xyxy -> (N, M); 0 where the union is empty."""
    a, b = _boxes(a, "boxes a"), _boxes(b, "boxes b")
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return safe_div(inter, area_a[:, None] + area_b[None, :] - inter)


def match_frame(pred_boxes, pred_scores, gt_boxes, iou_threshold: float = 0.5,
                score_threshold: float = 0.0) -> dict:
    """Greedy score-ordered matching in one frame -> {'tp', 'fp', 'fn', 'matches': [(pred_idx, gt_idx)]}.

    pred_boxes: (k, 4), pred_scores: (k,), gt_boxes: (g, 4), all xyxy."""
    pb, gb = _boxes(pred_boxes, "pred_boxes"), _boxes(gt_boxes, "gt_boxes")
    ps = to_numpy(pred_scores, "pred_scores").astype(np.float64).reshape(-1)
    if ps.size != pb.shape[0]:
        raise ValueError(f"match_frame: got {pb.shape[0]} boxes but {ps.size} scores; pass one score per box.")
    keep = np.flatnonzero(ps >= score_threshold)
    order = keep[np.argsort(-ps[keep], kind="stable")]
    iou = box_iou(pb, gb)
    free = np.ones(gb.shape[0], dtype=bool)
    matches = []
    for i in order:
        cand = np.where(free, iou[i], -1.0)
        j = int(np.argmax(cand)) if cand.size else -1
        if j >= 0 and cand[j] >= iou_threshold:
            free[j] = False
            matches.append((int(i), j))
    tp = len(matches)
    return {"tp": tp, "fp": int(order.size - tp), "fn": int(free.sum()), "matches": matches}


def _prf(tp: float, fp: float, fn: float) -> dict:
    precision = safe_div(tp, tp + fp)
    recall = safe_div(tp, tp + fn)
    return {"precision": precision, "recall": recall, "f1": safe_div(2 * precision * recall, precision + recall),
            "tp": int(tp), "fp": int(fp), "fn": int(fn)}


def detection_prf(preds, gts, iou_threshold: float = 0.5, score_threshold: float = 0.0) -> dict:
    """Box-level P / R / F1 over frames.

    preds: list (one per frame) of (boxes (k, 4), scores (k,)); gts: list of (g, 4) boxes.
    Returns {'precision', 'recall', 'f1', 'tp', 'fp', 'fn'}."""
    if len(preds) != len(gts):
        raise ValueError(f"detection_prf: got predictions for {len(preds)} frames and ground truth for "
                         f"{len(gts)}; pass one entry per frame (an empty (0, 4) array for none).")
    tp = fp = fn = 0
    for (boxes, scores), gt in zip(preds, gts):
        m = match_frame(boxes, scores, gt, iou_threshold, score_threshold)
        tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
    return _prf(tp, fp, fn)


def frame_detection_prf(max_scores, has_object, score_threshold: float = 0.5) -> dict:
    """Endo-FM's frame-level detection P / R / F1 (boxes' positions ignored).

    max_scores: (F,) highest box score of each frame (-inf when the frame has no box);
    has_object: (F,) bool, frame has at least one ground-truth box."""
    s = to_numpy(max_scores, "max_scores").astype(np.float64).reshape(-1)
    h = to_numpy(has_object, "has_object").astype(bool).reshape(-1)
    if s.shape != h.shape:
        raise ValueError(f"frame_detection_prf: got {s.size} scores and {h.size} labels; one of each per frame.")
    fired = s >= score_threshold
    res = _prf(np.sum(fired & h), np.sum(fired & ~h), np.sum(~fired & h))
    res["tn"] = int(np.sum(~fired & ~h))
    return res
