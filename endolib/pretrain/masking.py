"""Token masks for masked video modelling: tube (same patches hidden in every frame) and per-frame random.

Every frame hides the same number of patches, so the backbone's `forward_features(x, mask)` can batch the
visible tokens of all frames as one dense tensor.
"""
import torch

MASK_KINDS = ("tube", "random")


def num_masked(num_patches: int, ratio: float) -> int:
    """Patches hidden per frame: round(ratio * N), kept within [1, N - 1] so both sets are non-empty."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}. Use e.g. 0.75 (reference) or 0.9.")
    return min(max(int(round(ratio * num_patches)), 1), num_patches - 1)


def _hide_lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    # scores: (..., N) -> bool (..., N) with exactly k True (the k lowest scores) along the last axis
    idx = scores.argsort(dim=-1)[..., :k]
    mask = torch.zeros_like(scores, dtype=torch.bool)
    return mask.scatter_(-1, idx, True)


def tube_mask(batch: int, frames: int, num_patches: int, ratio: float, generator=None,
              device=None) -> torch.Tensor:
    """(B, T, N) bool, True = hidden; the same patches are hidden in every frame of a clip."""
    scores = torch.rand(batch, 1, num_patches, generator=generator)
    mask = _hide_lowest(scores, num_masked(num_patches, ratio))
    return mask.expand(batch, frames, num_patches).contiguous().to(device)


def random_mask(batch: int, frames: int, num_patches: int, ratio: float, generator=None,
                device=None) -> torch.Tensor:
    """(B, T, N) bool, True = hidden; each frame draws its own patches, all frames hide the same count."""
    scores = torch.rand(batch, frames, num_patches, generator=generator)
    return _hide_lowest(scores, num_masked(num_patches, ratio)).to(device)


def make_mask(kind: str, batch: int, frames: int, num_patches: int, ratio: float, generator=None,
              device=None) -> torch.Tensor:
    """Dispatch on `kind` ('tube' | 'random'); returns (B, T, N) bool."""
    if kind == "tube":
        return tube_mask(batch, frames, num_patches, ratio, generator, device)
    if kind == "random":
        return random_mask(batch, frames, num_patches, ratio, generator, device)
    raise ValueError(f"unknown mask kind {kind!r}; expected one of {MASK_KINDS}.")
