"""Figures for the downstream tasks: phase ribbons over a whole video, confusion matrices, per-class AP bars."""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch


def _palette(n: int):
    return plt.get_cmap("tab10" if n <= 10 else "tab20")(np.arange(n) % (10 if n <= 10 else 20))


def phase_ribbon(true: np.ndarray, pred: np.ndarray, classes: Sequence[str], fps: float = 1.0,
                 title: str = "", ax=None):
    """Two colour ribbons (ground truth above, prediction below) over one whole video.

    true, pred: (T,) int phase per frame; the x axis is time in seconds (frames / fps).
    """
    true, pred = np.asarray(true).ravel(), np.asarray(pred).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"true and pred must have the same length, got {true.shape} and {pred.shape}.")
    k = len(classes)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 1.8))
    cmap = ListedColormap(_palette(k))
    extent = (0, len(true) / fps, 0, 2)
    ax.imshow(np.stack([true, pred]), aspect="auto", cmap=cmap, vmin=-0.5, vmax=k - 0.5,
              interpolation="nearest", extent=extent)
    ax.set_yticks([1.5, 0.5], ["true", "predicted"])
    ax.set_xlabel("time (s)")
    acc = float((true == pred).mean()) if len(true) else float("nan")
    ax.set_title(f"{title}  frame accuracy {acc:.2f}".strip())
    present = np.union1d(true, pred).astype(int)  # legend only for the labels that occur in this video
    handles = [Patch(color=_palette(k)[i], label=classes[i]) for i in present]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return ax


def confusion_counts(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    true, pred = np.asarray(true).ravel().astype(int), np.asarray(pred).ravel().astype(int)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (true, pred), 1)
    return cm


def plot_confusion(true: np.ndarray, pred: np.ndarray, classes: Sequence[str], normalize: bool = True,
                   title: str = "", ax=None):
    """Confusion matrix heatmap (row-normalised: each row is the recall distribution of a true class)."""
    import seaborn as sns

    cm = confusion_counts(true, pred, len(classes)).astype(float)
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    if ax is None:
        size = 2.5 + 0.45 * len(classes)
        _, ax = plt.subplots(figsize=(size, size * 0.85))
    sns.heatmap(cm, annot=len(classes) <= 12, fmt=".2f" if normalize else ".0f", cmap="Blues",
                xticklabels=classes, yticklabels=classes, vmin=0, vmax=1 if normalize else None,
                cbar=False, ax=ax, annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax


def plot_ap_bars(ap: Sequence[float], classes: Sequence[str], baseline: Optional[Sequence[float]] = None,
                 title: str = "", top: Optional[int] = None, ax=None):
    """Horizontal bars of AP per class (NaN = class absent from the evaluation set, left out).

    baseline: the trivial scorer's AP per class, drawn as black ticks. top: only the top-k classes.
    """
    ap = np.asarray(ap, dtype=float)
    keep = np.flatnonzero(~np.isnan(ap))
    keep = keep[np.argsort(-ap[keep])][: top or len(keep)]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.8 + 0.22 * len(keep)))
    y = np.arange(len(keep))
    ax.barh(y, ap[keep], color="tab:blue", label="model")
    if baseline is not None:
        b = np.asarray(baseline, dtype=float)[keep]
        ax.scatter(b, y, marker="|", s=120, color="black", label="class-prior baseline", zorder=3)
    ax.set_yticks(y, [classes[i] for i in keep], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision")
    ax.set_title(f"{title}  mAP {np.nanmean(ap):.3f}".strip())
    ax.legend(loc="lower right", fontsize=7)
    return ax
