"""Input conversion shared by the metric modules: tensors, lists or arrays in, float64/int numpy out."""
from __future__ import annotations

import numpy as np
import torch


def to_numpy(x, name: str = "input") -> np.ndarray:
    """Return `x` (torch tensor, numpy array, list, scalar) as a numpy array on the CPU."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(
            f"{name}: expected a tensor, array or list of numbers, got {type(x).__name__} ({e})."
        ) from e


def labels_1d(x, name: str) -> np.ndarray:
    """Integer class labels as a 1-D int64 array (accepts (N,) or (N, 1))."""
    a = to_numpy(x, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class labels (N,), got shape {a.shape}.")
    if a.dtype.kind == "f":
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{name}: expected integer class labels, got non-integer floats; "
                             "pass argmax(logits) rather than logits.")
    return a.astype(np.int64)


def same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{names}: expected the same number of samples, got {a.shape[0]} and {b.shape[0]}.")


def safe_div(num, den, empty: float = 0.0):
    """num / den elementwise, `empty` where den == 0 (sklearn's zero_division=0 convention by default)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, float(empty))
    np.divide(num, den, out=out, where=den != 0)
    return out if out.ndim else float(out)
