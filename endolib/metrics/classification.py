"""Clip/frame classification metrics: confusion matrix, accuracy, F1 (binary, macro), rank AUROC, top-k.

Definitions follow scikit-learn's (the EndoMamba / Endo-FM PolypDiag evaluation calls
`sklearn.metrics.f1_score(y_true, y_pred)`, i.e. binary F1 of the positive class 1 = abnormal):

- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN); a ratio whose
  denominator is zero is 0 (sklearn's `zero_division=0`).
- macro F1 = unweighted mean of the per-class F1 over `labels` (default: every class that occurs in
  `y_true` or `y_pred`, as sklearn does).
- AUROC = P(score of a random positive > score of a random negative) + 0.5 P(tie), computed from
  average ranks (Mann-Whitney U); undefined (ValueError) when only one class is present.

All functions accept torch tensors, numpy arrays or lists, and return Python floats / numpy arrays.
"""
from __future__ import annotations

import numpy as np

from endolib.metrics._common import labels_1d, safe_div, same_length, to_numpy

__all__ = ["confusion_matrix", "accuracy", "precision_recall_f1", "f1_score", "auroc", "top_k_accuracy"]


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts `C[i, j]` = samples of true class i predicted as j. y_true, y_pred: (N,) int labels."""
    t, p = labels_1d(y_true, "y_true"), labels_1d(y_pred, "y_pred")
    same_length(t, p, "y_true, y_pred")
    if t.size and min(t.min(), p.min()) < 0:
        raise ValueError("confusion_matrix: class labels must be >= 0, got a negative label.")
    k = int(num_classes) if num_classes is not None else int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    if t.size and max(t.max(), p.max()) >= k:
        raise ValueError(f"confusion_matrix: got label {max(t.max(), p.max())} but num_classes={k}; "
                         "pass a larger num_classes.")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true label. y_true, y_pred: (N,)."""
    t, p = labels_1d(y_true, "y_true"), labels_1d(y_pred, "y_pred")
    same_length(t, p, "y_true, y_pred")
    if t.size == 0:
        raise ValueError("accuracy: got zero samples.")
    return float(np.mean(t == p))


def precision_recall_f1(y_true, y_pred, labels=None) -> dict:
    """Per-class precision, recall, F1 and support for `labels`. y_true, y_pred: (N,) int labels."""
    t, p = labels_1d(y_true, "y_true"), labels_1d(y_pred, "y_pred")
    same_length(t, p, "y_true, y_pred")
    labels = np.unique(np.concatenate([t, p])) if labels is None else np.asarray(labels, dtype=np.int64)
    tp = np.array([np.sum((t == c) & (p == c)) for c in labels], dtype=np.float64)
    n_pred = np.array([np.sum(p == c) for c in labels], dtype=np.float64)
    n_true = np.array([np.sum(t == c) for c in labels], dtype=np.float64)
    return {
        "labels": labels,
        "precision": safe_div(tp, n_pred),
        "recall": safe_div(tp, n_true),
        "f1": safe_div(2 * tp, n_pred + n_true),
        "support": n_true.astype(np.int64),
    }


def f1_score(y_true, y_pred, average: str = "binary", pos_label: int = 1, labels=None) -> float:
    """F1: `average='binary'` -> F1 of `pos_label`; `'macro'` -> mean per-class F1 over `labels`."""
    if average == "binary":
        res = precision_recall_f1(y_true, y_pred, labels=[pos_label])
        return float(res["f1"][0])
    if average == "macro":
        res = precision_recall_f1(y_true, y_pred, labels=labels)
        return float(np.mean(res["f1"])) if res["f1"].size else 0.0
    raise ValueError(f"f1_score: average must be 'binary' or 'macro', got {average!r}.")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x with ties given the mean of the ranks they span. x: (N,)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)                 # last 1-based rank of each group of equal values
    mean_rank = ends - (counts - 1) / 2.0    # mean of ranks (end - count + 1) .. end
    return mean_rank[inverse]


def _binary_auroc(y: np.ndarray, s: np.ndarray) -> float:
    n_pos = int(np.sum(y == 1))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"auroc: needs both classes in y_true, got {n_pos} positives and {n_neg} negatives.")
    ranks = _average_ranks(s.astype(np.float64))
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auroc(y_true, scores, average: str = "macro"):
    """Area under the ROC curve from ranks (ties count one half).

    y_true: (N,) labels. scores: (N,) score of class 1, or (N, K) per-class scores; then each class is
    scored one-vs-rest and `average='macro'` returns their mean (`None` returns the (K,) array).
    """
    y = labels_1d(y_true, "y_true")
    s = to_numpy(scores, "scores").astype(np.float64)
    same_length(y, s, "y_true, scores")
    if s.ndim == 1:
        if not np.all(np.isin(y, (0, 1))):
            raise ValueError("auroc: 1-D scores need binary labels in {0, 1}; pass (N, K) scores for K classes.")
        return _binary_auroc(y, s)
    if s.ndim != 2:
        raise ValueError(f"auroc: scores must be (N,) or (N, K), got shape {s.shape}.")
    per_class = np.array([_binary_auroc((y == k).astype(np.int64), s[:, k]) for k in range(s.shape[1])])
    if average is None:
        return per_class
    if average != "macro":
        raise ValueError(f"auroc: average must be 'macro' or None, got {average!r}.")
    return float(per_class.mean())


def top_k_accuracy(y_true, scores, k: int = 1) -> float:
    """Fraction of samples whose true class is among the k highest scores. scores: (N, K).

    Ties at the k-th score are broken by class index (lower index wins), as `torch.topk` does on CPU.
    """
    y = labels_1d(y_true, "y_true")
    s = to_numpy(scores, "scores").astype(np.float64)
    if s.ndim != 2:
        raise ValueError(f"top_k_accuracy: scores must be (N, K), got shape {s.shape}.")
    same_length(y, s, "y_true, scores")
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(order == y[:, None], axis=1)))
