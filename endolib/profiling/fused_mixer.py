"""Fused, token-major inference forwards for Mamba mixers (batch-1 streaming, where every kernel is
latency-bound and layouts decide GEMM speed).

`fuse_mixers(model)` gives every mixer an inference forward with the same function as `MambaMixer.forward`:
- activations stay token-major, (B, L, D) rows: the depthwise causal conv runs as K shifted multiply-adds
  (one fused elementwise kernel under torch.compile, no cuDNN call, no layout copies), x_proj / dt_proj /
  out_proj read row-major activations (a GEMM of 197 rows with a column-major activation operand measured
  ~3x slower on an H200: outputs/benchmarks/gemm_layout_gpu.csv), and the Triton scan reads its inputs
  through strides and writes a token-major output;
- a bidirectional mixer stacks its two directions on a leading axis: one conv, one `bmm` per projection,
  one grouped scan (`selective_scan_grouped`, per-direction A / D / delta_bias);
- A = -exp(A_log), D and the dt bias are precomputed in float32.
Without Triton (CPU) the scan goes through the model's backend per direction: the same function.
`fold_dt_proj(model)` also folds each mixer's dt_proj into its x_proj (one GEMM fewer per branch).
The model's parameters and eager path are untouched: the constants are derived copies, rebuilt by calling
`fuse_mixers` again after a weight change. Inference only.
"""
import types

import torch
import torch.nn.functional as F
from einops import rearrange

from endolib.ops import backend_name, selective_scan
from endolib.ops import scan_triton


@torch.no_grad()
def _constants(m) -> dict:
    """The branches' parameters stacked on a leading direction axis g (1 or 2), as derived copies."""
    sfx = ("", "_b") if m.bidirectional else ("",)
    get = lambda name: [getattr(m, name + s) for s in sfx]  # noqa: E731
    return dict(
        conv_w=torch.stack([c.weight[:, 0, :].t() for c in get("conv1d")])[:, None],  # (g, 1, K, D)
        conv_b=torch.stack([c.bias for c in get("conv1d")])[:, None],                  # (g, 1, D)
        x_w=torch.stack([p.weight.t() for p in get("x_proj")]),                        # (g, D, r+2n)
        dt_w=torch.stack([p.weight.t() for p in get("dt_proj")]),                      # (g, r, D)
        A=-torch.exp(torch.stack([m.A_log] + ([m.A_b_log] if m.bidirectional else [])).float()),  # (g, D, n)
        D=torch.stack(get("D")).float(),                                               # (g, D)
        dt_bias=torch.stack([p.bias for p in get("dt_proj")]).float(),                 # (g, D)
    )


def _conv_silu(xpad, w, b, L: int):
    """Depthwise causal conv + SiLU on token-major rows: xpad (g, B, L+K-1, D) (K-1 rows of history first),
    w (g, 1, K, D), b (g, 1, D) -> (g, B, L, D), accumulated in float32 like the conv it replaces."""
    acc = b.float()[:, :, None] + sum(w[:, :, k:k + 1].float() * xpad[:, :, k:k + L].float() for k in range(w.shape[2]))
    return F.silu(acc).to(xpad.dtype)


def _project(p, u, r: int, n: int):
    """u (g, M, D) -> dt before its bias (g, M, D), B and C (g, M, n), row-major GEMMs."""
    if "xdt_w" in p:  # dt_proj folded into x_proj: one bmm gives dt, B, C
        dbc = torch.bmm(u, p["xdt_w"].to(u.dtype))
        return dbc[..., :-2 * n], dbc[..., -2 * n:-n], dbc[..., -n:]
    dbc = torch.bmm(u, p["x_w"].to(u.dtype))
    return torch.bmm(dbc[..., :r], p["dt_w"].to(u.dtype)), dbc[..., r:r + n], dbc[..., r + n:]


def _scan(mixer, p, u, dt, B, C, z, h0):
    """Token-major scan: u, dt, z (g, B, L, D), B, C (g, B, L, n), h0 (B, D, n) or None (causal only)
    -> y (g·B, L, D) contiguous, last state (causal) or None."""
    g = u.shape[0]
    cm = lambda t: rearrange(t, "g b l d -> (g b) d l")  # noqa: E731  strided views: no copies
    if p["triton"]:
        y, last = scan_triton.selective_scan_grouped(
            cm(u), cm(dt), p["A"], cm(B), cm(C), p["D"], z=cm(z), delta_bias=p["dt_bias"], delta_softplus=True,
            initial_state=h0, return_last_state=True, token_major=True)
        return y.transpose(1, 2), (last if h0 is not None else None)
    ys, last = [], None
    for i in range(g):  # the model's backend, one direction at a time
        y, last = selective_scan(cm(u[i:i + 1]), cm(dt[i:i + 1]), p["A"][i], cm(B[i:i + 1]), cm(C[i:i + 1]),
                                 p["D"][i], z=cm(z[i:i + 1]), delta_bias=p["dt_bias"][i], delta_softplus=True,
                                 initial_state=h0, return_last_state=True, backend=mixer.scan_backend)
        ys.append(y.transpose(1, 2))
    return torch.cat(ys, 0), last


def _branches(self, x, z, h0, xpad):
    """x, z: (g, B, L, D) token-major, xpad: x with its K-1 rows of conv history -> y (g·B, L, D), last state."""
    p, (g, Bsz, L, _) = self._fused, x.shape
    u = _conv_silu(xpad, p["conv_w"], p["conv_b"], L)                                 # (g, B, L, D)
    dt, B, C = _project(p, u.reshape(g, Bsz * L, -1), self.dt_rank, self.d_state)
    split = lambda t: t.reshape(g, Bsz, L, t.shape[-1])  # noqa: E731
    return _scan(self, p, u, split(dt), split(B), split(C), z, h0)


def _fused_forward(self, hidden, state=None):
    """hidden: (B, L, C) -> (B, L, C) [, new state]: `MambaMixer.forward`, token-major and fused."""
    Bsz = hidden.shape[0]
    x, z = self.in_proj(hidden).chunk(2, dim=-1)                                      # (B, L, D) views
    K = self.d_conv
    if self.bidirectional:
        if state is not None:
            raise ValueError("a bidirectional mixer sees the whole sequence and carries no stream state")
        xx = torch.stack([x, x.flip(1)])                                              # (2, B, L, D)
        y, _ = _branches(self, xx, torch.stack([z, z.flip(1)]), None, F.pad(xx, (0, 0, K - 1, 0)))
        return self.out_proj(y[:Bsz] + y[Bsz:].flip(1))
    if state is None:
        xpad = F.pad(x, (0, 0, K - 1, 0))
    else:  # the conv history carried by the stream, (B, D, K-1) as `init_state` lays it out
        xpad = torch.cat([state[0].transpose(1, 2).to(x.dtype), x], 1)
    y, last = _branches(self, x[None], z[None], None if state is None else state[1], xpad[None])
    out = self.out_proj(y)
    if state is None:
        return out
    return out, (xpad[:, -(K - 1):].transpose(1, 2).to(state[0].dtype), last.to(state[1].dtype))


def fuse_mixers(model) -> int:
    """Give every Mamba mixer of `model` the fused token-major inference forward; returns how many.
    Inference only (the constants are detached copies): use on a model in eval / no_grad."""
    count = 0
    for m in model.modules():
        if hasattr(m, "x_proj") and hasattr(m, "d_state"):
            m._fused = _constants(m)
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
    the product taken in float64): one projection of D+2n outputs instead of two GEMMs per branch. More
    FLOPs (D x D instead of D x r + r x D), the same function up to rounding. Derived copies: call again
    after a weight change; run after `fuse_mixers` so fused mixers fold too. Returns mixers folded."""
    count = 0
    for m in model.modules():
        if not (hasattr(m, "x_proj") and hasattr(m, "dt_proj")):
            continue
        r = m.dt_rank
        if getattr(m, "_fused", None) is not None:
            p = m._fused  # stacked (g, D, r+2n) / (g, r, D), transposed: fold on the transposes
            p["xdt_w"] = _fold(p["x_w"].transpose(1, 2), p["dt_w"].transpose(1, 2), r).transpose(1, 2)
        for suffix in ("", "_b") if m.bidirectional else ("",):
            xw, dw = getattr(m, f"x_proj{suffix}").weight, getattr(m, f"dt_proj{suffix}").weight
            setattr(m, f"_xdt_w{suffix}", _fold(xw, dw, r))
        m._project = types.MethodType(_folded_project, m)
        count += 1
    return count
