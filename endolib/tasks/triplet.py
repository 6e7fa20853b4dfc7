"""CholecT50 action triplets: instrument / verb / target / triplet multi-label heads per frame, scored by AP.

Each frame of a CholecT50 video carries multi-hot labels for 6 instruments, 10 verbs, 15 targets and
100 <instrument, verb, target> triplets. The model is the phase model's ``PerFrameModel`` with four
Linear heads (one per component) trained with binary cross-entropy, and evaluated online: every
whole test video is streamed through the backbone (``init_stream``/``step``), the per-frame sigmoid
scores of all videos are pooled, and AP per class is computed as ``ivtmetrics`` defines it (through
``endolib.metrics``), the mean taken over the classes present. The trivial baseline scores every
frame with the class's training prevalence (a constant), whose AP is the class's test prevalence.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from endolib.tasks.phase import PerFrameModel, stream_outputs

COMPONENTS = {"instrument": 6, "verb": 10, "target": 15, "triplet": 100}


def triplet_model(backbone: nn.Module, dropout: float = 0.0) -> PerFrameModel:
    """Backbone + one per-frame Linear head per component: outputs {component: (B, T, classes)}."""
    return PerFrameModel(backbone, COMPONENTS, dropout=dropout)


def triplet_loss(model: PerFrameModel, batch: dict):
    """Sum over components of the mean BCE over frames and classes; also returns each term."""
    out = model(batch["video"])
    terms = {k: nn.functional.binary_cross_entropy_with_logits(out[k], batch[k].float())
             for k in COMPONENTS}
    return sum(terms.values()), {f"bce_{k}": float(v.detach()) for k, v in terms.items()}


def predict_videos(model: PerFrameModel, videos, chunk: int = 1, device="cpu") -> dict:
    """Stream every whole video; returns {component: (labels (F, K), scores (F, K))} over all frames F."""
    labels = {k: [] for k in COMPONENTS}
    scores = {k: [] for k in COMPONENTS}
    for _vid, frames, lab in tqdm(videos, desc="streaming triplets", leave=False):
        out = stream_outputs(model, frames, chunk=chunk, device=device)
        for k in COMPONENTS:
            labels[k].append(np.asarray(lab[k]))
            scores[k].append(torch.sigmoid(out[k]).numpy())
    return {k: (np.concatenate(labels[k]), np.concatenate(scores[k])) for k in COMPONENTS}


def prior_scores(train_labels: dict, num_frames: int) -> dict:
    """The class-prior baseline: each class scored by its training prevalence on every frame.

    train_labels: {component: (F_train, K) multi-hot} -> {component: (num_frames, K) scores}."""
    return {k: np.broadcast_to(np.asarray(v, float).mean(0), (num_frames, v.shape[1])).copy()
            for k, v in train_labels.items()}


def triplet_scores(preds: dict) -> dict:
    """mAP per component with endolib.metrics' ivtmetrics-style AP: {component: (mAP, AP per class)}."""
    from endolib import metrics

    res = {}
    for k, (y, s) in preds.items():
        ap = np.asarray(metrics.triplet_ap(y, s), dtype=float)
        res[k] = (float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan"), ap)
    return res


build_model = triplet_model
loss_fn = triplet_loss


def benchmark_step(model_name: str = "endomamba_small", img_size: int = 224, num_frames: int = 16,
                   device="cuda", dtype=torch.bfloat16, batch_size: int = 2):
    """One triplet fine-tuning step at full size on random data -> (step(), info dict) for timing."""
    from endolib.models import create_model
    from endolib.tasks.phase import _bench_info, make_train_step

    model = triplet_model(create_model(model_name, num_classes=0, img_size=img_size))
    g = torch.Generator().manual_seed(0)
    batch = {"video": torch.randn(batch_size, 3, num_frames, img_size, img_size, generator=g)}
    batch.update({k: (torch.rand(batch_size, num_frames, n, generator=g) < 0.1).float()
                  for k, n in COMPONENTS.items()})
    return make_train_step(model, triplet_loss, batch, device, dtype), _bench_info(
        "triplet", model_name, model, batch_size, num_frames, img_size)
