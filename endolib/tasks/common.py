"""Building blocks shared by the task heads: backbone + head wrapper, checkpoint lookup, token-grid decoder.

`TaskModel(backbone, head)` runs `backbone.forward_features(video) -> (B, T, n+1, C)` and gives the
tokens to the head; with a frozen backbone (linear mode) the features are computed without a graph.
`build_backbone(name, checkpoint, ...)` creates an `endolib.models` backbone without a classifier and
loads a pretrained checkpoint (reporting missing / unexpected keys). `resolve_checkpoint(None)` finds
the pretraining notebook's output under `outputs/` and says when it falls back to a random init.
`UpsampleDecoder` turns the patch-token grid into a dense feature map (segmentation, detection).
"""
import logging
from pathlib import Path
from typing import Optional

import torch
from einops import rearrange
from torch import nn

from endolib.paths import OUTPUTS

log = logging.getLogger(__name__)

# Where the pretraining notebook (02) / module leaves its encoders, best first; within a pattern the
# newest file wins. 'endo_teacher' is the full recipe (MVM + teacher distillation) on endoscopy videos;
# the 'general' stage (the general-domain teacher) is never picked.
PRETRAIN_GLOBS = ("runs/pretrain/**/endo_teacher/encoder.pth", "runs/pretrain/**/endo*/encoder.pth",
                  "runs/pretrain/**/encoder.pth", "checkpoints/*pretrain*.pth")


class TaskModel(nn.Module):
    """backbone → head on the final tokens. forward(video (B, 3, T, H, W)) -> head(tokens (B, T, n+1, C))."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def backbone_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.backbone.parameters())

    def features(self, video: torch.Tensor) -> torch.Tensor:
        # video: (B, 3, T, H, W) -> tokens (B, T, n+1, C)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.backbone_frozen()):
            return self.backbone.forward_features(video)

    def forward(self, video: torch.Tensor):
        return self.head(self.features(video))


def find_pretrained_checkpoint(root: Optional[Path] = None) -> Optional[Path]:
    """Newest pretraining checkpoint under `root` (default outputs/), or None when there is none."""
    root = Path(root) if root is not None else OUTPUTS
    for pattern in PRETRAIN_GLOBS:
        found = [p for p in root.glob(pattern) if p.is_file() and "general" not in p.parts]
        if found:
            return max(found, key=lambda p: p.stat().st_mtime)
    return None


def resolve_checkpoint(checkpoint=None, root: Optional[Path] = None) -> tuple:
    """-> (path or None, description). None: look for the pretraining output; 'random': random init."""
    if checkpoint in ("random", "none", "scratch"):
        return None, "random init (asked for)"
    if checkpoint is None:
        found = find_pretrained_checkpoint(root)
        if found is None:
            return None, "random init (no pretraining checkpoint found under outputs/)"
        rel = found.relative_to(root if root is not None else OUTPUTS)
        return found, f"pretrained: outputs/{rel.as_posix()} (found under outputs/)"
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass a .pth path, None (look under "
                                "outputs/ for the pretraining output) or 'random'.")
    return path, f"pretrained: {path.name}"


def build_backbone(name: str = "endomamba_nano", checkpoint=None, img_size: int = 64, **kw) -> tuple:
    """-> (backbone without classifier, description of its weights). kw go to endolib.models.create_model."""
    from endolib.models import create_model, load_pretrained  # the backbone package, imported on use

    backbone = create_model(name, num_classes=0, img_size=img_size, **kw)
    path, desc = resolve_checkpoint(checkpoint)
    if path is not None:
        report = load_pretrained(backbone, str(path))
        log.info("loaded %s into %s: %s", path, name, report)
        bad = [k for k in getattr(report, "missing", []) if not k.startswith("head")]
        if bad:
            desc += f" ({len(bad)} backbone keys missing)"
    log.info("backbone %s: %s", name, desc)
    return backbone, desc


def checkpoint_label(desc: str) -> str:
    """Short name for result tables from build_backbone's description: 'scratch' or the file name."""
    if desc.startswith("random"):
        return "scratch"
    return desc.split(": ", 1)[1].split(" (")[0]


def token_grid(tokens: torch.Tensor, grid_size: tuple) -> torch.Tensor:
    # tokens: (B, T, N+1, C) with cls first -> (B*T, C, Gh, Gw) patch grid
    gh, gw = grid_size
    if tokens.shape[2] != gh * gw + 1:
        raise ValueError(f"expected {gh * gw + 1} tokens per frame (cls + {gh}x{gw} patches), got "
                         f"{tokens.shape[2]}: pass unmasked features and the backbone's grid_size.")
    return rearrange(tokens[:, :, 1:], "b t (h w) c -> (b t) c h w", h=gh, w=gw)


def _up_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(_groups(cout), cout),
                         nn.GELU())


def _groups(c: int) -> int:
    return next(g for g in (8, 4, 2, 1) if c % g == 0)


class UpsampleDecoder(nn.Module):
    """Progressive upsampling of the token grid: `stages` × (bilinear ×2, 3×3 conv, GroupNorm, GELU).

    (B*T, C, Gh, Gw) -> (B*T, width_out, Gh·2^stages, Gw·2^stages); channels halve at each stage from
    `width` (never below `min_width`). A light SETR-PUP style decoder: 4 stages undo patch 16."""

    def __init__(self, in_dim: int, width: int = 128, stages: int = 4, min_width: int = 16):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_dim, width, 1), nn.GroupNorm(_groups(width), width), nn.GELU())
        blocks, c = [], width
        for _ in range(stages):
            nxt = max(min_width, c // 2)
            blocks.append(_up_block(c, nxt))
            c = nxt
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = c

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        # grid: (B*T, C, Gh, Gw) -> (B*T, out_dim, Gh*2^s, Gw*2^s)
        return self.blocks(self.proj(grid))


def collate_keep_lists(batch: list) -> dict:
    """Stack tensors of a list of sample dicts; keep list-valued fields (e.g. per-frame boxes) as lists."""
    out = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        if torch.is_tensor(vals[0]):
            out[k] = torch.stack(vals)
        elif isinstance(vals[0], (int, float)):
            out[k] = torch.tensor(vals)
        else:
            out[k] = vals
    return out


def result_rows(task: str, dataset: str, scores: dict, baselines: dict, checkpoint: str, seed: int, split: str,
                mode: str, notes: str = "") -> list:
    """Rows for `endolib.reporting.write_result_rows`: one per metric, with the trivial baseline's value."""
    return [{"task": task, "dataset": dataset, "metric": k, "value": float(v),
             "baseline_value": float(baselines[k]) if k in baselines else float("nan"),
             "checkpoint": checkpoint, "seed": int(seed), "split": split, "mode": mode, "notes": notes}
            for k, v in scores.items()]


def history_frame(history: list):
    """The engine's history rows as a wide DataFrame: one row per (step, split), one column per metric."""
    import pandas as pd

    df = pd.DataFrame(history)
    if df.empty:
        return df
    return df.pivot_table(index=["step", "split"], columns="metric", values="value").reset_index()


def plot_history(history: list, metrics=("loss",), ax=None, title: str = ""):
    """Training loss (and any evaluation metric named in `metrics`) against the step."""
    import matplotlib.pyplot as plt

    df = history_frame(history)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for m in metrics:
        if m in df:
            part = df[df[m].notna()]
            ax.plot(part["step"], part[m], marker="o", ms=3, label=f"{part['split'].iloc[0]} {m}")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return ax


def bench_step(task: str, model: nn.Module, loss_fn, batch: dict, model_name: str, device="cuda",
               dtype=torch.bfloat16, collate_fn=None) -> tuple:
    """One full fine-tuning step of the engine's recipe on `batch` -> (step() -> loss, info dict) for timing."""
    from endolib.tasks.engine import FitConfig, make_step

    b, _, t, h, _ = batch["video"].shape
    cfg = FitConfig(mode="finetune", device=str(device), amp=dtype in (torch.bfloat16, torch.float16),
                    progress=False)
    step = make_step(model, loss_fn, batch, cfg)
    info = {"task": task, "model": model_name, "batch_size": b, "num_frames": t, "img_size": h,
            "frames_per_step": b * t, "params": sum(p.numel() for p in model.parameters())}
    return step, info


def random_video(batch_size: int, num_frames: int, img_size: int, seed: int = 0) -> torch.Tensor:
    # -> (B, 3, T, H, W) standard normal, as normalised frames are
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, 3, num_frames, img_size, img_size, generator=g)
