"""Online temporal localization: where in the procedure is the scope, frame by frame and segment by segment.

What the reference evaluates. EndoMamba (arXiv 2502.19090, MICCAI 2025) lists *localization* as the
fourth of its four downstream task families (abstract: "classification, segmentation, surgical phase
recognition, and localization"), motivated by visual navigation. The public code release
(TianCuteQY/EndoMamba README) ships only the classification (PolypDiag), segmentation (CVC-12k) and
phase (AutoLaparo) pipelines, with no localization code or public localization dataset. The same
group's PANSv2 (arXiv 2505.24249) uses EndoMamba for landmark detection inside bronchoscope
localization. We could not read the paper's localization section itself with the sources available
here, so its exact dataset, label set and metric are NOT reproduced; treat this module as the
workbook's version of the task, of the same *form* (online, video in, location out):

- per frame, the anatomical region / landmark the scope is in (a causal per-frame head streamed over
  whole videos exactly like phase recognition), scored by frame accuracy; and
- per segment, the contiguous runs of one region, scored by segment-level mAP at temporal IoU >= 0.5
  (ActivityNet/THUMOS style: predicted runs, scored by their mean class probability, matched
  greedily to unmatched ground-truth runs of the same class and video).

Dataset it needs: videos with a region/landmark/phase label per frame (e.g. bronchoscopy airway
branches); we found no public release of the paper's own localization data. On the embedded
default any dataset in the phase layout stands in (``PHASE_DATASETS``; notebook 08 uses ``ophnet``, whose OphNet2024 release
annotates phases as timed segments for its localization challenge): its labelled runs play the role
of the regions the scope passes through. Training is the phase recipe (``phase.fit_per_frame``).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from endolib.tasks.phase import PerFrameModel, constant_rows, phase_loss, predict_videos

Segment = Tuple[int, int, int, float]  # (class, start frame, end frame exclusive, score)


def localization_model(backbone, num_classes: int, dropout: float = 0.0):
    """Backbone + a per-frame region head: outputs {'phase': (B, T, regions)} (phase-layout labels)."""
    return PerFrameModel(backbone, {"phase": num_classes}, dropout=dropout)


def runs(labels: np.ndarray) -> List[Tuple[int, int, int]]:
    """Contiguous runs of one label: [(label, start, end_exclusive)] in time order. labels: (T,) int."""
    labels = np.asarray(labels).ravel()
    if labels.size == 0:
        return []
    cut = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [labels.size]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def predicted_segments(probs: np.ndarray, min_len: int = 1) -> List[Segment]:
    """Runs of the per-frame argmax, each scored by its mean probability of that class.

    probs: (T, K) per-frame class probabilities. Runs shorter than `min_len` frames are dropped."""
    probs = np.asarray(probs, dtype=float)
    return [(c, s, e, float(probs[s:e, c].mean())) for c, s, e in runs(probs.argmax(1)) if e - s >= min_len]


def tiou(a: Tuple[int, int], b: Tuple[int, int]) -> float:
    """Temporal IoU of two half-open frame intervals [start, end)."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def average_precision(tp: np.ndarray, num_gt: int) -> float:
    """All-point interpolated AP (area under the monotone precision envelope) of a ranked TP list."""
    if num_gt == 0:
        return float("nan")
    tp = np.asarray(tp, dtype=float)
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(tp)
    recall = np.concatenate([[0.0], ctp / num_gt])
    precision = np.concatenate([[1.0], ctp / np.arange(1, tp.size + 1)])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision[1:]))


def segment_ap(true_videos: Sequence[np.ndarray], pred_videos: Sequence[List[Segment]],
               num_classes: int, iou: float = 0.5) -> np.ndarray:
    """AP per class (NaN where a class has no ground-truth segment) at temporal IoU >= `iou`.

    true_videos: per video, (T,) int labels. pred_videos: per video, [(class, start, end, score)]."""
    gts = [runs(t) for t in true_videos]
    ap = np.full(num_classes, np.nan)
    for c in range(num_classes):
        gt_c = [[(s, e) for k, s, e in g if k == c] for g in gts]
        num_gt = sum(len(g) for g in gt_c)
        cand = sorted(((p[3], v, (p[1], p[2])) for v, ps in enumerate(pred_videos) for p in ps if p[0] == c),
                      key=lambda x: -x[0])
        used = [np.zeros(len(g), bool) for g in gt_c]
        tp = []
        for _score, v, seg in cand:
            ious = np.array([tiou(seg, g) for g in gt_c[v]])
            ious[used[v]] = -1.0
            j = int(ious.argmax()) if ious.size else -1
            hit = j >= 0 and ious[j] >= iou
            if hit:
                used[v][j] = True
            tp.append(hit)
        ap[c] = average_precision(np.array(tp), num_gt)
    return ap


def localization_scores(rows, num_classes: int, iou: float = 0.5, min_len: int = 1) -> dict:
    """Frame accuracy (mean over videos) and segment mAP@iou from predict_videos rows."""
    acc = float(np.mean([np.mean(r[1] == r[2]) for r in rows]))
    ap = segment_ap([r[1] for r in rows], [predicted_segments(r[3], min_len) for r in rows], num_classes, iou)
    return {"frame_accuracy": acc, f"segment_mAP@{iou:g}": float(np.nanmean(ap)), "segment_ap": ap}



build_model = localization_model
loss_fn = phase_loss  # per-frame cross-entropy on the region labels (phase layout: batch["phase"])


def benchmark_step(model_name: str = "endomamba_small", img_size: int = 224, num_frames: int = 16,
                   device="cuda", dtype=None, batch_size: int = 2, num_classes: int = 7):
    """One localization fine-tuning step at full size (same per-frame head and loss as phase recognition)."""
    import torch

    from endolib.tasks.phase import benchmark_step as phase_step

    step, info = phase_step(model_name, img_size, num_frames, device, dtype or torch.bfloat16, batch_size,
                            num_classes)
    return step, {**info, "task": "localization"}



def evaluate_online(model: PerFrameModel, data, chunk: int = 8, device="cpu", min_len: int = 1,
                    ious=(0.3, 0.4, 0.5, 0.6, 0.7)):
    """Stream the evaluation videos; frame accuracy and segment mAP of the model and the majority baseline.

    data: from endolib.tasks.phase.load_video_task(...). -> namespace(rows, baseline_rows, majority,
    scores, baseline (dicts), ap (per class at tIoU 0.5), baseline_ap, sweep (mAP per tIoU), table)."""
    import pandas as pd
    from types import SimpleNamespace

    from endolib.tasks.phase import majority_phase, video_labels

    k = len(data.classes)
    rows = predict_videos(model, data.test_videos, chunk=chunk, device=device)
    majority = majority_phase(video_labels(data.train_videos, "phase"))
    base_rows = constant_rows(rows, majority, k)
    sweep = {name: [localization_scores(r, k, iou, min_len)[f"segment_mAP@{iou:g}"] for iou in ious]
             for name, r in (("EndoMamba (streamed)", rows), ("majority region", base_rows))}
    sweep = pd.DataFrame(sweep, index=pd.Index(ious, name="tIoU"))
    span = f"segment_mAP@[{min(ious):g}:{max(ious):g}]"
    res = [localization_scores(r, k, 0.5, min_len) for r in (rows, base_rows)]
    scores, baseline = ({"frame_accuracy": r["frame_accuracy"], "segment_mAP@0.5": r["segment_mAP@0.5"],
                         span: float(sweep.iloc[:, i].mean())} for i, r in enumerate(res))
    table = pd.DataFrame({"EndoMamba (streamed)": scores, "majority region": baseline})
    return SimpleNamespace(rows=rows, baseline_rows=base_rows, majority=majority, sweep=sweep, table=table,
                           scores=scores, baseline=baseline, ap=res[0]["segment_ap"], baseline_ap=res[1]["segment_ap"])


__all__ = ["localization_model", "predict_videos", "runs", "predicted_segments", "tiou",
           "average_precision", "segment_ap", "localization_scores", "constant_rows",
           "build_model", "loss_fn", "benchmark_step", "evaluate_online"]
