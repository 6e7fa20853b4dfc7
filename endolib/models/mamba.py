"""The Mamba mixer (causal or bidirectional), RMSNorm and the prenorm residual block.

Parameter names follow mamba-ssm / Vim / EndoMamba exactly (in_proj, conv1d, x_proj, dt_proj, A_log, D,
out_proj; the backward branch adds conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b) so released weights load.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from endolib.ops import causal_conv1d, selective_scan

# Per-layer streaming state: (conv_state (B, D, d_conv-1), ssm_state (B, D, d_state)).
LayerState = Tuple[torch.Tensor, torch.Tensor]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):  # x: (..., C); computed in fp32, returned in x's dtype
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample (dim 0) while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


def _dt_bias(d_inner: int, dt_min: float, dt_max: float, floor: float = 1e-4) -> torch.Tensor:
    """Inverse-softplus of dt drawn log-uniformly in [dt_min, dt_max] (Mamba's initialisation)."""
    dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=floor)
    return dt + torch.log(-torch.expm1(-dt))


class MambaMixer(nn.Module):
    """Selective-SSM mixer. hidden: (B, L, C) -> (B, L, C). `bidirectional` adds a branch run on the
    flipped sequence (own conv/x_proj/dt_proj/A/D, shared in_proj/out_proj): out = out_proj(y + flip(y_b))."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank=None,
                 bidirectional: bool = False, dt_min: float = 0.001, dt_max: float = 0.1,
                 scan_backend: Optional[str] = None):
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.bidirectional = bidirectional
        self.scan_backend = scan_backend
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        for suffix in ("", "_b") if bidirectional else ("",):
            self._make_branch(suffix, dt_min, dt_max)

    def _make_branch(self, suffix: str, dt_min: float, dt_max: float):
        d, n, r = self.d_inner, self.d_state, self.dt_rank
        setattr(self, f"conv1d{suffix}", nn.Conv1d(d, d, self.d_conv, groups=d, padding=self.d_conv - 1, bias=True))
        setattr(self, f"x_proj{suffix}", nn.Linear(d, r + 2 * n, bias=False))
        dt_proj = nn.Linear(r, d, bias=True)
        nn.init.uniform_(dt_proj.weight, -r ** -0.5, r ** -0.5)
        with torch.no_grad():
            dt_proj.bias.copy_(_dt_bias(d, dt_min, dt_max))
        dt_proj.bias._no_reinit = True
        setattr(self, f"dt_proj{suffix}", dt_proj)
        a_name = "A_log" if suffix == "" else "A_b_log"
        setattr(self, a_name, nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d, 1)))
        setattr(self, f"D{suffix}", nn.Parameter(torch.ones(d)))
        getattr(self, a_name)._no_weight_decay = True
        getattr(self, f"D{suffix}")._no_weight_decay = True

    def init_state(self, batch: int, device=None, dtype=torch.float32) -> LayerState:
        return (torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
                torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=dtype))

    def _branch(self, x, z, suffix: str, state: Optional[LayerState]):
        """x, z: (B, D, L) -> y (B, D, L) and the new state when one was given."""
        conv = getattr(self, f"conv1d{suffix}")
        dt_proj = getattr(self, f"dt_proj{suffix}")
        A = -torch.exp(getattr(self, "A_log" if suffix == "" else "A_b_log").float())
        be = self.scan_backend
        x, conv_state = causal_conv1d(x, conv.weight[:, 0, :], conv.bias, None if state is None else state[0],
                                      activation="silu", return_final_state=True, backend=be)
        dt, B, C = self._project(x, suffix)
        y, ssm_state = selective_scan(x, dt, A, B, C, getattr(self, f"D{suffix}").float(), z=z,
                                      delta_bias=dt_proj.bias.float(), delta_softplus=True,
                                      initial_state=None if state is None else state[1],
                                      return_last_state=True, backend=be)
        if state is None:
            return y, None
        return y, (conv_state.to(state[0].dtype), ssm_state.to(state[1].dtype))

    def _project(self, x, suffix: str):
        """x: (B, D, L) after the conv -> dt before its bias (B, D, L), B and C (B, n, L)."""
        dbc = getattr(self, f"x_proj{suffix}")(rearrange(x, "b d l -> b l d"))
        dt, B, C = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, getattr(self, f"dt_proj{suffix}").weight)
        return rearrange(dt, "b l d -> b d l"), rearrange(B, "b l n -> b n l"), rearrange(C, "b l n -> b n l")

    def forward(self, hidden, state: Optional[LayerState] = None):
        """hidden: (B, L, C). With `state` (causal mixers only) returns (out, new_state)."""
        x, z = rearrange(self.in_proj(hidden), "b l d -> b d l").chunk(2, dim=1)
        if self.bidirectional:
            if state is not None:
                raise ValueError("a bidirectional mixer sees the whole sequence and carries no stream state")
            y, _ = self._branch(x, z, "", None)
            y_b, _ = self._branch(x.flip(-1), z.flip(-1), "_b", None)
            y = y + y_b.flip(-1)
        else:
            y, state = self._branch(x, z, "", state)
        out = self.out_proj(rearrange(y, "b d l -> b l d"))
        return out if state is None else (out, state)


class Block(nn.Module):
    """Prenorm residual block with the residual stream kept in fp32:
    residual = residual + drop_path(hidden); hidden = mixer(norm(residual)); the first block starts from x."""

    def __init__(self, dim: int, mixer: MambaMixer, drop_path: float = 0.0):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.mixer = mixer
        self.drop_path = DropPath(drop_path)

    def forward(self, hidden, residual=None, state: Optional[LayerState] = None):
        residual = hidden.float() if residual is None else residual + self.drop_path(hidden).float()
        normed = self.norm(residual.to(self.norm.weight.dtype))
        if state is None:
            return self.mixer(normed), residual, None
        hidden, state = self.mixer(normed, state)
        return hidden, residual, state
