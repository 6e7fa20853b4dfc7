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
try:
    from tqdm.auto import tqdm
except ImportError:  # the GPU benchmark machine may have no tqdm: run without progress bars
    def tqdm(iterable, **_):
        return iterable

from endolib.tasks.phase import PerFrameModel, _head_out, stream_outputs, video_labels

COMPONENTS = {"instrument": 6, "verb": 10, "target": 15, "triplet": 100}


def triplet_model(backbone: nn.Module, dropout: float = 0.0) -> PerFrameModel:
    """Backbone + one per-frame Linear head per component: outputs {component: (B, T, classes)}."""
    return PerFrameModel(backbone, COMPONENTS, dropout=dropout)


def triplet_loss(model: PerFrameModel, batch: dict):
    """Sum over components of the mean BCE over frames and classes; also returns each term."""
    out = _head_out(model, batch)  # clips (B, T, K) or cached frame features (B, 1, K)
    terms = {k: nn.functional.binary_cross_entropy_with_logits(out[k], batch[k].float().view_as(out[k]))
             for k in COMPONENTS}
    return sum(terms.values()), {f"bce_{k}": float(v.detach()) for k, v in terms.items()}


def predict_videos(model: PerFrameModel, videos, chunk: int = 1, device="cpu") -> dict:
    """Stream every whole video -> {component: (labels, scores)}, each a list of (T_v, K) arrays per video."""
    labels = {k: [] for k in COMPONENTS}
    scores = {k: [] for k in COMPONENTS}
    for _vid, frames, lab in tqdm(videos, desc="streaming triplets", leave=False):
        out = stream_outputs(model, frames, chunk=chunk, device=device)
        for k in COMPONENTS:
            labels[k].append(np.asarray(lab[k], dtype=float))
            scores[k].append(torch.sigmoid(out[k]).numpy())
    return {k: (labels[k], scores[k]) for k in COMPONENTS}


def prior_scores(train_labels: dict, lengths) -> dict:
    """The class-prior baseline: each class scored by its training prevalence on every frame.

    train_labels: {component: (F_train, K) multi-hot}; lengths: frames per evaluation video
    -> {component: [(T_v, K) constant scores per video]}."""
    out = {}
    for k, v in train_labels.items():
        prior = np.asarray(v, float).mean(0)
        out[k] = [np.broadcast_to(prior, (n, prior.size)).copy() for n in lengths]
    return out


def triplet_scores(preds: dict, mode: str = "global") -> dict:
    """ivtmetrics AP (endolib.metrics.triplet): {component: (mAP over present classes, AP per class)}.

    preds: {component: (labels, scores)} as arrays (F, K) or per-video lists. mode 'global' pools the
    frames of all videos; 'video' averages each class's AP over the videos (CholecT50's protocol)."""
    from endolib.metrics.triplet import triplet_ap

    res = {}
    for k, (y, s) in preds.items():
        ap = np.asarray(triplet_ap(y, s, mode=mode), dtype=float)
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


def evaluate_online(model: PerFrameModel, data, chunk: int = 8, device="cpu", mode: str = "global"):
    """Stream the evaluation videos; AP of the model and of the class-prior baseline per component.

    data: from endolib.tasks.phase.load_video_task('cholect50', ...).
    -> namespace(preds, ap, baseline_ap: {component: (K,)}, scores, baseline: {'mAP_<component>'}, table)."""
    import pandas as pd
    from types import SimpleNamespace

    preds = predict_videos(model, data.test_videos, chunk=chunk, device=device)
    train = {k: np.concatenate(video_labels(data.train_videos, k)).astype(float) for k in COMPONENTS}
    lengths = [len(y) for y in preds["triplet"][0]]
    prior = prior_scores(train, lengths)
    ours = triplet_scores(preds, mode=mode)
    base = triplet_scores({k: (preds[k][0], prior[k]) for k in COMPONENTS}, mode=mode)
    scores = {f"mAP_{k}": ours[k][0] for k in COMPONENTS}
    baseline = {f"mAP_{k}": base[k][0] for k in COMPONENTS}
    table = pd.DataFrame({"EndoMamba (streamed)": scores, "class prior": baseline})
    return SimpleNamespace(preds=preds, ap={k: v[1] for k, v in ours.items()},
                           baseline_ap={k: v[1] for k, v in base.items()}, scores=scores, baseline=baseline,
                           table=table)
