"""Online surgical phase recognition: a causal per-frame head on EndoMamba, streamed over whole videos.

Datasets: Cholec80 (7 phases), AutoLaparo (7), M2CAI16 (8), OphNet (phases of ophthalmic surgery).

Training (``fit_per_frame``, through the shared engine; cross-entropy over every frame):
- ``linear`` (frozen backbone): every whole training video is streamed once and the head trains on
  those per-frame features, which carry the long causal context and the absolute time in the video
  that the online evaluation has (``CachedFrames``);
- ``finetune``: all weights train on short clips with one label per frame (the reference recipe);
  the clips lack that long context (their temporal positions start at 0), a known gap between
  clip training and streamed evaluation.
Evaluation is *online*: each whole video (any length) is fed to the backbone's streaming API
(``init_stream`` once per video, then ``step`` on 1 or k frames at a time), so a prediction for
frame t depends only on frames <= t and memory does not grow with the video's length. The head is
per-frame (a Linear on the frame feature), so it is causal by construction; the backbone's temporal
layers carry the past. Metrics are the official ones from ``endolib.metrics`` (per-video accuracy,
precision, recall, Jaccard per phase; optional 10-second relaxed boundary).

The pieces shared with the other per-frame task families (triplets, localization) live here:
``PerFrameModel`` (backbone + named per-frame heads, with ``init_stream``/``step``) and
``stream_outputs`` (whole-video streaming evaluation).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, Iterable

import numpy as np
import torch
from torch import nn
try:
    from tqdm.auto import tqdm
except ImportError:  # the GPU benchmark machine may have no tqdm: run without progress bars
    def tqdm(iterable, **_):
        return iterable

log = logging.getLogger(__name__)

PHASE_DATASETS = ("cholec80", "autolaparo", "m2cai16", "ophnet")
PHASE_METRICS = ("accuracy", "precision", "recall", "jaccard")


class PerFrameModel(nn.Module):
    """EndoMamba features -> one Linear head per output name, applied to every frame.

    ``forward(x)``: x (B, 3, T, H, W) -> {name: (B, T, classes)}.
    ``init_stream(batch)`` / ``step(frames, state)``: the same outputs, k frames at a time.
    Linear probe vs fine-tune is decided by the engine (``FitConfig.mode`` freezes ``.backbone``);
    with a frozen backbone the features are computed without a graph. The frame feature is first
    standardised by a parameter-free BatchNorm (the MAE linear-probe recipe; at inference a fixed
    per-channel affine map, so still causal and per-frame).
    """

    def __init__(self, backbone: nn.Module, heads: Dict[str, int], dropout: float = 0.0):
        super().__init__()
        if getattr(backbone, "num_classes", 0):
            raise ValueError(f"the backbone must return features (create it with num_classes=0); "
                             f"it has num_classes={backbone.num_classes}.")
        self.backbone = backbone
        self.norm = nn.BatchNorm1d(backbone.embed_dim, affine=False, eps=1e-6)
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({k: nn.Linear(backbone.embed_dim, n) for k, n in heads.items()})

    def _grad(self) -> bool:
        return torch.is_grad_enabled() and any(p.requires_grad for p in self.backbone.parameters())

    def heads_on(self, feats: torch.Tensor) -> Dict[str, torch.Tensor]:
        # feats: (B, T, C) -> {name: (B, T, classes)}
        feats = self.norm(feats.float().flatten(0, 1)).view(feats.shape)
        feats = self.drop(feats)
        return {k: h(feats) for k, h in self.heads.items()}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        # x: (B, 3, T, H, W)
        with torch.set_grad_enabled(self._grad()):
            feats = self.backbone(x)
        return self.heads_on(feats)

    def init_stream(self, batch_size: int):
        return self.backbone.init_stream(batch_size)

    def step(self, frames: torch.Tensor, state):
        # frames: (B, 3, k, H, W) -> ({name: (B, k, classes)}, state)
        with torch.set_grad_enabled(self._grad()):
            feats, state = self.backbone.step(frames, state)
        return self.heads_on(feats), state


@torch.no_grad()
def stream_outputs(model: PerFrameModel, video: torch.Tensor, chunk: int = 1,
                   device="cpu") -> Dict[str, torch.Tensor]:
    """Run a whole video through ``model`` with the streaming API, ``chunk`` frames per step.

    video: (3, T, H, W) float, any T -> {name: (T, classes)} float32 on CPU.
    Only the recurrent state is kept between steps, so memory is constant in T (plus the outputs).
    """
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"expected one video as (3, T, H, W), got shape {tuple(video.shape)}; "
                         "pass ds.videos()[i][1], not a batch.")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 frame, got {chunk}.")
    model.eval()
    state = model.init_stream(1)
    pieces: Dict[str, list] = {}
    for t0 in range(0, video.shape[1], chunk):
        frames = video[None, :, t0:t0 + chunk].to(device, non_blocking=True)
        out, state = model.step(frames, state)
        for k, v in out.items():
            pieces.setdefault(k, []).append(v[0].float().cpu())
    return {k: torch.cat(v) for k, v in pieces.items()}


@torch.no_grad()
def stream_features(backbone: nn.Module, video: torch.Tensor, chunk: int = 8, device="cpu") -> torch.Tensor:
    """Frame features of one whole video through the streaming API. video: (3, T, H, W) -> (T, C) on CPU."""
    state = backbone.init_stream(1)
    feats = []
    for t0 in range(0, video.shape[1], chunk):
        out, state = backbone.step(video[None, :, t0:t0 + chunk].to(device), state)
        feats.append(out[0].float().cpu())
    return torch.cat(feats)


class CachedFrames(torch.utils.data.Dataset):
    """Per-frame items {'feats': (C,), <label key>: label} from features streamed once over whole videos.

    A linear probe on a frozen backbone sees exactly the features the online evaluation sees (long
    causal context, absolute time in the video), at the cost of one streamed pass over the training
    videos; the head then trains for many epochs in seconds."""

    def __init__(self, backbone: nn.Module, videos, keys=("phase",), chunk: int = 8, device="cpu"):
        backbone.to(device).eval()
        feats, labels = [], {k: [] for k in keys}
        for _vid, frames, lab in tqdm(videos, desc="caching streamed features", leave=False):
            feats.append(stream_features(backbone, frames, chunk, device))
            for k in keys:
                labels[k].append(torch.as_tensor(np.asarray(lab[k])))
        self.feats = torch.cat(feats)
        self.labels = {k: torch.cat(v) for k, v in labels.items()}

    def __len__(self):
        return len(self.feats)

    def __getitem__(self, i):
        return {"feats": self.feats[i], **{k: v[i] for k, v in self.labels.items()}}


class WholeVideos(torch.utils.data.Dataset):
    """Items {'video': (3, T, H, W), <label key>: (T, ...)}: whole training videos, for fine-tuning on the
    same long causal context the online evaluation has (batch size 1: videos differ in length).

    Decoded once and kept in memory, and the backward pass holds activations of all T frames: fine
    for the embedded default (a few hundred frames at 64²), not for full-length real videos at 224²
    (use clips there, or a GPU with a short `max_frames`)."""

    def __init__(self, videos, keys=("phase",), max_frames: int | None = None):
        self.items = [(frames[:, :max_frames], {k: torch.as_tensor(np.asarray(lab[k]))[:max_frames] for k in keys})
                      for _vid, frames, lab in videos]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        frames, labels = self.items[i]
        return {"video": frames, **labels}


def _head_out(model: PerFrameModel, batch: dict) -> Dict[str, torch.Tensor]:
    """Head outputs (B, T, K) from a batch of clips ('video') or of cached frame features ('feats' (B, C))."""
    if "feats" in batch:
        return model.heads_on(batch["feats"][:, None])
    return model(batch["video"])


def phase_loss(model: PerFrameModel, batch: dict) -> torch.Tensor:
    """Cross-entropy over every frame. batch: video (B, 3, T, H, W) + phase (B, T), or feats (B, C) + phase (B,)."""
    logits = _head_out(model, batch)["phase"]  # (B, T, K)
    return nn.functional.cross_entropy(logits.flatten(0, 1), batch["phase"].flatten())


def majority_phase(labels: Iterable[np.ndarray]) -> int:
    """The most frequent phase over all training frames (the trivial baseline predicts it always)."""
    counts = np.bincount(np.concatenate([np.asarray(l).ravel() for l in labels]))
    return int(counts.argmax())


def predict_videos(model: PerFrameModel, videos, chunk: int = 1, device="cpu",
                   key: str = "phase") -> list:
    """Stream every video; returns [(video_id, true (T,), pred (T,), probs (T, K))]."""
    rows = []
    for vid, frames, labels in tqdm(videos, desc=f"streaming {key}", leave=False):
        logits = stream_outputs(model, frames, chunk=chunk, device=device)[key]
        probs = logits.softmax(-1).numpy()
        rows.append((vid, np.asarray(labels[key]), probs.argmax(-1), probs))
    return rows


def relaxed_rules(dataset: str, num_classes: int) -> str:
    """The relaxed-boundary rule set of a dataset's official script ('general' = the ±1 rule only)."""
    from endolib.metrics.phase import RELAXED_RULES

    n = RELAXED_RULES.get(dataset, {}).get("num_phases")
    return dataset if n == num_classes else "general"


def phase_scores(rows, num_classes: int, dataset: str = "cholec80", fps: float = 1.0,
                 relaxed: bool = False, average: str = "phase") -> dict:
    """Official phase metrics over videos from predict_videos rows [(video_id, true, pred, probs)].

    relaxed=True applies the 10-second relaxed boundary of the Cholec80 / M2CAI16 evaluation (the
    dataset's own rule set; the generic ±1-phase rule for the others). See endolib.metrics.phase."""
    from endolib.metrics.phase import phase_metrics

    return phase_metrics([r[1] for r in rows], [r[2] for r in rows], num_classes=num_classes, fps=fps,
                         relaxed=relaxed, rules=relaxed_rules(dataset, num_classes), average=average)


def constant_rows(rows, label: int, num_classes: int) -> list:
    """The trivial baseline's rows: every frame of every video predicts `label` (the majority phase)."""
    out = []
    for vid, true, _pred, _probs in rows:
        probs = np.zeros((len(true), num_classes))
        probs[:, label] = 1.0
        out.append((vid, true, np.full(len(true), label), probs))
    return out


def build_model(backbone: nn.Module, num_classes: int, dropout: float = 0.0) -> PerFrameModel:
    """The phase model: backbone + a per-frame Linear head named 'phase' -> {'phase': (B, T, K)}."""
    return PerFrameModel(backbone, {"phase": num_classes}, dropout=dropout)


loss_fn = phase_loss


def make_train_step(model: nn.Module, loss: Callable, batch: dict, device, dtype=torch.float32,
                    lr: float = 1e-4) -> Callable[[], float]:
    """A closure running one fine-tuning step (forward under autocast `dtype`, backward, AdamW) on `batch`."""
    device = torch.device(device)
    model.to(device).train()
    batch = {k: v.to(device) for k, v in batch.items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    amp = dtype in (torch.bfloat16, torch.float16)

    def step() -> float:
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            value = loss(model, batch)
        value = value[0] if isinstance(value, tuple) else value
        opt.zero_grad(set_to_none=True)
        value.float().backward()
        opt.step()
        return float(value.detach())

    return step


def benchmark_step(model_name: str = "endomamba_small", img_size: int = 224, num_frames: int = 16,
                   device="cuda", dtype=torch.bfloat16, batch_size: int = 2, num_classes: int = 7):
    """One phase fine-tuning step at full size on random data -> (step(), info dict) for timing.

    info: task, model, batch_size, num_frames, img_size, frames_per_step, params."""
    from endolib.models import create_model

    model = build_model(create_model(model_name, num_classes=0, img_size=img_size), num_classes)
    g = torch.Generator().manual_seed(0)
    batch = {"video": torch.randn(batch_size, 3, num_frames, img_size, img_size, generator=g),
             "phase": torch.randint(0, num_classes, (batch_size, num_frames), generator=g)}
    return make_train_step(model, phase_loss, batch, device, dtype), _bench_info(
        "phase", model_name, model, batch_size, num_frames, img_size)


def _bench_info(task, model_name, model, batch_size, num_frames, img_size) -> dict:
    return {"task": task, "model": model_name, "batch_size": batch_size, "num_frames": num_frames,
            "img_size": img_size, "frames_per_step": batch_size * num_frames,
            "params": sum(p.numel() for p in model.parameters())}


# ---------------------------------------------------------------- notebook helpers
def dataset_root(dataset: str, data_root=None) -> Path:
    """`data_root` when given (a real copy: its folder or the folder above), else the synthetic default."""
    if data_root is not None:
        return Path(data_root)
    from endolib.data.synthetic import ensure

    return ensure(dataset)


class VideoSet:
    """Re-iterable whole videos of a split, decoded one at a time (``ds.iter_videos()``), so real videos
    thousands of frames long never all sit in memory; ``labels(key)`` reads labels without decoding."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset.videos_meta)

    def __iter__(self):
        return self.dataset.iter_videos()

    def labels(self, key: str) -> list:
        return [np.asarray(m["labels"][key]) for m in self.dataset.videos_meta]


def video_labels(videos, key: str) -> list:
    """Per-video label arrays of `videos` (a VideoSet, or any iterable of (id, frames, labels))."""
    if hasattr(videos, "labels"):
        return videos.labels(key)
    return [np.asarray(v[2][key]) for v in videos]


def load_video_task(dataset: str, data_root=None, num_frames: int = 8, img_size: int = 64, seed: int = 0,
                    eval_split: str = "test") -> SimpleNamespace:
    """Training clips and whole evaluation videos of a per-frame video dataset (phase or triplet layout).

    -> namespace(train: Dataset of clips, train_videos, test_videos: VideoSet of (id, (3, T, H, W), labels),
    classes, root, synthetic: bool)."""
    from endolib.data.datasets import load_dataset

    root = dataset_root(dataset, data_root)
    train = load_dataset(dataset, root, "train", num_frames=num_frames, img_size=img_size, seed=seed)
    test = load_dataset(dataset, root, eval_split, num_frames=num_frames, img_size=img_size, seed=seed)
    log.info("%s: %d training clips, %d %s videos", dataset, len(train), len(test.videos_meta), eval_split)
    return SimpleNamespace(train=train, train_videos=VideoSet(train), test_videos=VideoSet(test),
                           classes=list(train.classes), root=root, synthetic=data_root is None)


# mode -> defaults: the linear probe trains on streamed per-frame features, fine-tuning on clips
FIT_DEFAULTS = {"linear": dict(epochs=15, batch_size=128, lr=1e-2, weight_decay=1e-4),
                "finetune": dict(epochs=2, batch_size=4, lr=1e-3, weight_decay=0.05)}


def fit_config(mode: str, epochs=None, batch_size=None, lr=None, **kw):
    """FitConfig with the mode's defaults (FIT_DEFAULTS) for every argument left None."""
    from endolib.tasks.engine import FitConfig

    if mode not in FIT_DEFAULTS:
        raise ValueError(f"mode must be one of {sorted(FIT_DEFAULTS)}, got {mode!r}.")
    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr}
    return FitConfig(mode=mode, **{**FIT_DEFAULTS[mode], **{k: v for k, v in given.items() if v is not None}}, **kw)


def fit_per_frame(model: PerFrameModel, data: SimpleNamespace, loss: Callable, cfg, keys=("phase",),
                  chunk: int = 8, finetune_on: str = "clips"):
    """Train a per-frame model with the shared engine.

    linear: the frozen backbone streams every whole training video once (CachedFrames) and the heads
    train on those per-frame features, i.e. on exactly what the online evaluation computes.
    finetune: everything trains, on the training clips (`finetune_on='clips'`, the reference recipe)
    or on whole training videos (`'videos'`, batch size 1: the online evaluation's long context)."""
    from endolib.tasks.engine import fit, resolve_device

    if finetune_on not in ("clips", "videos"):
        raise ValueError(f"finetune_on must be 'clips' or 'videos', got {finetune_on!r}.")
    if cfg.mode == "linear":
        train = CachedFrames(model.backbone, data.train_videos, keys, chunk, resolve_device(cfg.device))
    elif finetune_on == "videos":
        if cfg.batch_size != 1:
            log.warning("fine-tuning on whole videos: batch_size %d -> 1 (the videos differ in length)", cfg.batch_size)
            cfg = dataclasses.replace(cfg, batch_size=1)
        train = WholeVideos(data.train_videos, keys)
    else:
        train = data.train
    return fit(model, train, loss, cfg)


def evaluate_online(model: PerFrameModel, data: SimpleNamespace, dataset: str, chunk: int = 8,
                    device="cpu") -> SimpleNamespace:
    """Stream the evaluation videos; score model and majority baseline, strict and relaxed boundary.

    Also EndoMamba's own AutoLaparo protocol (frame-pooled macro Jaccard / F1, ``*_pooled``).
    -> namespace(rows, baseline_rows, majority, scores, baseline: {metric[_relaxed|_pooled]: value}, table)."""
    import pandas as pd

    from endolib.metrics.phase import pooled_phase_metrics

    k = len(data.classes)
    rows = predict_videos(model, data.test_videos, chunk=chunk, device=device)
    majority = majority_phase(video_labels(data.train_videos, "phase"))
    base_rows = constant_rows(rows, majority, k)
    out = {}
    for name, r in (("scores", rows), ("baseline", base_rows)):
        out[name] = {}
        for relaxed in (False, True):
            s = phase_scores(r, k, dataset=dataset, relaxed=relaxed)
            out[name].update({m + ("_relaxed" if relaxed else ""): s[m] for m in PHASE_METRICS})
        pooled = pooled_phase_metrics([x[1] for x in r], [x[2] for x in r], num_classes=k)
        out[name].update({f"{m}_pooled": pooled[m] for m in ("jaccard", "f1")})
    table = pd.DataFrame({"EndoMamba (streamed)": out["scores"],
                          f"majority phase ({data.classes[majority]})": out["baseline"]})
    return SimpleNamespace(rows=rows, baseline_rows=base_rows, majority=majority, table=table, **out)


def checkpoint_label(weights: str) -> str:
    """Short checkpoint name for result tables from build_backbone's description ('scratch' for random init)."""
    if weights.startswith("random init"):
        return "scratch"
    return weights.split(":", 1)[-1].strip().split(" ")[0]


def result_rows(task: str, dataset: str, scores: dict, baseline: dict, weights: str, seed: int,
                mode: str, synthetic: bool, split: str = "test", notes: str = "") -> list:
    """Rows in endolib.reporting's schema: one per metric, with the trivial baseline's value alongside.

    weights: build_backbone's description of the backbone weights (kept in `notes`)."""
    data = "synthetic" if synthetic else "real"
    note = "; ".join(x for x in (f"{data} data", f"{mode} mode", weights, notes) if x)
    return [{"task": task, "dataset": dataset, "metric": m, "value": float(v),
             "baseline_value": float(baseline[m]) if m in baseline else float("nan"),
             "checkpoint": checkpoint_label(weights), "seed": int(seed), "split": split, "notes": note,
             "mode": mode, "data": data} for m, v in scores.items()]


def write_results(rows: list, task: str) -> Path:
    """Upsert rows into outputs/results/<task>.csv (endolib.reporting.write_result_rows)."""
    from endolib.reporting import write_result_rows

    return write_result_rows(rows, task)
