"""SurgicalActions160 clip action recognition: frame features averaged over the clip, a Linear head, top-1.

SurgicalActions160 holds short clips of 16 surgical actions (160 clips, 10 per class), one label per
clip. The model pools EndoMamba's per-frame features over the clip's frames (mean) and classifies
the pooled vector. The metric is top-1 accuracy over the evaluation clips; the trivial baseline
always predicts the majority training class.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

POOLS = ("mean", "grid")


class ClipClassifier(nn.Module):
    """EndoMamba tokens -> pooled clip feature -> parameter-free BN -> Linear -> (B, classes).

    pool 'mean': the backbone's frame features (mean over a frame's tokens), averaged over the clip
    (C values). pool 'grid': every token position (cls + patch grid) averaged over the clip and kept
    apart ((N+1)·C values), so where things are in the frame survives the pooling.
    Linear probe vs fine-tune is decided by the engine (``FitConfig.mode`` freezes ``.backbone``)."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0, pool: str = "mean"):
        super().__init__()
        if getattr(backbone, "num_classes", 0):
            raise ValueError(f"the backbone must return features (create it with num_classes=0); "
                             f"it has num_classes={backbone.num_classes}.")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}.")
        self.backbone, self.pool = backbone, pool
        dim = backbone.embed_dim * (backbone.num_tokens if pool == "grid" else 1)
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)  # MAE linear-probe recipe
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)

    def clip_features(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, T, H, W) -> (B, C) ('mean') or (B, (N+1)*C) ('grid'), averaged over the clip
        frozen = not any(p.requires_grad for p in self.backbone.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            if self.pool == "mean":
                return self.backbone(x).float().mean(1)
            return self.backbone.forward_features(x).float().mean(1).flatten(1)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        # feats: (B, C) -> (B, classes)
        return self.head(self.drop(self.norm(feats)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, T, H, W) -> (B, classes)
        return self.classify(self.clip_features(x))


def action_loss(model: ClipClassifier, batch: dict) -> torch.Tensor:
    """Cross-entropy of the clip logits. batch: video (B, 3, T, H, W) or cached feats (B, C); label (B,)."""
    logits = model.classify(batch["feats"]) if "feats" in batch else model(batch["video"])
    return nn.functional.cross_entropy(logits, batch["label"])


class CachedClips(torch.utils.data.Dataset):
    """Items {'feats': (C,), 'label': int}: each clip's pooled feature from a frozen backbone, computed once.

    views > 1 reads the dataset that many times: a training split draws a new random (augmented)
    clip of every video at each read, so the head sees several views of each video."""

    @torch.no_grad()
    def __init__(self, model: ClipClassifier, dataset, batch_size: int = 8, device="cpu", views: int = 1):
        model.to(device).eval()
        feats, labels = [], []
        for _ in range(views):
            for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False):
                feats.append(model.clip_features(batch["video"].to(device)).cpu())
                labels.append(batch["label"])
        self.feats, self.labels = torch.cat(feats), torch.cat(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"feats": self.feats[i], "label": self.labels[i]}


def fit_clips(model: ClipClassifier, data, cfg, views: int = 1):
    """linear: pooled features of `views` random clips per training video cached, then the head trains;
    finetune: everything trains on the clips."""
    from endolib.tasks.engine import fit, resolve_device

    if cfg.mode == "linear":
        train = CachedClips(model, data.train, device=resolve_device(cfg.device), views=views)
    else:
        train = data.train
    return fit(model, train, action_loss, cfg)


@torch.no_grad()
def predict(model: ClipClassifier, dataset, batch_size: int = 8, device="cpu"):
    """(true (N,), pred (N,), probs (N, K)) over every clip of `dataset`."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    true, probs = [], []
    for batch in loader:
        probs.append(model(batch["video"].to(device)).softmax(-1).float().cpu())
        true.append(batch["label"])
    probs = torch.cat(probs).numpy()
    return torch.cat(true).numpy(), probs.argmax(-1), probs


def top1(true: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of clips whose predicted class equals the true class."""
    true, pred = np.asarray(true).ravel(), np.asarray(pred).ravel()
    if true.shape != pred.shape or true.size == 0:
        raise ValueError(f"expected two equal, non-empty label arrays; got {true.shape} and {pred.shape}.")
    return float((true == pred).mean())


def majority_class(labels) -> int:
    """Most frequent training label: the trivial baseline predicts it for every clip."""
    return int(np.bincount(np.asarray(labels, dtype=int).ravel()).argmax())


def build_model(backbone: nn.Module, num_classes: int = 16, dropout: float = 0.0, pool: str = "mean") -> ClipClassifier:
    return ClipClassifier(backbone, num_classes, dropout=dropout, pool=pool)


loss_fn = action_loss


def benchmark_step(model_name: str = "endomamba_small", img_size: int = 224, num_frames: int = 16,
                   device="cuda", dtype=torch.bfloat16, batch_size: int = 2, num_classes: int = 16):
    """One action fine-tuning step at full size on random data -> (step(), info dict) for timing."""
    from endolib.models import create_model
    from endolib.tasks.phase import _bench_info, make_train_step

    model = ClipClassifier(create_model(model_name, num_classes=0, img_size=img_size), num_classes)
    g = torch.Generator().manual_seed(0)
    batch = {"video": torch.randn(batch_size, 3, num_frames, img_size, img_size, generator=g),
             "label": torch.randint(0, num_classes, (batch_size,), generator=g)}
    return make_train_step(model, action_loss, batch, device, dtype), _bench_info(
        "action", model_name, model, batch_size, num_frames, img_size)


def load_action_data(dataset: str = "surgicalactions160", data_root=None, num_frames: int = 8,
                     img_size: int = 64, seed: int = 0, eval_split: str = "test"):
    """Training and evaluation clips of a clip-labelled dataset -> namespace(train, test, classes, root, synthetic)."""
    from types import SimpleNamespace

    from endolib.data.datasets import load_dataset
    from endolib.tasks.phase import dataset_root

    root = dataset_root(dataset, data_root)
    train = load_dataset(dataset, root, "train", num_frames=num_frames, img_size=img_size, seed=seed)
    test = load_dataset(dataset, root, eval_split, num_frames=num_frames, img_size=img_size, seed=seed)
    return SimpleNamespace(train=train, test=test, classes=list(train.classes), root=root,
                           synthetic=data_root is None)


def dataset_labels(dataset) -> np.ndarray:
    """Every item's clip label, read without decoding videos when the loader exposes them."""
    if hasattr(dataset, "labels"):
        return np.asarray(dataset.labels() if callable(dataset.labels) else dataset.labels, dtype=int)
    return np.array([int(dataset[i]["label"]) for i in range(len(dataset))])


def evaluate(model: ClipClassifier, data, batch_size: int = 8, device="cpu"):
    """Top-1 of the model and of the majority-class baseline on data.test -> namespace(true, pred, probs, ...)."""
    from types import SimpleNamespace

    true, pred, probs = predict(model, data.test, batch_size=batch_size, device=device)
    majority = majority_class(dataset_labels(data.train))
    return SimpleNamespace(true=true, pred=pred, probs=probs, majority=majority,
                           scores={"top1": top1(true, pred)},
                           baseline={"top1": top1(true, np.full_like(true, majority))})
