"""Scan backends for the Mamba mixer: pure PyTorch everywhere, mamba-ssm / Triton kernels on CUDA."""
from endolib.ops.backends import (available_backends, backend_name, causal_conv1d, register_backend,
                                  selective_scan)
from endolib.ops.reference import causal_conv1d_ref, selective_scan_ref

__all__ = ["available_backends", "backend_name", "causal_conv1d", "causal_conv1d_ref", "register_backend",
           "selective_scan", "selective_scan_ref"]
