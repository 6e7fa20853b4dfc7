"""PolypDiag clip classification: frame features pooled over the clip, then one Linear layer; F1, accuracy, AUROC.

PolypDiag labels each colonoscopy video normal (0) or abnormal (1, a polyp is visible). The head
averages the backbone's final tokens of every frame (cls + patches, as the backbone's own `mean`
pooling does), averages those frame features over time, normalises them with a LayerNorm (VideoMAE's
`fc_norm`; no running statistics, so short runs evaluate as they train) and applies a Linear layer.
In `linear` mode only that layer trains (a linear probe); in `finetune` mode the backbone trains too.

Metrics (`endolib.metrics`, sklearn definitions): binary F1 of class 1 (abnormal) — the number the
EndoMamba / Endo-FM papers report — plus accuracy and AUROC of the abnormal probability. The trivial
baseline predicts the majority training class for every clip (F1 0 when that class is normal).
"""
import logging

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from endolib import metrics
from endolib.tasks.common import TaskModel

log = logging.getLogger(__name__)

POOLS = ("mean", "cls", "max")


class ClipClassificationHead(nn.Module):
    """tokens (B, T, n+1, C) -> pool tokens -> mean over T -> LayerNorm -> dropout -> Linear."""

    def __init__(self, dim: int, num_classes: int = 2, pool: str = "mean", dropout: float = 0.0):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}.")
        self.pool = pool
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def clip_features(self, tokens: torch.Tensor) -> torch.Tensor:
        # tokens: (B, T, n+1, C) -> (B, C)
        if self.pool == "cls":
            return tokens[:, :, 0].mean(dim=1)
        if self.pool == "max":  # strongest response of any patch: suits small findings
            return tokens[:, :, 1:].amax(dim=2).mean(dim=1)
        return tokens.mean(dim=2).mean(dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # tokens: (B, T, n+1, C) -> logits (B, classes)
        return self.fc(self.drop(self.norm(self.clip_features(tokens).float())))


def build_model(backbone: nn.Module, num_classes: int = 2, pool: str = "mean", dropout: float = 0.0) -> TaskModel:
    """backbone (features, num_classes=0) + clip classification head."""
    return TaskModel(backbone, ClipClassificationHead(backbone.embed_dim, num_classes, pool, dropout))


def loss_fn(model: TaskModel, batch: dict):
    """Cross-entropy of the clip logits. batch: video (B, 3, T, H, W), label (B,)."""
    logits = model(batch["video"])
    label = batch["label"].long()
    acc = (logits.argmax(-1) == label).float().mean()
    return nn.functional.cross_entropy(logits.float(), label), {"acc": acc}


@torch.no_grad()
def predict(model: TaskModel, dataset, batch_size: int = 8, device="cpu") -> tuple:
    """-> (labels (N,) int, probabilities (N, classes)) over every clip of `dataset`, in order."""
    was = model.training
    model.eval()
    labels, probs = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        logits = model(batch["video"].to(device))
        probs.append(logits.float().softmax(-1).cpu())
        labels.append(torch.as_tensor(batch["label"]).long())
    model.train(was)
    return torch.cat(labels).numpy(), torch.cat(probs).numpy()


def scores(labels: np.ndarray, probs: np.ndarray) -> dict:
    """F1 (abnormal = 1), accuracy and AUROC. labels: (N,); probs: (N, 2) or (N,) abnormal probability."""
    probs = np.asarray(probs, dtype=np.float64)
    p1 = probs[:, 1] if probs.ndim == 2 else probs
    pred = probs.argmax(1) if probs.ndim == 2 else (p1 > 0.5).astype(np.int64)
    out = {"f1": metrics.f1_score(labels, pred), "accuracy": metrics.accuracy(labels, pred)}
    both = len(np.unique(labels)) == 2
    out["auroc"] = metrics.auroc(labels, p1) if both else float("nan")
    return out


def evaluate(model: TaskModel, dataset, batch_size: int = 8, device="cpu") -> dict:
    """The PolypDiag metrics of `model` on `dataset`."""
    return scores(*predict(model, dataset, batch_size, device))


def dataset_labels(dataset) -> np.ndarray:
    """Clip labels of a dataset, from its `labels` attribute when it has one (no video decoding)."""
    if hasattr(dataset, "labels"):
        return np.asarray(dataset.labels, dtype=np.int64)
    return np.array([int(dataset[i]["label"]) for i in range(len(dataset))], dtype=np.int64)


def trivial_baseline(train_labels, test_labels) -> dict:
    """Always the majority training class (with a constant score): its F1, accuracy and AUROC (0.5)."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    major = int(np.bincount(train_labels, minlength=2).argmax())
    probs = np.zeros((len(test_labels), 2))
    probs[:, major] = 1.0
    out = scores(test_labels, probs)  # a constant score: AUROC 0.5 (all ties)
    out["majority_class"] = major
    return out


def plot_clips(dataset, labels: np.ndarray, probs: np.ndarray, classes, n: int = 6, frame: int = 0):
    """One frame of each of the first `n` clips, titled with the true class and the predicted probability."""
    import matplotlib.pyplot as plt

    from endolib.data.transforms import denormalize

    n = min(n, len(dataset))
    fig, axes = plt.subplots(1, n, figsize=(2.0 * n, 2.4), squeeze=False)
    for i, ax in enumerate(axes[0]):
        img = denormalize(dataset[i]["video"][:, frame]).clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(img)
        pred = int(np.argmax(probs[i]))
        ok = "lime" if pred == labels[i] else "red"
        ax.set_title(f"true {classes[labels[i]]}\np({classes[1]}) = {probs[i][1]:.2f}", fontsize=7, color=ok)
        ax.axis("off")
    fig.tight_layout()
    return fig


def benchmark_step(model_name: str = "endomamba_small", img_size: int = 224, num_frames: int = 16,
                   device="cuda", dtype=torch.bfloat16, batch_size: int = 2) -> tuple:
    """One PolypDiag fine-tuning step at full size on random clips -> (step(), info) for timing."""
    from endolib.models import create_model
    from endolib.tasks.common import bench_step, random_video

    model = build_model(create_model(model_name, num_classes=0, img_size=img_size))
    batch = {"video": random_video(batch_size, num_frames, img_size), "label": torch.arange(batch_size) % 2}
    return bench_step("classification", model, loss_fn, batch, model_name, device, dtype)
