"""EndoMamba: spatial bidirectional Mamba inside each frame, then causal Mamba across time (DESIGN.md §1).

x: (B, 3, T, H, W) -> patch tokens per frame (+ cls, + spatial pos, + sinusoidal temporal pos)
  -> depth//2 spatial blocks over the N+1 tokens of each frame (batch B·T)
  -> the other blocks over all tokens of the clip in time order (batch B), causally
  -> norm_f -> pooled per frame -> head: (B, T, classes).
Because the temporal blocks are causal, the model can run on a live stream: `init_stream` / `step`.
"""
import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional

import torch
import torch.nn as nn
from einops import rearrange

from endolib.models.mamba import Block, MambaMixer, RMSNorm


@dataclass
class EndoMambaConfig:
    embed_dim: int = 384
    depth: int = 24
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 0
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    drop_path_rate: float = 0.0
    head_drop: float = 0.0
    pool: str = "mean"            # 'mean' over the N+1 tokens of a frame, or 'cls'
    max_frames: int = 8192        # length of the sinusoidal temporal table
    scan_backend: Optional[str] = None


@dataclass
class StreamState:
    """What the temporal layers carry between calls: per layer conv and SSM state, and frames seen."""
    conv: List[torch.Tensor]
    ssm: List[torch.Tensor]
    offset: int = 0
    batch_size: int = field(init=False)

    def __post_init__(self):
        self.batch_size = self.ssm[0].shape[0] if self.ssm else 0

    @property
    def device(self):
        return self.ssm[0].device

    @property
    def dtype(self):
        return self.ssm[0].dtype


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim): sin on even channels, cos on odd, base 10000."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    div = torch.pow(10000.0, torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos / div)
    table[:, 1::2] = torch.cos(pos / div[: dim // 2])
    return table.float()


class EndoMamba(nn.Module):
    def __init__(self, cfg: EndoMambaConfig):
        super().__init__()
        if cfg.img_size % cfg.patch_size:
            raise ValueError(f"img_size {cfg.img_size} is not divisible by patch_size {cfg.patch_size}")
        self.cfg = cfg
        C, p = cfg.embed_dim, cfg.patch_size
        self.embed_dim, self.depth, self.patch_size, self.img_size = C, cfg.depth, p, cfg.img_size
        self.num_spatial = cfg.depth // 2
        self.grid_size = (cfg.img_size // p, cfg.img_size // p)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.num_tokens = self.num_patches + 1
        self.num_classes = cfg.num_classes
        self.d_inner = cfg.expand * C
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(cfg.in_chans, C, kernel_size=(1, p, p), stride=(1, p, p))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens, C))
        self.register_buffer("temporal_table", sinusoid_table(cfg.max_frames, C), persistent=False)
        dpr = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]  # stochastic depth, linear
        self.layers = nn.ModuleList([
            Block(C, MambaMixer(C, cfg.d_state, cfg.d_conv, cfg.expand, bidirectional=i < self.num_spatial,
                                scan_backend=cfg.scan_backend), drop_path=dpr[i])
            for i in range(cfg.depth)])
        self.norm_f = RMSNorm(C)
        self.head_drop = nn.Dropout(cfg.head_drop)
        self.head = nn.Linear(C, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self._init_weights()

    @property
    def config(self) -> dict:
        return asdict(self.cfg)

    def _init_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear) and not name.endswith("dt_proj") and not name.endswith("dt_proj_b"):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for layer in self.layers:  # GPT-2 style: shrink the residual branch outputs with depth
            with torch.no_grad():
                layer.mixer.out_proj.weight /= math.sqrt(self.depth)

    # ---- input checks -------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor, offset: int = 0):
        if x.dim() != 5:
            raise ValueError(f"expected a clip of shape (B, 3, T, H, W), got a {x.dim()}-D tensor of shape "
                             f"{tuple(x.shape)}; add the missing axes (a single frame is T=1).")
        B, c, T, H, W = x.shape
        if c != self.cfg.in_chans:
            raise ValueError(f"expected {self.cfg.in_chans} channels at dim 1 of (B, C, T, H, W), got shape "
                             f"{tuple(x.shape)}; channels-last input needs x.permute(0, 4, 1, 2, 3).")
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(f"frame size {H}x{W} is not divisible by patch size {self.patch_size}; resize or crop.")
        if (H // self.patch_size, W // self.patch_size) != self.grid_size:
            raise ValueError(f"frames of {H}x{W} give a {H // self.patch_size}x{W // self.patch_size} patch grid, "
                             f"the model expects {self.grid_size} ({self.img_size}x{self.img_size} frames); resize, "
                             f"or create the model with img_size={H}.")
        if offset + T > self.cfg.max_frames:
            raise ValueError(f"frames {offset}..{offset + T - 1} exceed the temporal table of {self.cfg.max_frames} "
                             "frames; subsample the video or create the model with a larger max_frames.")

    # ---- embedding ------------------------------------------------------------------------------
    def patch_embed_tokens(self, x):
        """x: (B, 3, T, H, W) -> patch tokens (B, T, N, C), before cls and positions."""
        return rearrange(self.patch_embed.proj(x), "b c t h w -> b t (h w) c")

    def _embed(self, x, offset: int = 0, mask=None):
        """x: (B, 3, T, H, W) -> tokens (B, T, n+1, C) with cls first; mask (B, T, N) True = hidden."""
        self._check_input(x, offset)
        B, _, T = x.shape[:3]
        tok = self.patch_embed_tokens(x) + self.pos_embed[:, None, 1:]
        if mask is not None:
            tok = self._keep_visible(tok, mask)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, T, 1, -1)
        tok = torch.cat([cls.to(tok.dtype), tok], dim=2)
        return tok + self.temporal_table[offset:offset + T].to(tok.dtype)[None, :, None]

    def _keep_visible(self, tok, mask):
        """tok: (B, T, N, C), mask: (B, T, N) bool True = hidden -> visible tokens (B, T, n, C)."""
        B, T, N, C = tok.shape
        if mask.shape != (B, T, N) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape (B, T, N) = {(B, T, N)}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        visible = (~mask).sum(-1)
        if (visible != visible.flatten()[0]).any():
            raise ValueError("every frame must keep the same number of visible patches (tube masking, or "
                             f"per-frame random masking with one ratio); got counts {visible.unique().tolist()}")
        return tok[~mask].reshape(B, T, int(visible.flatten()[0]), C)

    # ---- the stack ------------------------------------------------------------------------------
    def _blocks(self, tok, state: Optional[StreamState] = None):
        """tok: (B, T, n, C) -> final-normed tokens (B, T, n, C); updates `state` in place when given."""
        B, T, n, _ = tok.shape
        hidden, residual = rearrange(tok, "b t n c -> (b t) n c"), None
        for layer in self.layers[: self.num_spatial]:
            hidden, residual, _ = layer(hidden, residual)
        hidden = rearrange(hidden, "(b t) n c -> b (t n) c", b=B)
        residual = rearrange(residual, "(b t) n c -> b (t n) c", b=B)
        for j, layer in enumerate(self.layers[self.num_spatial:]):
            s = None if state is None else (state.conv[j], state.ssm[j])
            hidden, residual, s = layer(hidden, residual, s)
            if state is not None:
                state.conv[j], state.ssm[j] = s
        residual = residual + self.layers[-1].drop_path(hidden).float()
        out = self.norm_f(residual.to(self.norm_f.weight.dtype))
        return rearrange(out, "b (t n) c -> b t n c", t=T)

    def forward_features(self, x, mask=None):
        """x: (B, 3, T, H, W) -> final-normed tokens (B, T, n+1, C), cls first."""
        return self._blocks(self._embed(x, 0, mask))

    def pool(self, tokens):
        """tokens: (B, T, n+1, C) -> frame features (B, T, C)."""
        return tokens[:, :, 0] if self.cfg.pool == "cls" else tokens.mean(dim=2)

    def forward_head(self, feats):
        """feats: (B, T, C) -> (B, T, classes), or feats unchanged when the model has no head."""
        return self.head(self.head_drop(feats))

    def forward(self, x):
        return self.forward_head(self.pool(self.forward_features(x)))

    # ---- streaming ------------------------------------------------------------------------------
    def init_stream(self, batch_size: int, device=None, dtype=None) -> StreamState:
        """A fresh state for `batch_size` videos (one per new video). dtype defaults to the parameters'."""
        device = device if device is not None else self.pos_embed.device
        dtype = dtype or self.pos_embed.dtype
        states = [layer.mixer.init_state(batch_size, device, dtype) for layer in self.layers[self.num_spatial:]]
        return StreamState([s[0] for s in states], [s[1] for s in states], 0)

    def _check_state(self, frames, state: StreamState):
        if not isinstance(state, StreamState):
            raise ValueError(f"state must come from model.init_stream(batch_size), got {type(state).__name__}")
        if frames.dim() == 5 and frames.shape[0] != state.batch_size:
            raise ValueError(f"frames have batch {frames.shape[0]} but the stream state was made for batch "
                             f"{state.batch_size}; call init_stream({frames.shape[0]}).")
        if frames.device != state.device:
            raise ValueError(f"frames are on {frames.device} but the stream state is on {state.device}; "
                             "move one of them (init_stream(batch, device=...)).")
        if frames.dtype != state.dtype and not torch.is_autocast_enabled(frames.device.type):
            raise ValueError(f"frames are {frames.dtype} but the stream state is {state.dtype}; cast the frames "
                             "or call init_stream(batch, dtype=...) (or run under torch.autocast).")

    def step_features(self, frames, state: StreamState):
        """frames: (B, 3, k, H, W), the next k >= 1 frames -> (tokens (B, k, N+1, C), state)."""
        self._check_state(frames, state)
        tok = self._embed(frames, state.offset)
        out = self._blocks(tok, state)
        state.offset += frames.shape[2]
        return out, state

    def step(self, frames, state: StreamState):
        """Streaming forward: what model(x) gives for these k frames, given all frames before them."""
        tokens, state = self.step_features(frames, state)
        return self.forward_head(self.pool(tokens)), state
