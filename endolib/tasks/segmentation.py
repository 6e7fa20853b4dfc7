"""CVC-12k frame segmentation: a progressive-upsampling decoder on the token grid → per-pixel polyp logits; Dice, IoU.

Decoder (documented choice, SETR-PUP style, light): the final patch tokens of each frame are put back
on their (Gh, Gw) grid, projected to `width` channels by a 1×1 conv, then log2(patch) stages of
(bilinear ×2, 3×3 conv, GroupNorm, GELU) with halving channels bring the grid back to pixel
resolution, and a 1×1 conv gives one logit per pixel. Frames are decoded independently (the
temporal context is already inside the tokens). Loss: binary cross-entropy + soft Dice.
In `linear` mode the backbone is frozen and only this decoder trains (a "frozen-backbone probe";
a dense task needs more than one linear layer).

Metrics (`endolib.metrics.mean_dice / mean_iou`): one case per test clip (T, H, W), the EndoMamba /
Endo-FM CVC-12k convention for empty masks. Trivial baselines: the empty mask (Dice 0 under that
convention) and the all-polyp mask.
"""
import logging
import math

import numpy as np
import torch
from einops import rearrange
from torch import nn
from torch.utils.data import DataLoader

from endolib import metrics
from endolib.tasks.common import TaskModel, UpsampleDecoder, token_grid

log = logging.getLogger(__name__)


class SegmentationHead(nn.Module):
    """tokens (B, T, N+1, C) -> mask logits (B, T, H, W) at the input resolution."""

    def __init__(self, dim: int, grid_size: tuple, patch_size: int, width: int = 128, num_classes: int = 1):
        super().__init__()
        stages = int(round(math.log2(patch_size)))
        if 2 ** stages != patch_size:
            raise ValueError(f"patch_size must be a power of two for ×2 upsampling stages, got {patch_size}.")
        self.grid_size, self.num_classes = tuple(grid_size), num_classes
        self.decoder = UpsampleDecoder(dim, width=width, stages=stages)
        self.out = nn.Conv2d(self.decoder.out_dim, num_classes, 1)
        nn.init.constant_(self.out.bias, -2.0)  # start near "background" (p = 0.12): polyps are small

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # tokens: (B, T, N+1, C) -> (B, T, H, W) logits (or (B, T, K, H, W) when num_classes > 1)
        b = tokens.shape[0]
        y = self.out(self.decoder(token_grid(tokens, self.grid_size).float()))
        y = rearrange(y, "(b t) k h w -> b t k h w", b=b)
        return y[:, :, 0] if self.num_classes == 1 else y


def build_model(backbone: nn.Module, width: int = 128) -> TaskModel:
    """backbone (features) + segmentation decoder for its grid and patch size."""
    head = SegmentationHead(backbone.embed_dim, backbone.grid_size, backbone.patch_size, width=width)
    return TaskModel(backbone, head)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    # logits, target: (B, T, H, W) -> scalar, 1 - soft Dice per frame, averaged
    p = torch.sigmoid(logits).flatten(2)
    t = target.flatten(2)
    inter = (p * t).sum(-1)
    return (1 - (2 * inter + eps) / (p.sum(-1) + t.sum(-1) + eps)).mean()


def loss_fn(model: TaskModel, batch: dict):
    """BCE + soft Dice. batch: video (B, 3, T, H, W), mask (B, T, H, W) in {0, 1}."""
    logits = model(batch["video"]).float()
    mask = batch["mask"].float()
    if logits.shape != mask.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match the prediction {tuple(logits.shape)}; "
                         "load the dataset with the same img_size / num_frames as the model.")
    bce = nn.functional.binary_cross_entropy_with_logits(logits, mask)
    dice = soft_dice_loss(logits, mask)
    return bce + dice, {"bce": bce, "soft_dice": dice}


@torch.no_grad()
def predict(model: TaskModel, dataset, batch_size: int = 4, device="cpu") -> tuple:
    """-> (masks (N, T, H, W) uint8, probabilities (N, T, H, W) float32) over every clip, in order."""
    was = model.training
    model.eval()
    masks, probs = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        probs.append(torch.sigmoid(model(batch["video"].to(device)).float()).cpu())
        masks.append(batch["mask"].to(torch.uint8))
    model.train(was)
    return torch.cat(masks).numpy(), torch.cat(probs).numpy()


def scores(masks: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Dice and IoU, one case per clip. masks, probs: (N, T, H, W)."""
    return {"dice": metrics.mean_dice(probs, masks, threshold=threshold),
            "iou": metrics.mean_iou(probs, masks, threshold=threshold)}


def evaluate(model: TaskModel, dataset, batch_size: int = 4, device="cpu") -> dict:
    return scores(*predict(model, dataset, batch_size, device))


def trivial_baselines(masks: np.ndarray) -> dict:
    """Scores of the empty mask and of the all-polyp mask on ground truth masks (N, T, H, W)."""
    masks = np.asarray(masks)
    empty = scores(masks, np.zeros(masks.shape, dtype=np.float32))
    full = scores(masks, np.ones(masks.shape, dtype=np.float32))
    return {"empty_" + k: v for k, v in empty.items()} | {"full_" + k: v for k, v in full.items()}


def plot_masks(video: torch.Tensor, mask: np.ndarray, prob: np.ndarray, max_frames: int = 8, title: str = ""):
    """Frames of one clip with the true (green) and predicted (red) outlines. video (3, T, H, W) normalised."""
    import matplotlib.pyplot as plt

    from endolib.data.transforms import denormalize

    frames = denormalize(video).clamp(0, 1).permute(1, 2, 3, 0).cpu().numpy()  # (T, H, W, 3)
    t = min(max_frames, frames.shape[0])
    fig, axes = plt.subplots(1, t, figsize=(2.0 * t, 2.3), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(frames[i])
        ax.contour(mask[i], levels=[0.5], colors="lime", linewidths=1.2)
        if prob[i].max() > 0.5:
            ax.contour(prob[i], levels=[0.5], colors="red", linewidths=1.2)
        ax.set_title(f"frame {i}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{title}  green = truth, red = prediction".strip(), fontsize=9)
    fig.tight_layout()
    return fig


def benchmark_step(model_name: str = "endomamba_small", img_size: int = 224, num_frames: int = 16,
                   device="cuda", dtype=torch.bfloat16, batch_size: int = 2) -> tuple:
    """One CVC-12k fine-tuning step at full size on random clips and masks -> (step(), info) for timing."""
    from endolib.models import create_model
    from endolib.tasks.common import bench_step, random_video

    model = build_model(create_model(model_name, num_classes=0, img_size=img_size))
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(batch_size, num_frames, img_size, img_size, generator=g) > 0.8).float()
    batch = {"video": random_video(batch_size, num_frames, img_size), "mask": mask}
    return bench_step("segmentation", model, loss_fn, batch, model_name, device, dtype)
