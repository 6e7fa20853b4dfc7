"""Pretraining loss terms: masked-patch reconstruction (MSE) and teacher alignment (cosine embedding).

Total = loss_rec + align_weight * loss_align (reference: weight 0.25, margin 0.15). The alignment term
is torch's cosine-embedding loss with every pair labelled "similar" (+1), as the EndoMamba reference
calls it: for positive pairs it equals 1 - cos(student, teacher); the margin only acts on dissimilar
(-1) pairs, so with all-positive pairs it does not change the value (kept as a parameter for fidelity).
"""
import torch
import torch.nn.functional as F


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred, target: (B, T, m, D) for the hidden patches -> scalar mean squared error."""
    return F.mse_loss(pred.float(), target.float())


def visible_teacher_tokens(teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """teacher: (B, T, N, Ct) on the full grid, mask: (B, T, N) -> (B, T, n, Ct) at the visible positions."""
    b, t, _, c = teacher.shape
    return teacher[~mask].reshape(b, t, -1, c)


def alignment_loss(student: torch.Tensor, teacher: torch.Tensor, margin: float = 0.15) -> torch.Tensor:
    """student, teacher: (B, T, n, C) same width -> scalar cosine-embedding loss with all targets +1."""
    if student.shape != teacher.shape:
        raise ValueError(f"student tokens {tuple(student.shape)} and teacher tokens {tuple(teacher.shape)} "
                         "must have the same shape; project the student to the teacher width first.")
    s = student.float().reshape(-1, student.shape[-1])
    t = teacher.float().reshape(-1, teacher.shape[-1])
    ones = torch.ones(s.shape[0], device=s.device, dtype=s.dtype)
    return F.cosine_embedding_loss(s, t, ones, margin=margin)


def total_loss(loss_rec: torch.Tensor, loss_align=None, align_weight: float = 0.25) -> torch.Tensor:
    """loss_rec + align_weight * loss_align (or loss_rec alone when there is no teacher)."""
    return loss_rec if loss_align is None else loss_rec + align_weight * loss_align
