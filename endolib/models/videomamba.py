"""A VideoMamba-style general-domain video model (one cls token, the whole clip scanned bidirectionally).

Layout of the official VideoMamba (OpenGVLab) so its checkpoints load by name: `patch_embed.proj` (Conv3d,
kernel (1, 16, 16)), `cls_token` (1, 1, C), `pos_embed` (1, N + 1, C) spatial, `temporal_pos_embedding`
(1, T, C) added to the patches of each frame, `layers.{i}` prenorm blocks whose bidirectional Mamba mixer
sees cls + all T*N patch tokens in (t, n) order, `norm_f`, `head`. Used as a pretraining teacher
(`forward_tokens`) and as a baseline by the speed profiling.
"""
import logging
from typing import Mapping

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from endolib.models.checkpoint import LoadReport
from endolib.models.mamba import Block, MambaMixer, RMSNorm

log = logging.getLogger(__name__)
VIDEOMAMBA_SIZES = {"videomamba_nano": dict(embed_dim=96, depth=4), "videomamba_tiny": dict(embed_dim=192, depth=24),
                    "videomamba_small": dict(embed_dim=384, depth=24),
                    "videomamba_middle": dict(embed_dim=576, depth=32)}


class VideoMamba(nn.Module):
    """x: (B, 3, T, H, W) -> logits (B, classes) from the single cls token (or its features, num_classes=0)."""

    def __init__(self, embed_dim: int = 384, depth: int = 24, img_size: int = 224, patch_size: int = 16,
                 num_frames: int = 8, num_classes: int = 0, drop_path_rate: float = 0.0, d_state: int = 16,
                 scan_backend=None):
        super().__init__()
        C = embed_dim
        self.embed_dim, self.depth, self.patch_size, self.img_size = C, depth, patch_size, img_size
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches, self.num_frames, self.num_classes = self.grid_size[0] * self.grid_size[1], num_frames, num_classes
        self.config = dict(embed_dim=C, depth=depth, img_size=img_size, patch_size=patch_size, num_frames=num_frames,
                           num_classes=num_classes, drop_path_rate=drop_path_rate, d_state=d_state)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, C, (1, patch_size, patch_size), (1, patch_size, patch_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, C))
        self.temporal_pos_embedding = nn.Parameter(torch.zeros(1, num_frames, C))
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.layers = nn.ModuleList([Block(C, MambaMixer(C, d_state, bidirectional=True, scan_backend=scan_backend),
                                           drop_path=([0.0] + dpr)[i]) for i in range(depth)])
        self.norm_f = RMSNorm(C)
        self.head = nn.Linear(C, num_classes) if num_classes > 0 else nn.Identity()
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def _embed(self, x):
        """x: (B, 3, T, H, W) -> (B, 1 + T*N, C): cls, then the patches of frame 0, frame 1, ..."""
        B, _, T, H, W = x.shape
        if (H // self.patch_size, W // self.patch_size) != self.grid_size:
            raise ValueError(f"frames of {H}x{W} do not fit the model's {self.img_size}px grid; resize them or "
                             f"create the model with img_size={H}.")
        if T != self.num_frames:
            raise ValueError(f"clip of {T} frames, model built for num_frames={self.num_frames}; create it with "
                             f"num_frames={T} (load_videomamba interpolates the temporal embedding).")
        tok = rearrange(self.patch_embed.proj(x), "b c t h w -> b t (h w) c") + self.pos_embed[:, None, 1:]
        tok = tok + self.temporal_pos_embedding[:, :, None]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, 1, -1)
        return torch.cat([cls, rearrange(tok, "b t n c -> b (t n) c")], dim=1)

    def forward_features(self, x):
        """x: (B, 3, T, H, W) -> final-normed tokens (B, 1 + T*N, C), cls first."""
        hidden, residual = self._embed(x), None
        for layer in self.layers:
            hidden, residual, _ = layer(hidden, residual)
        residual = residual + self.layers[-1].drop_path(hidden).float()
        return self.norm_f(residual.to(self.norm_f.weight.dtype))

    def forward_tokens(self, x):
        """x: (B, 3, T, H, W) -> patch tokens on the per-frame grid (B, T, N, C) (for teachers)."""
        return rearrange(self.forward_features(x)[:, 1:], "b (t n) c -> b t n c", t=x.shape[2])

    def forward(self, x):
        return self.head(self.forward_features(x)[:, 0])


def create_videomamba(name: str, **kw) -> VideoMamba:
    """videomamba_{nano,tiny,small,middle}(img_size=224, num_frames=8, num_classes=0, ...)."""
    if name not in VIDEOMAMBA_SIZES:
        raise ValueError(f"unknown VideoMamba size {name!r}; available: {sorted(VIDEOMAMBA_SIZES)}")
    return VideoMamba(**{**VIDEOMAMBA_SIZES[name], **kw})


def _official_state_dict(raw) -> dict:
    while isinstance(raw, Mapping) and not any(torch.is_tensor(v) for v in raw.values()):
        inner = next((raw[k] for k in ("model", "module", "state_dict") if isinstance(raw.get(k), Mapping)), None)
        if inner is None:
            raise ValueError(f"no state dict under 'model'/'module'/'state_dict' (keys: {list(raw)[:8]}).")
        raw = inner
    sd = {k: v for k, v in raw.items() if torch.is_tensor(v)}
    for prefix in ("module.", "encoder."):
        sd = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
    return sd


def _fit(sd: dict, own: dict, report: LoadReport) -> dict:
    w = sd.get("patch_embed.proj.weight")
    if w is not None and w.dim() == 4:                       # image checkpoint (C, 3, 16, 16): add the time axis
        sd["patch_embed.proj.weight"] = w.unsqueeze(2)
        report.adapted.append("patch_embed.proj.weight inflated 2-D -> 3-D")
    tp = sd.get("temporal_pos_embedding")
    if tp is not None and tp.shape != own["temporal_pos_embedding"].shape:
        t_new = own["temporal_pos_embedding"].shape[1]
        sd["temporal_pos_embedding"] = F.interpolate(tp.transpose(1, 2).float(), size=t_new, mode="linear",
                                                     align_corners=False).transpose(1, 2).to(tp.dtype)
        report.adapted.append(f"temporal_pos_embedding interpolated {tp.shape[1]} -> {t_new} frames")
    pe = sd.get("pos_embed")
    if pe is not None and pe.shape != own["pos_embed"].shape:
        n_new, g_ck = own["pos_embed"].shape[1] - 1, int(round((pe.shape[1] - 1) ** 0.5))
        g_new = int(round(n_new ** 0.5))
        grid = rearrange(pe[:, 1:].float(), "o (h w) c -> o c h w", h=g_ck)
        grid = F.interpolate(grid, size=(g_new, g_new), mode="bicubic", align_corners=False)
        sd["pos_embed"] = torch.cat([pe[:, :1], rearrange(grid, "o c h w -> o (h w) c").to(pe.dtype)], dim=1)
        report.adapted.append(f"pos_embed interpolated {g_ck}x{g_ck} -> {g_new}x{g_new}")
    return sd


def load_videomamba(model: VideoMamba, source) -> LoadReport:
    """Load an official VideoMamba checkpoint (path or state dict) by key name; report what did not fit.

    Handles nesting under 'model'/'module', 'module.'/'encoder.' prefixes, 2-D (image) patch weights,
    another clip length (temporal embedding interpolated), another grid (pos_embed interpolated), and a
    head of another class count (skipped). Any other shape mismatch is a ValueError.
    """
    from endolib.utils import load_checkpoint_file
    raw = source if isinstance(source, Mapping) else load_checkpoint_file(source)
    report, own = LoadReport(), model.state_dict()
    sd = _fit(_official_state_dict(raw), own, report)
    for k in [k for k in sd if k in own and sd[k].shape != own[k].shape]:
        if not k.startswith("head."):
            raise ValueError(f"checkpoint tensor {k} {tuple(sd[k].shape)} does not fit the model's "
                             f"{tuple(own[k].shape)}: create the VideoMamba size that matches the checkpoint.")
        report.skipped.append(k)
        del sd[k]
    result = model.load_state_dict(sd, strict=False)
    report.missing = list(result.missing_keys)
    report.unexpected = list(result.unexpected_keys)
    log.info("VideoMamba: loaded %d tensors; missing %s; unexpected %s; skipped %s; adapted %s", len(sd),
             report.missing[:5], report.unexpected[:5], report.skipped, report.adapted)
    return report
