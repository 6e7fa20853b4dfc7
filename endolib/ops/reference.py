"""Oracles: plain sequential loops for the selective scan and the causal depthwise conv.

Obviously correct and slow; every fast backend is tested against these (pass float64 inputs for a
float64 oracle: they compute in the dtype they are given)."""
import torch
import torch.nn.functional as F


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       initial_state=None, return_last_state=False):
    """u, delta, z: (b, d, l); A: (d, n); B, C: (b, n, l); D, delta_bias: (d,); initial_state: (b, d, n).

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t;  y_t = <C_t, h_t> + D * u_t;  y *= silu(z).
    """
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, l = u.shape
    h = initial_state if initial_state is not None else u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(l):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D[:, None]
    if z is not None:
        y = y * F.silu(z)
    return (y, h) if return_last_state else y


def causal_conv1d_ref(x, weight, bias=None, initial_state=None, activation="silu", return_final_state=False):
    """x: (b, d, l); weight: (d, w); initial_state: (b, d, w-1) = the last w-1 inputs seen before x."""
    b, d, l = x.shape
    w = weight.shape[1]
    prev = initial_state if initial_state is not None else x.new_zeros(b, d, w - 1)
    xp = torch.cat([prev, x], dim=-1)
    out = sum(weight[:, k, None] * xp[:, :, k:k + l] for k in range(w))
    if bias is not None:
        out = out + bias[:, None]
    if activation == "silu":
        out = F.silu(out)
    return (out, xp[:, :, -(w - 1):]) if return_final_state else out
