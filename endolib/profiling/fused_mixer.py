"""Fused inference for bidirectional (spatial) Mamba mixers: both directions as ONE batched computation.

A bidirectional `MambaMixer` runs two branches (forward on the sequence, backward on its flip), each with
its own depthwise conv, x_proj, dt_proj, A, D: about twice the kernels of a causal layer, and at batch-1
streaming each kernel is latency-, not work-bound. `fuse_bidirectional(model)` gives every bidirectional
mixer an inference forward that stacks the two directions:
- the conv runs once over 2·d_inner channels (the flipped input in the second half, its weights stacked);
- x_proj and dt_proj run as one `bmm` each over the two directions (weights stacked on a leading axis);
- the scan runs once over a batch of 2·B with per-direction A / D / delta_bias (`selective_scan_grouped`,
  Triton) or, without Triton, per direction through the model's backend.
`fold_dt_proj(model)` also folds each mixer's dt_proj into its x_proj (one GEMM fewer per branch).
The model's parameters and eager path are untouched (the stacked weights are derived copies, rebuilt by
calling `fuse_bidirectional` again after a weight change). Same function as `MambaMixer.forward`.
"""
import types

import torch
import torch.nn.functional as F
from einops import rearrange

from endolib.ops import backend_name, selective_scan
from endolib.ops import scan_triton


@torch.no_grad()
def _stacked(mixer) -> dict:
    """The two branches' parameters stacked on a leading direction axis (derived copies)."""
    m = mixer
    return dict(
        conv_w=torch.cat([m.conv1d.weight, m.conv1d_b.weight], 0),            # (2D, 1, w)
        conv_b=torch.cat([m.conv1d.bias, m.conv1d_b.bias], 0),                # (2D,)
        x_w=torch.stack([m.x_proj.weight.t(), m.x_proj_b.weight.t()]),        # (2, D, r+2n)
        dt_w=torch.stack([m.dt_proj.weight.t(), m.dt_proj_b.weight.t()]),     # (2, r, D)
        A=-torch.exp(torch.stack([m.A_log, m.A_b_log]).float()),             # (2, D, n)
        D=torch.stack([m.D, m.D_b]).float(),                                  # (2, D)
        dt_bias=torch.stack([m.dt_proj.bias, m.dt_proj_b.bias]).float(),      # (2, D)
    )


def _scan(mixer, p, u, dt, B, C, z):
    # u, dt, z: (2B, D, L), B, C: (2B, n, L), first half forward -> y (2B, D, L)
    if p["triton"]:
        return scan_triton.selective_scan_grouped(u, dt, p["A"], B, C, p["D"], z=z, delta_bias=p["dt_bias"],
                                                  delta_softplus=True)
    h = u.shape[0] // 2
    ys = [selective_scan(u[s], dt[s], p["A"][g], B[s], C[s], p["D"][g], z=z[s], delta_bias=p["dt_bias"][g],
                         delta_softplus=True, backend=mixer.scan_backend)
          for g, s in enumerate((slice(0, h), slice(h, None)))]
    return torch.cat(ys, 0)


def _fused_forward(self, hidden, state=None):
    """hidden: (B, L, C) -> (B, L, C); a bidirectional mixer's forward with the directions batched."""
    if state is not None:
        raise ValueError("a bidirectional mixer sees the whole sequence and carries no stream state")
    p, (Bsz, L, _) = self._fused, hidden.shape
    r, n = self.dt_rank, self.d_state
    x, z = rearrange(self.in_proj(hidden), "b l d -> b d l").chunk(2, dim=1)
    xx = torch.cat([x, x.flip(-1)], 1)                                                  # (B, 2D, L)
    xx = F.silu(F.conv1d(xx, p["conv_w"].to(xx.dtype), p["conv_b"].to(xx.dtype), padding=self.d_conv - 1,
                         groups=xx.shape[1])[..., :L])
    u = rearrange(xx, "b (g d) l -> (g b) d l", g=2)                                   # (2B, D, L)
    uu = rearrange(u, "(g b) d l -> g (b l) d", g=2)
    if "xdt_w" in p:  # dt_proj folded into x_proj: one bmm gives dt, B, C
        dbc = torch.bmm(uu, p["xdt_w"].to(u.dtype))                                     # (2, B L, D+2n)
        dt, r = dbc[..., :-2 * n], dbc.shape[-1] - 2 * n
    else:
        dbc = torch.bmm(uu, p["x_w"].to(u.dtype))                                       # (2, B L, r+2n)
        dt = torch.bmm(dbc[..., :r], p["dt_w"].to(u.dtype))                             # (2, B L, D)
    dt = rearrange(dt, "g (b l) d -> (g b) d l", b=Bsz)
    B = rearrange(dbc[..., r:r + n], "g (b l) n -> (g b) n l", b=Bsz)
    C = rearrange(dbc[..., r + n:], "g (b l) n -> (g b) n l", b=Bsz)
    zz = torch.cat([z, z.flip(-1)], 0)                                                  # (2B, D, L)
    y = _scan(self, p, u, dt, B, C, zz)
    y = y[:Bsz] + y[Bsz:].flip(-1)
    return self.out_proj(rearrange(y, "b d l -> b l d"))


def fuse_bidirectional(model) -> int:
    """Give every bidirectional mixer of `model` the fused inference forward; returns how many were fused.
    Inference only (the stacked weights are detached copies): use on a model in eval / no_grad."""
    count = 0
    for m in model.modules():
        if getattr(m, "bidirectional", False) and hasattr(m, "conv1d_b"):
            m._fused = _stacked(m)
            dev = m.A_log.device  # decided here, once: no backend lookups inside a traced step
            m._fused["triton"] = (m.scan_backend or backend_name(dev)) == "triton" and scan_triton.available(dev)
            m.forward = types.MethodType(_fused_forward, m)
            count += 1
    return count


@torch.no_grad()
def _fold(x_w, dt_w, r: int):
    """x_proj weight (.., r+2n, D) and dt_proj weight (.., D, r) -> (.., D+2n, D): dt = (W_dt W_x[:r]) x."""
    folded = torch.cat([dt_w.double() @ x_w[..., :r, :].double(), x_w[..., r:, :].double()], -2)
    return folded.to(x_w.dtype)


def _folded_project(self, x, suffix: str):
    """`MambaMixer._project` with dt_proj folded into x_proj: one GEMM instead of two."""
    dbc = F.linear(rearrange(x, "b d l -> b l d"), getattr(self, f"_xdt_w{suffix}"))
    dt, B, C = torch.split(dbc, [self.d_inner, self.d_state, self.d_state], dim=-1)
    return rearrange(dt, "b l d -> b d l"), rearrange(B, "b l n -> b n l"), rearrange(C, "b l n -> b n l")


def fold_dt_proj(model) -> int:
    """Fold every mixer's dt_proj into its x_proj for inference (dt = W_dt (W_x[:r] x) = (W_dt W_x[:r]) x,
    the product taken in float64): one projection of D+2n outputs instead of two GEMMs per branch, i.e. one
    kernel fewer per branch at batch-1 streaming, where each GEMM is latency-bound. More FLOPs (D x D instead
    of D x r + r x D), the same function up to rounding. Derived copies: call again after a weight change.
    Run after `fuse_bidirectional` so fused mixers fold their stacked weights too. Returns mixers folded."""
    count = 0
    for m in model.modules():
        if not (hasattr(m, "x_proj") and hasattr(m, "dt_proj")):
            continue
        r = m.dt_rank
        if getattr(m, "_fused", None) is not None:
            p = m._fused  # stacked (2, D, r+2n) / (2, r, D), transposed: fold on the transposes
            p["xdt_w"] = _fold(p["x_w"].transpose(1, 2), p["dt_w"].transpose(1, 2), r).transpose(1, 2)
        for suffix in ("", "_b") if m.bidirectional else ("",):
            xw, dw = getattr(m, f"x_proj{suffix}").weight, getattr(m, f"dt_proj{suffix}").weight
            setattr(m, f"_xdt_w{suffix}", _fold(xw, dw, r))
        m._project = types.MethodType(_folded_project, m)
        count += 1
    return count
