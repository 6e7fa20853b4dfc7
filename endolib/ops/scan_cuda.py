"""CUDA backend: the official mamba-ssm selective-scan kernel and causal-conv1d, imported lazily.

mamba-ssm's kernel takes no initial state. Because A is diagonal, a scan started from h0 equals the
scan from zero plus a closed-form term (DESIGN.md §2):
    y_t += C_t . (exp(A * sum_{s<=t} delta_s) * h0),   h_L += exp(A * sum_s delta_s) * h0,
so streaming reuses the stock kernel unchanged; the z gate is applied after that correction.
The kernel returns its last state without a gradient (a mamba-ssm limitation): train through y.
"""
import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=None)
def kernels():
    """(selective_scan_fn, causal_conv1d_fn or None), or None when mamba-ssm cannot be imported."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or the unguarded CUDA-extension import failing: no fast path
        return None
    try:
        from causal_conv1d import causal_conv1d_fn
    except Exception:
        causal_conv1d_fn = None
    return selective_scan_fn, causal_conv1d_fn


def available(device) -> bool:
    return torch.device(device).type == "cuda" and kernels() is not None


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                        initial_state=None, return_last_state=False):
    scan_fn = kernels()[0]
    u, delta, B, C = (t.contiguous() for t in (u, delta, B, C))
    A = A.float().contiguous()
    D = None if D is None else D.float().contiguous()
    delta_bias = None if delta_bias is None else delta_bias.float().contiguous()
    if initial_state is None:
        return scan_fn(u, delta, A, B, C, D, None if z is None else z.contiguous(), delta_bias,
                       delta_softplus, return_last_state)
    y, last = scan_fn(u, delta, A, B, C, D, None, delta_bias, delta_softplus, True)
    dt = delta.float() + (delta_bias[:, None] if delta_bias is not None else 0)
    dt = F.softplus(dt) if delta_softplus else dt
    decay = torch.exp(torch.cumsum(dt, dim=-1)[..., None] * A[:, None, :])       # (b, d, l, n)
    h0 = initial_state.float()
    y = y.float() + torch.einsum("bdln,bdn,bnl->bdl", decay, h0, C.float())
    last = last + decay[:, :, -1] * h0
    if z is not None:
        y = y * F.silu(z.float())
    y = y.to(u.dtype)
    return (y, last) if return_last_state else y


def causal_conv1d_cuda(x, weight, bias=None, initial_state=None, activation="silu", return_final_state=False):
    conv_fn = kernels()[1]
    if conv_fn is None:
        from endolib.ops.scan_torch import causal_conv1d_torch
        return causal_conv1d_torch(x, weight, bias, initial_state, activation, return_final_state)
    weight = weight.to(x.dtype).contiguous()
    bias = None if bias is None else bias.to(x.dtype).contiguous()
    if initial_state is None and not return_final_state:
        return conv_fn(x.contiguous(), weight, bias, activation=activation)
    # initial/final states need the channel-last layout: (b, d, l) with stride 1 along d
    x_cl = x.transpose(1, 2).contiguous().transpose(1, 2)
    init = None if initial_state is None else initial_state.to(x.dtype).transpose(1, 2).contiguous().transpose(1, 2)
    out, final = conv_fn(x_cl, weight, bias, initial_states=init, return_final_states=True, activation=activation)
    return (out, final) if return_final_state else out
