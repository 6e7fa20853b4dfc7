"""Floor model for one streamed frame: bytes over bandwidth, FLOPs over matmul rate, launches over launch rate.

For an EndoMamba step (batch 1, one frame) we count, on any device:
- FLOPs of the matrix products and convolutions (`torch.utils.flop_counter`; the scan's elementwise work is
  a few MFLOP and ignored);
- bytes that must move per frame: every weight once (in the run dtype), each layer's input/output hidden and
  fp32 residual once, the carried state read and written once, the frame in and the features out;
- dispatched ops (every non-view ATen op would be a kernel launch when run eagerly on a GPU), and the
  bytes those ops read and write in the model's own dtype (what an unfused implementation moves).
On the GPU we measure the three ceilings (`measure_ceilings`): a large device-to-device copy (bytes read +
written per second), a large bf16 matrix product (FLOP/s), and the time per tiny kernel, eager and inside a
CUDA graph. The floor is the largest of the three times; the term that gives it dominates.
"""
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

log = logging.getLogger(__name__)


LOOKUPS = ("index_select", "embedding", "gather", "index")  # ops that read only the rows they return


class OpCounter(TorchDispatchMode):
    """Counts non-view ATen ops and the bytes of their tensor inputs + outputs (an unfused upper bound), and
    what the ops read of tensors that existed before the context (`read_before`: (storage, offset, numel) ->
    bytes; a table looked up by index counts the rows returned): the weights, constants, state and input
    that even a fully fused step must load."""

    def __init__(self):
        super().__init__()
        self.ops, self.bytes, self.by_name = 0, 0, {}
        self.created, self.read_before = set(), {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not getattr(func, "is_view", False) and func.overloadpacket.__name__ not in ("detach", "lift_fresh"):
            self._reads(func, args, kwargs, out)
            self.ops += 1
            name = func.overloadpacket.__name__
            self.by_name[name] = self.by_name.get(name, 0) + 1
            flat = list(args) + list((kwargs or {}).values()) + list(out if isinstance(out, (tuple, list)) else [out])
            self.bytes += sum(t.numel() * t.element_size() for t in flat if isinstance(t, torch.Tensor))
        return out

    def _reads(self, func, args, kwargs, out):
        """Record what a (non-view) op reads of tensors that existed before, then its outputs as created."""
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        for i, t in enumerate(ins):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in self.created:
                lookup = i == 0 and func.overloadpacket.__name__ in LOOKUPS and outs
                nbytes = (outs[0] if lookup else t).numel() * t.element_size()
                key = (ptr, t.storage_offset(), t.numel())
                self.read_before[key] = max(self.read_before.get(key, 0), nbytes)
        self.created.update(t.untyped_storage().data_ptr() for t in outs)


@torch.no_grad()
def step_cost(model, frames_per_step: int = 1, dtype=torch.bfloat16) -> dict:
    """Cost of one streamed step of `model` (EndoMamba, batch 1) after some frames: FLOPs, bytes, ops.
    Weight bytes are those the step reads (parameters, and the derived constants of a transformed model such
    as `FastStream(...).model`, e.g. folded projections), counted in `dtype`."""
    p0 = next(model.parameters())
    x = torch.randn(1, 3, frames_per_step, model.img_size, model.img_size, device=p0.device, dtype=p0.dtype)
    state = model.init_stream(1)
    model.step(x, state)  # a warm state, as in a running stream
    with FlopCounterMode(display=False) as fc:
        model.step(x, state)
    own = {t.untyped_storage().data_ptr() for t in [x, *state.conv, *state.ssm]}  # io and state: counted below
    with OpCounter() as oc:
        model.step(x, state)
    item = torch.empty((), dtype=dtype).element_size()
    p_item = p0.element_size()  # counted as if stored in dtype
    L = model.num_tokens * frames_per_step
    C, D = model.embed_dim, model.d_inner
    n_temporal = model.depth - model.num_spatial
    weights = sum(nb for (ptr, _, _), nb in oc.read_before.items() if ptr not in own) * item / p_item
    acts = model.depth * L * C * (2 * item + 2 * 4)  # hidden in/out in dtype, residual in/out in fp32
    d_state = model.layers[-1].mixer.d_state
    state_bytes = n_temporal * 2 * (D * d_state * 4 + D * (model.layers[-1].mixer.d_conv - 1) * item)
    io = x.numel() * item + frames_per_step * C * item
    return dict(flops=float(fc.get_total_flops()), weight_bytes=float(weights), activation_bytes=float(acts),
                state_bytes=float(state_bytes), io_bytes=float(io),
                min_bytes=float(weights + acts + state_bytes + io), dispatched_ops=oc.ops,
                unfused_op_bytes=float(oc.bytes))


@dataclass
class Ceilings:
    copy_bytes_per_s: float   # bytes read + written per second, large device-to-device copy
    matmul_flops_per_s: float  # large bf16 matrix product
    launch_s_eager: float     # seconds per tiny kernel launched from Python
    launch_s_graph: float     # seconds per tiny kernel replayed inside a CUDA graph


def _median_ms(fn, iters: int, warmup: int = 3) -> float:
    from endolib.profiling.harness import time_calls
    import numpy as np
    return float(np.median(time_calls(fn, "cuda", iters=iters, warmup=warmup)))


def measure_ceilings(device="cuda", copy_mib: int = 1024, mm: int = 8192, launches: int = 1000) -> Ceilings:
    """Measure the three ceilings on a CUDA device (random data, warm-up, median of events)."""
    dev = torch.device(device)
    src = torch.randn(copy_mib * 2 ** 20 // 4, device=dev)
    dst = torch.empty_like(src)
    copy_ms = _median_ms(lambda: dst.copy_(src), iters=20)
    bw = 2 * src.numel() * 4 / (copy_ms * 1e-3)
    del src, dst
    a = torch.randn(mm, mm, device=dev, dtype=torch.bfloat16)
    b = torch.randn(mm, mm, device=dev, dtype=torch.bfloat16)
    mm_ms = _median_ms(lambda: a @ b, iters=10)
    rate = 2 * mm ** 3 / (mm_ms * 1e-3)
    del a, b
    t = torch.randn(1, device=dev)

    def many():
        for _ in range(launches):
            t.add_(1e-7)
    eager_ms = _median_ms(many, iters=5)
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        many()
    torch.cuda.current_stream(dev).wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        many()
    graph_ms = _median_ms(g.replay, iters=10)
    return Ceilings(bw, rate, eager_ms * 1e-3 / launches, graph_ms * 1e-3 / launches)


def count_cuda_kernels(fn) -> int:
    """Number of GPU kernels (and memcpy/memset) that one call of fn() launches (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    n = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    if n == 0:  # some builds attach kernels to their CPU ops only
        n = sum(len(getattr(e, "kernels", []) or []) for e in prof.events())
    return n


def floor_rows(cost: dict, ceil: Ceilings, launches: int, measured_ms: float, graph: bool = True) -> list:
    """Tidy rows: each floor term in ms, which dominates, the floor and measured / floor."""
    launch_s = ceil.launch_s_graph if graph else ceil.launch_s_eager
    terms = {"bytes / bandwidth": cost["min_bytes"] / ceil.copy_bytes_per_s,
             "flops / matmul rate": cost["flops"] / ceil.matmul_flops_per_s,
             "launches x launch latency": launches * launch_s}
    floor_s = max(terms.values())
    dom = max(terms, key=terms.get)
    base = dict(launches=launches, measured_ms=measured_ms, floor_ms=floor_s * 1e3,
                measured_over_floor=measured_ms / (floor_s * 1e3), dominant=dom,
                floor_without_launches_ms=max(list(terms.values())[:2]) * 1e3, **cost, **asdict(ceil))
    return [dict(term=k, ms=v * 1e3, **base) for k, v in terms.items()]


def _family(name: str) -> str:
    low = name.lower()
    if "_fwd_kernel" in name or (name.startswith("_fwd_") and name.endswith("_kernel")) or name == "walk_scan":
        return "scan"  # mamba-ssm's, our Triton kernels, our NVRTC kernel (endolib.ops.scan_walk)
    if name.startswith("triton_") and not name.startswith(("triton_mm", "triton_bmm", "triton_tem")):
        return "conv" if "conv" in low else "triton fused"  # inductor's fused pointwise / reduction kernels
    if any(k in low for k in ("gemm", "nvjet", "cutlass", "xmma", "sm90", "triton_mm", "triton_bmm", "triton_tem")):
        return "matmul"
    return "conv" if "conv" in low else "other"


def kernel_table(fn) -> list:
    """GPU time of one call of fn() per kernel name: rows of name, family (scan, matmul, conv, triton fused,
    other), count and total µs, largest first."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = {}
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        r = names.setdefault(e.name, dict(name=e.name, family=_family(e.name), count=0, us=0.0))
        r["count"] += 1
        r["us"] += e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
    return sorted(names.values(), key=lambda r: -r["us"])


def kernel_breakdown(table: list) -> list:
    """`kernel_table` rows summed by family: family, kernel count, µs, largest first. Their sum is the GPU
    busy time of the call; the rest of a step is launch gaps."""
    fams = {}
    for r in table:
        f = fams.setdefault(r["family"], dict(family=r["family"], count=0, us=0.0))
        f["count"] += r["count"]
        f["us"] += r["us"]
    return sorted(fams.values(), key=lambda r: -r["us"])


# GEMMs of one streamed endomamba_small frame (197 tokens): (name, M, K, N)
STREAM_GEMMS = (("in_proj", 197, 384, 1536), ("x_proj", 197, 768, 56), ("dt_proj", 197, 24, 768),
                ("out_proj", 197, 768, 384), ("x_proj+dt_proj folded", 197, 768, 800))


def time_gemm_layouts(device, gemms=STREAM_GEMMS, dtype=torch.bfloat16) -> list:
    """GPU µs per `F.linear` inside a CUDA graph, with the activation operand row-major (token-major rows) or
    column-major (the transposed view of a channel-major (d, l) tensor), for the GEMMs of a streamed frame."""
    from endolib.profiling.harness import time_in_graph
    rows = []
    for name, m, k, n in gemms:
        w = torch.randn(n, k, device=device, dtype=dtype)
        for layout, a in (("row-major", torch.randn(m, k, device=device, dtype=dtype)),
                          ("column-major", torch.randn(k, m, device=device, dtype=dtype).t())):
            us = float(np.median(time_in_graph(lambda: F.linear(a, w), device))) * 1e3
            rows.append(dict(gemm=name, m=m, k=k, n=n, activation_layout=layout, us=us))
    return rows
