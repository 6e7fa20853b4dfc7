"""Figures for the pretraining notebook: masks on frames, loss curves per term, reconstructions, the ablation."""
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from einops import rearrange

from endolib.pretrain.targets import reconstruct_frames, unnormalize


def _frames(video: torch.Tensor):
    """video: (3, T, H, W) normalised -> numpy (T, H, W, 3) in [0, 1]."""
    return rearrange(unnormalize(video[None].float())[0].clamp(0, 1), "c t h w -> t h w c").numpy()


def _grey_out(frames, mask, patch: int):
    """frames: (T, H, W, 3) numpy, mask: (T, N) bool -> copy with hidden patches dimmed to grey."""
    out = frames.copy()
    gw = frames.shape[2] // patch
    for t in range(frames.shape[0]):
        for n in torch.nonzero(mask[t]).flatten().tolist():
            r, c = divmod(n, gw)
            out[t, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = 0.5 + 0.2 * (out[t, r * patch:(r + 1) * patch,
                                                                                         c * patch:(c + 1) * patch] - 0.5)
    return out


def show_masks(video: torch.Tensor, masks: dict, patch_size: int):
    """video: (3, T, H, W); masks: name -> (T, N) bool. One row per masking, one column per frame."""
    frames = _frames(video)
    rows = [("original", frames)] + [(k, _grey_out(frames, m, patch_size)) for k, m in masks.items()]
    fig, axes = plt.subplots(len(rows), frames.shape[0], figsize=(1.8 * frames.shape[0], 1.9 * len(rows)),
                             squeeze=False)
    for i, (name, fr) in enumerate(rows):
        for t in range(frames.shape[0]):
            axes[i, t].imshow(fr[t])
            axes[i, t].set_xticks([]), axes[i, t].set_yticks([])
            axes[i, t].set_title(f"{name}, frame {t}" if t == 0 else f"frame {t}", fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(runs: dict):
    """runs: label -> metrics.csv path. One panel per loss term, one line per run."""
    df = pd.concat([pd.read_csv(p).assign(run=label) for label, p in runs.items()], ignore_index=True)
    terms = [t for t in ("loss", "loss_rec", "loss_align") if t in df and df[t].notna().any()]
    fig, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 3.2), squeeze=False)
    for ax, term in zip(axes[0], terms):
        sns.lineplot(data=df.dropna(subset=[term]), x="step", y=term, hue="run", ax=ax)
        ax.set_title(term)
    fig.tight_layout()
    return fig


@torch.no_grad()
def show_reconstruction(pretrain_model, video: torch.Tensor, mask: torch.Tensor):
    """video: (3, T, H, W), mask: (T, N). Rows: original, visible input, reconstruction (hidden patches predicted)."""
    pretrain_model.eval()
    x, m = video[None], mask[None]
    pred = pretrain_model(x, m)["pred"]
    rec = reconstruct_frames(pred, x, m, pretrain_model.encoder.patch_size, pretrain_model.normalize_target)[0]
    frames = _frames(video)
    rows = [("original", frames), ("visible", _grey_out(frames, mask, pretrain_model.encoder.patch_size)),
            ("reconstruction", rearrange(rec, "c t h w -> t h w c").numpy())]
    fig, axes = plt.subplots(3, frames.shape[0], figsize=(1.8 * frames.shape[0], 5.6), squeeze=False)
    for i, (name, fr) in enumerate(rows):
        for t in range(frames.shape[0]):
            axes[i, t].imshow(fr[t])
            axes[i, t].set_xticks([]), axes[i, t].set_yticks([])
        axes[i, 0].set_ylabel(name)
    fig.tight_layout()
    return fig


def ablation_plot(df: pd.DataFrame):
    """df: rows of recipe.evaluate (seed, variant, heldout_rec_loss, probe_acc, probe_f1): bars = mean, dots = seeds."""
    metrics = [("heldout_rec_loss", "held-out reconstruction loss (lower is better)"),
               ("probe_acc", "PolypDiag linear-probe accuracy"), ("probe_f1", "PolypDiag linear-probe F1")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (col, title) in zip(axes, metrics):
        sns.barplot(data=df, x="variant", y=col, errorbar=None, ax=ax, alpha=0.6)
        sns.stripplot(data=df, x="variant", y=col, hue="seed", ax=ax, dodge=False, palette="dark", size=6)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("")
        if ax is not axes[-1] and ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig
