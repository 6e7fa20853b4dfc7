"""Baselines for the speed comparison: frame-wise ViT, divided space-time transformer, VideoMAE, VideoMamba.

All take a clip x: (B, 3, T, H, W) and return per-frame features (B, T, C) (VideoMamba and VideoMAE: their
own outputs); random initialisation is enough for speed. Sizes follow the backbone's names ('nano',
'tiny', 'small') so a baseline is measured at the same width and depth as the EndoMamba it is compared to.
Only the frame-wise ViT can stream for free (no temporal context); the others see the clip as a whole and
must recompute it for every new frame.
"""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

SIZES = {"nano": dict(dim=96, depth=4, heads=3), "tiny": dict(dim=192, depth=12, heads=3),
         "small": dict(dim=384, depth=12, heads=6)}
MAMBA_DEPTH = {"nano": 4, "tiny": 24, "small": 24}


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # x: (B, L, C)
        q, k, v = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.heads)
        return self.proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h l d -> b l (h d)"))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, ratio: int = 4):
        super().__init__(nn.Linear(dim, ratio * dim), nn.GELU(), nn.Linear(ratio * dim, dim))


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim)

    def forward(self, x):  # x: (B, L, C)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DividedBlock(nn.Module):
    """TimeSformer-style block: attention over time at each spatial position, then over space in each frame."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_t, self.attn_t = nn.LayerNorm(dim), Attention(dim, heads)
        self.block = ViTBlock(dim, heads)

    def forward(self, x):  # x: (B, T, N, C)
        T = x.shape[1]
        xt = rearrange(x, "b t n c -> (b n) t c")
        xt = xt + self.attn_t(self.norm_t(xt))
        xs = self.block(rearrange(xt, "(b n) t c -> (b t) n c", b=x.shape[0]))
        return rearrange(xs, "(b t) n c -> b t n c", t=T)


class _PatchTokens(nn.Module):
    """x: (B, 3, T, H, W) -> tokens (B, T, N+1, C): per-frame patches, a cls token, spatial positions."""

    def __init__(self, dim: int, img_size: int, patch: int = 16):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (img_size // patch) ** 2 + 1, dim) * 0.02)

    def forward(self, x):
        B, T = x.shape[0], x.shape[2]
        tok = rearrange(self.proj(rearrange(x, "b c t h w -> (b t) c h w")), "bt c h w -> bt (h w) c")
        tok = torch.cat([self.cls.expand(tok.shape[0], 1, -1).to(tok.dtype), tok], dim=1) + self.pos
        return rearrange(tok, "(b t) n c -> b t n c", b=B, t=T)


class FrameViT(nn.Module):
    """Frame-wise ViT (ViT-S at size 'small'): each frame alone -> its cls feature (B, T, C)."""

    def __init__(self, dim=384, depth=12, heads=6, img_size=224):
        super().__init__()
        self.tokens = _PatchTokens(dim, img_size)
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):  # x: (B, 3, T, H, W) -> (B, T, C)
        tok = self.tokens(x)
        B = tok.shape[0]
        out = self.norm(self.blocks(rearrange(tok, "b t n c -> (b t) n c")))
        return rearrange(out[:, 0], "(b t) c -> b t c", b=B)


class DividedST(nn.Module):
    """Divided space-time transformer (TimeSformer-style, own code): (B, 3, T, H, W) -> (B, T, C)."""

    def __init__(self, dim=384, depth=12, heads=6, img_size=224, max_frames=8192):
        super().__init__()
        self.tokens = _PatchTokens(dim, img_size)
        self.time = nn.Parameter(torch.randn(1, max_frames, 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[DividedBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        tok = self.tokens(x)
        tok = tok + self.time[:, : tok.shape[1]].to(tok.dtype)
        return self.norm(self.blocks(tok))[:, :, 0]


class VideoMambaAnyLength(nn.Module):
    """`endolib.models.videomamba.VideoMamba` fed clips of any length (its temporal embedding resized)."""

    def __init__(self, dim=384, depth=24, img_size=224, scan_backend=None):
        super().__init__()
        from endolib.models.videomamba import VideoMamba
        self.net = VideoMamba(embed_dim=dim, depth=depth, img_size=img_size, num_frames=1, scan_backend=scan_backend)

    def forward(self, x):  # x: (B, 3, T, H, W) -> cls features (B, C)
        T = x.shape[2]
        if self.net.num_frames != T:
            p = self.net.temporal_pos_embedding
            self.net.temporal_pos_embedding = nn.Parameter(torch.randn(1, T, p.shape[2], device=p.device,
                                                                       dtype=p.dtype) * 0.02)
            self.net.num_frames = T
        return self.net(x)


class VideoMAEWrapper(nn.Module):
    """VideoMAE (joint space-time attention, tubelet 2) from `transformers`, random init, when importable."""

    def __init__(self, dim=384, depth=12, heads=6, img_size=224):
        super().__init__()
        from transformers import VideoMAEConfig, VideoMAEModel  # optional; ImportError = not measured
        self.cfg = dict(hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads,
                        intermediate_size=4 * dim, image_size=img_size, tubelet_size=2)
        self._make = lambda T: VideoMAEModel(VideoMAEConfig(num_frames=T, attn_implementation="sdpa", **self.cfg))
        self.net, self.T = None, None

    def forward(self, x):  # x: (B, 3, T, H, W), T even -> tokens
        T = x.shape[2]
        if self.T != T:
            self.net = self._make(T).to(x.device, x.dtype).eval()
            self.T = T
        return self.net(pixel_values=x.transpose(1, 2)).last_hidden_state


def build_baseline(name: str, size: str = "small", img_size: int = 224, scan_backend=None) -> nn.Module:
    """name: 'vit_framewise' | 'divided_st' | 'videomae' | 'videomamba'; size: 'nano' | 'tiny' | 'small'."""
    if size not in SIZES:
        raise ValueError(f"unknown baseline size {size!r}; expected one of {sorted(SIZES)}")
    s = SIZES[size]
    if name == "vit_framewise":
        return FrameViT(s["dim"], s["depth"], s["heads"], img_size)
    if name == "divided_st":
        return DividedST(s["dim"], s["depth"], s["heads"], img_size)
    if name == "videomae":
        return VideoMAEWrapper(s["dim"], s["depth"], s["heads"], img_size)
    if name == "videomamba":
        return VideoMambaAnyLength(s["dim"], MAMBA_DEPTH[size], img_size, scan_backend)
    raise ValueError(f"unknown baseline {name!r}; expected vit_framewise, divided_st, videomae or videomamba")
