"""The light masked-video-modelling decoder: encoder_to_decoder, mask_token, transformer blocks, pixel head.

Visible encoder tokens are projected to the decoder width, the hidden positions are filled with one
learned `mask_token`, a FIXED sinusoidal position table (one row per (frame, patch) position, VideoMAE
style) is added to all tokens, a few pre-norm transformer blocks run over the whole clip, and a linear
head predicts the normalised pixels of each hidden patch.
"""

import torch
from torch import nn


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim) fixed table: sin on even channels, cos on odd, base 10000."""
    pos = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, 2 * torch.div(i, 2, rounding_mode="floor") / dim)
    table = torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()


class MVMDecoder(nn.Module):
    """Reconstructs the hidden patches of a clip from its visible encoder tokens."""

    def __init__(self, encoder_dim: int, num_patches: int, patch_dim: int, decoder_dim: int = 192,
                 depth: int = 4, num_heads: int = 3, mlp_ratio: float = 4.0, max_frames: int = 64):
        super().__init__()
        if decoder_dim % num_heads:
            raise ValueError(f"decoder_dim {decoder_dim} must be divisible by num_heads {num_heads}.")
        self.num_patches, self.decoder_dim = num_patches, decoder_dim
        self.encoder_to_decoder = nn.Linear(encoder_dim, decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("pos_table", sinusoid_table(max_frames * num_patches, decoder_dim),
                             persistent=False)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(decoder_dim, num_heads, int(decoder_dim * mlp_ratio), dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(decoder_dim)
        self.head = nn.Linear(decoder_dim, patch_dim)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def positions(self, frames: int) -> torch.Tensor:
        """(T, N, D) fixed table rows for a clip of `frames` frames."""
        n = frames * self.num_patches
        if n > self.pos_table.shape[0]:
            raise ValueError(f"clip of {frames} frames exceeds the decoder's max_frames "
                             f"({self.pos_table.shape[0] // self.num_patches}); build it with a larger max_frames.")
        return self.pos_table[:n].view(frames, self.num_patches, -1)

    def forward(self, visible: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """visible: (B, T, n, C) visible patch tokens (no cls), mask: (B, T, N) bool -> (B, T, m, patch_dim)."""
        b, t, n_all = mask.shape
        if n_all != self.num_patches:
            raise ValueError(f"mask has {n_all} patches per frame, decoder was built for {self.num_patches}.")
        vis = self.encoder_to_decoder(visible)                                 # (B, T, n, D)
        hidden = mask.unsqueeze(-1)                                            # (B, T, N, 1)
        full = vis.new_zeros(b, t, n_all, self.decoder_dim).masked_scatter(~hidden, vis)
        full = torch.where(hidden, self.mask_token.to(vis.dtype), full)       # (B, T, N, D)
        full = full.reshape(b, t * n_all, -1) + self.positions(t).reshape(1, t * n_all, -1).to(vis.dtype)
        for blk in self.blocks:
            full = blk(full)
        full = self.head(self.norm(full)).view(b, t, n_all, -1)
        return full[mask].view(b, t, -1, full.shape[-1])


def decoder_dims(size: str) -> dict:
    """Decoder width/heads/depth by name: 'small' is the reference (192, 3, 4); 'tiny' for CPU runs."""
    table = {"small": dict(decoder_dim=192, num_heads=3, depth=4),
             "tiny": dict(decoder_dim=64, num_heads=2, depth=1)}
    if size not in table:
        raise ValueError(f"unknown decoder size {size!r}; expected one of {sorted(table)}.")
    return dict(table[size])


__all__ = ["MVMDecoder", "sinusoid_table", "decoder_dims"]
