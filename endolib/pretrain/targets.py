"""Reconstruction targets: per-patch normalised pixels (VideoMAE convention, tubelet 1) and their inverse.

The clip arrives ImageNet-normalised; it is brought back to [0, 1], cut into 16x16 patches per frame, and
each patch is normalised per colour channel by its own mean and (unbiased) standard deviation over its
pixels, `(p - mean) / (std + 1e-6)`, then flattened in (py, px, c) order, as VideoMAE / EndoMamba do.
"""
import torch
from einops import rearrange

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def unnormalize(x: torch.Tensor) -> torch.Tensor:
    """x: (B, 3, T, H, W) ImageNet-normalised -> same shape in [0, 1] pixel units."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    return x * std + mean


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """x: (B, 3, T, H, W) -> (B, T, N, P*P, 3), patches in row-major order (N = H/P * W/P)."""
    p = patch_size
    if x.shape[-1] % p or x.shape[-2] % p:
        raise ValueError(f"frame size {tuple(x.shape[-2:])} is not a multiple of patch size {p}.")
    return rearrange(x, "b c t (h py) (w px) -> b t (h w) (py px) c", py=p, px=p)


def unpatchify(patches: torch.Tensor, patch_size: int, grid: tuple) -> torch.Tensor:
    """patches: (B, T, N, P*P*3) in (py, px, c) order -> (B, 3, T, H, W)."""
    p = patch_size
    return rearrange(patches, "b t (h w) (py px c) -> b c t (h py) (w px)", h=grid[0], w=grid[1],
                     py=p, px=p, c=3)


def patch_stats(x: torch.Tensor, patch_size: int, eps: float = 1e-6):
    """x: (B, 3, T, H, W) normalised -> mean, std: (B, T, N, 1, 3) of each patch's [0, 1] pixels."""
    patches = patchify(unnormalize(x), patch_size)
    mean = patches.mean(dim=-2, keepdim=True)
    std = patches.var(dim=-2, unbiased=True, keepdim=True).sqrt() + eps
    return mean, std


def pixel_targets(x: torch.Tensor, patch_size: int, normalize: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """x: (B, 3, T, H, W) ImageNet-normalised -> (B, T, N, P*P*3) targets for every patch.

    normalize=True: per-patch, per-channel (x - mean) / (std + eps); False: raw [0, 1] pixels.
    Select the masked ones with `targets[mask]` or `masked_targets`.
    """
    with torch.no_grad():
        patches = patchify(unnormalize(x.float()), patch_size)
        if normalize:
            mean = patches.mean(dim=-2, keepdim=True)
            std = patches.var(dim=-2, unbiased=True, keepdim=True).sqrt() + eps
            patches = (patches - mean) / std
        return rearrange(patches, "b t n pp c -> b t n (pp c)")


def masked_targets(targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """targets: (B, T, N, D), mask: (B, T, N) bool with m hidden per frame -> (B, T, m, D) in patch order."""
    b, t, _, d = targets.shape
    return targets[mask].reshape(b, t, -1, d)


def reconstruct_frames(pred: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, patch_size: int,
                       normalize: bool = True) -> torch.Tensor:
    """Paste predicted masked patches into the clip, for display. Returns (B, 3, T, H, W) in [0, 1].

    pred: (B, T, m, P*P*3) decoder output for the hidden patches; x: (B, 3, T, H, W) normalised input;
    mask: (B, T, N). Normalised predictions are mapped back with each patch's true mean/std (as the
    VideoMAE visualisation does): shapes come from the model, brightness from the original.
    """
    p = patch_size
    grid = (x.shape[-2] // p, x.shape[-1] // p)
    patches = patchify(unnormalize(x.float()), p)                         # (B, T, N, PP, 3)
    pr = rearrange(pred.float(), "b t m (pp c) -> b t m pp c", c=3)
    if normalize:
        mean, std = patch_stats(x.float(), p)
        pr = pr * std[mask].reshape(pr.shape[0], pr.shape[1], -1, 1, 3) \
            + mean[mask].reshape(pr.shape[0], pr.shape[1], -1, 1, 3)
    patches = patches.clone()
    patches[mask] = pr.reshape(-1, *pr.shape[-2:])
    return unpatchify(rearrange(patches, "b t n pp c -> b t n (pp c)"), p, grid).clamp(0, 1)
