"""One entry point per op, dispatched to a registered backend ('torch', 'cuda', 'triton').

Choice, in order: the `backend=` argument, the ENDOLIB_SCAN_BACKEND environment variable, then 'auto'
(on a CUDA tensor: cuda if mamba-ssm imports, else triton if it imports, else torch; on CPU: torch).
"""
import logging
import os
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from endolib.ops import scan_cuda, scan_torch

log = logging.getLogger(__name__)
ENV_VAR = "ENDOLIB_SCAN_BACKEND"


@dataclass
class Backend:
    scan: Callable
    conv: Callable
    available: Callable[[torch.device], bool]


_REGISTRY: dict = {}
_AUTO_ORDER_CUDA = ("cuda", "triton", "torch")


def register_backend(name: str, scan_fn: Callable, available_fn: Callable, conv_fn: Optional[Callable] = None):
    """Add a backend; conv_fn defaults to the PyTorch causal conv."""
    _REGISTRY[name] = Backend(scan_fn, conv_fn or scan_torch.causal_conv1d_torch, available_fn)


register_backend("torch", scan_torch.selective_scan_torch, lambda device: True)
register_backend("cuda", scan_cuda.selective_scan_cuda, scan_cuda.available, scan_cuda.causal_conv1d_cuda)
try:  # registers 'triton' when that module exists; it must never break import of the package
    from endolib.ops import scan_triton  # noqa: F401
except ImportError:
    pass


def available_backends(device="cpu") -> list:
    device = torch.device(device)
    return [name for name, b in _REGISTRY.items() if b.available(device)]


def backend_name(device="cpu", backend: Optional[str] = None) -> str:
    """The backend that an op on `device` would use now (see module docstring for the order)."""
    device = torch.device(device)
    choice = backend or os.environ.get(ENV_VAR, "auto") or "auto"
    if choice == "auto":
        order = _AUTO_ORDER_CUDA if device.type == "cuda" else ("torch",)
        return next(n for n in order if n in _REGISTRY and _REGISTRY[n].available(device))
    if choice not in _REGISTRY:
        raise ValueError(f"unknown scan backend {choice!r} (from {'argument' if backend else ENV_VAR}); "
                         f"expected one of {sorted(_REGISTRY)} or 'auto'.")
    if not _REGISTRY[choice].available(device):
        raise ValueError(f"scan backend {choice!r} is not available on device {device}; available there: "
                         f"{available_backends(device)}. Install the `cuda` extra on a GPU machine, or choose 'torch'.")
    return choice


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   initial_state=None, return_last_state=False, backend: Optional[str] = None):
    """Selective scan with mamba-ssm semantics (see `endolib.ops.reference.selective_scan_ref`)."""
    fn = _REGISTRY[backend_name(u.device, backend)].scan
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, return_last_state)


def causal_conv1d(x, weight, bias=None, initial_state=None, activation="silu", return_final_state=False,
                  backend: Optional[str] = None):
    """Depthwise causal conv over (b, d, l) with an optional carried state (b, d, w-1)."""
    fn = _REGISTRY[backend_name(x.device, backend)].conv
    return fn(x, weight, bias, initial_state, activation, return_final_state)
