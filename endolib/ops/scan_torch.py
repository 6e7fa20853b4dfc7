"""Pure-PyTorch selective scan and causal conv: run anywhere, differentiable by autograd.

The scan is chunked: inside a chunk of K steps a log-depth (Hillis-Steele) parallel scan composes the
linear recurrences h_t = a_t * h_{t-1} + b_t, using only products of decays a <= 1 (no division, so no
overflow however fast the state decays); a Python loop carries the state across chunks (L / K steps).
"""
import torch
import torch.nn.functional as F

DEFAULT_CHUNK = 128


def _scan_chunk(a, x, h_prev):
    """a, x: (b, d, k, n) decays and inputs; h_prev: (b, d, n). Returns all states (b, d, k, n). No autograd."""
    x = torch.cat([x[:, :, :1] + a[:, :, :1] * h_prev[:, :, None], x[:, :, 1:]], dim=2)
    k, step = x.shape[2], 1
    while step < k:
        x = torch.cat([x[:, :, :step], x[:, :, step:] + a[:, :, step:] * x[:, :, :-step]], dim=2)
        if step * 2 < k:
            a = torch.cat([a[:, :, :step], a[:, :, step:] * a[:, :, :-step]], dim=2)
        step *= 2
    return x


class _LinearScan(torch.autograd.Function):
    """h_t = a_t * h_{t-1} + x_t along dim 2. The backward is the adjoint recurrence run in reverse,
    lam_t = g_t + a_{t+1} * lam_{t+1}, so autograd records one node per chunk instead of every slice."""

    @staticmethod
    def forward(ctx, a, x, h0):  # a, x: (b, d, k, n); h0: (b, d, n)
        h = _scan_chunk(a, x, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, g):
        a, h, h0 = ctx.saved_tensors
        a_next = torch.cat([a[:, :, 1:], torch.zeros_like(a[:, :, :1])], dim=2)
        lam = _scan_chunk(a_next.flip(2), g.flip(2), torch.zeros_like(h0)).flip(2)
        h_prev = torch.cat([h0[:, :, None], h[:, :, :-1]], dim=2)
        return lam * h_prev, lam, a[:, :, 0] * lam[:, :, 0]


def selective_scan_torch(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                         initial_state=None, return_last_state=False, chunk_size=DEFAULT_CHUNK):
    """Same contract as `endolib.ops.selective_scan_ref`; computes in fp32 (or fp64 for fp64 input)."""
    out_dtype = u.dtype
    ct = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(ct) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(ct)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, l = u.shape
    h = initial_state.to(ct) if initial_state is not None else u.new_zeros(b, d, A.shape[1])
    ys = []
    for s in range(0, l, chunk_size):
        dt, uu, bb, cc = delta[:, :, s:s + chunk_size], u[:, :, s:s + chunk_size], B[:, :, s:s + chunk_size], C[:, :, s:s + chunk_size]
        a = torch.exp(dt[..., None] * A[:, None, :])                      # (b, d, k, n)
        x = (dt * uu)[..., None] * bb.transpose(1, 2)[:, None]              # (b, d, k, n)
        hs = _LinearScan.apply(a, x, h)
        ys.append(torch.einsum("bdkn,bnk->bdk", hs, cc))
        h = hs[:, :, -1]
    y = torch.cat(ys, dim=-1)
    if D is not None:
        y = y + u * D.to(ct)[:, None]
    if z is not None:
        y = y * F.silu(z.to(ct))
    y = y.to(out_dtype)
    return (y, h) if return_last_state else y


def causal_conv1d_torch(x, weight, bias=None, initial_state=None, activation="silu", return_final_state=False):
    """x: (b, d, l); weight: (d, w); initial_state: (b, d, w-1). Depthwise conv over [state, x], no padding."""
    b, d, l = x.shape
    w = weight.shape[1]
    prev = initial_state.to(x.dtype) if initial_state is not None else x.new_zeros(b, d, w - 1)
    xp = torch.cat([prev, x], dim=-1)
    if l == 0:  # nothing new: empty output, the state passes through
        return (x, prev) if return_final_state else x
    out = F.conv1d(xp, weight[:, None, :].to(x.dtype), None if bias is None else bias.to(x.dtype), groups=d)
    if activation == "silu":
        out = F.silu(out)
    return (out, xp[:, :, -(w - 1):]) if return_final_state else out
