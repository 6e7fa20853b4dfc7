"""Timing harness: streaming per-frame latency, clip throughput and peak memory, as tidy CSV rows.

Every measurement warms up first, then times each call on its own: CUDA events on a GPU (the host clock
never reads an unfinished device), `time.perf_counter` on a CPU. Peak memory is the working memory of the
measured calls, above what was allocated before them (weights, carried state and the input clip are not
in it): the CUDA allocator's peak on a GPU, on a CPU the peak of live tensor storage (`CpuPeakMemory`).
A row is one measurement: model, mode, backend, dtype, batch, frames seen, median / p90 latency, FPS,
peak memory, plus the environment (`environment()`).
"""
import importlib.metadata
import logging
import platform
import time
import weakref
from contextlib import contextmanager
from typing import Callable, Iterable, List, Optional

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

log = logging.getLogger(__name__)


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def environment(device, backend: Optional[str] = None, dtype=None) -> dict:
    """Device name and library versions (read from package metadata: nothing optional is imported)."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})"
    return dict(device=device.type, device_name=name, torch=torch.__version__, cuda=torch.version.cuda or "none",
                triton=_version("triton"), mamba_ssm=_version("mamba-ssm"), causal_conv1d=_version("causal-conv1d"),
                backend=backend or "n/a", dtype=str(dtype).replace("torch.", "") if dtype is not None else "n/a",
                threads=torch.get_num_threads())


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable, device, iters: int, warmup: int = 2) -> np.ndarray:
    """Milliseconds of each of `iters` calls of fn() after `warmup` untimed calls."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    sync(device)
    if device.type == "cuda":
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for a, b in ev:
            a.record()
            fn()
            b.record()
        torch.cuda.synchronize(device)
        return np.array([a.elapsed_time(b) for a, b in ev])
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return np.array(out)


def time_in_graph(fn: Callable, device, reps: int = 20, iters: int = 10) -> np.ndarray:
    """GPU milliseconds per call of fn(), with `reps` calls captured in one CUDA graph replayed `iters` times:
    kernel time without the host's launch overhead (what a step inside FastStream's graph pays)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):  # compile / warm up outside the capture
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            fn()
    graph.replay()
    return time_calls(graph.replay, device, iters=iters, warmup=1) / reps


class CpuPeakMemory(TorchDispatchMode):
    """Peak bytes of live tensor storages created by ops inside the context (CPU stand-in for the
    CUDA allocator's peak). Storages are counted once however many views point at them."""

    def __init__(self):
        super().__init__()
        self.live, self.current, self.peak = {}, 0, 0

    def _release(self, key):
        n, nbytes = self.live[key]
        if n <= 1:
            del self.live[key]
            self.current -= nbytes
        else:
            self.live[key] = (n - 1, nbytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                key = t.untyped_storage().data_ptr()
                if key in self.live:
                    self.live[key] = (self.live[key][0] + 1, self.live[key][1])
                else:
                    self.live[key] = (1, t.untyped_storage().nbytes())
                    self.current += self.live[key][1]
                    self.peak = max(self.peak, self.current)
                weakref.finalize(t, self._release, key)
        return out


@contextmanager
def peak_memory(device):
    """Yields a dict whose 'mb' is filled on exit with the peak memory (MiB) used inside the block."""
    device = torch.device(device)
    res = {"mb": float("nan")}
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield res
        sync(device)
        res["mb"] = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
    else:
        with CpuPeakMemory() as mode:
            yield res
        res["mb"] = mode.peak / 2 ** 20


def _row(model, mode, frames_seen, batch, ms: np.ndarray, frames_per_call: int, mem_mb: float, **extra) -> dict:
    med = float(np.median(ms))
    return dict(model=model, mode=mode, frames_seen=frames_seen, batch=batch, iters=len(ms),
                latency_ms_median=med, latency_ms_p90=float(np.percentile(ms, 90)),
                fps=batch * frames_per_call * 1e3 / med, peak_mem_mb=mem_mb, status="ok", **extra)


def measure_stream(model_name: str, reset: Callable, step: Callable, frame_pool: List[torch.Tensor],
                   frames_seen: Iterable[int], device, window: int = 32, mode: str = "stream", **extra) -> list:
    """Stream frames one call at a time; at each checkpoint F report the latency of the last `window` calls
    (ending at F frames seen) and the peak memory over them. step(frame) consumes one pool entry."""
    device = torch.device(device)
    checkpoints = sorted(set(int(f) for f in frames_seen))
    reset()
    for f in frame_pool[:2]:  # warm-up on the stream, then a fresh one
        step(f)
    sync(device)
    reset()
    rows, seen, k = [], 0, frame_pool[0].shape[2]
    batch = frame_pool[0].shape[0]
    for target in checkpoints:
        w = max(1, min(window, (target - seen) // k))
        while seen + (w * k) < target:  # advance untimed to the start of the window
            step(frame_pool[(seen // k) % len(frame_pool)])
            seen += k
        it = iter(range(w))
        with peak_memory(device) as mem:
            ms = time_calls(lambda: step(frame_pool[next(it) % len(frame_pool)]), device, iters=w, warmup=0)
        seen += w * k
        rows.append(_row(model_name, mode, seen, batch, ms, k, mem["mb"], **extra))
    return rows


def measure_recompute(model_name: str, forward: Callable, make_clip: Callable, frames_seen: Iterable[int], device,
                      max_ms: float = 2000.0, iters: int = 5, mode: str = "recompute", **extra) -> list:
    """Per new frame, recompute the whole clip of the F frames seen: latency = one forward on F frames.
    Stops (status 'skipped') once a forward exceeds `max_ms`, and records 'oom' when memory runs out."""
    device = torch.device(device)
    rows, too_slow = [], False
    for f in sorted(set(int(f) for f in frames_seen)):
        clip = None
        if too_slow:
            rows.append(dict(model=model_name, mode=mode, frames_seen=f, batch=1, status="skipped", **extra))
            continue
        try:
            clip = make_clip(f)
            with peak_memory(device) as mem:
                first = time_calls(lambda: forward(clip), device, iters=1, warmup=1)
            n = 1 if first[0] * iters > 4 * max_ms else iters
            ms = np.concatenate([first, time_calls(lambda: forward(clip), device, iters=n - 1, warmup=0)]) \
                if n > 1 else first
            rows.append(_row(model_name, mode, f, clip.shape[0], ms, 1, mem["mb"], **extra))
            too_slow = float(np.median(ms)) > max_ms
        except torch.OutOfMemoryError:
            rows.append(dict(model=model_name, mode=mode, frames_seen=f, batch=1, status="oom", **extra))
            too_slow = True
            torch.cuda.empty_cache()
        del clip
    return rows


def measure_clip(model_name: str, forward: Callable, clip: torch.Tensor, device, iters: int = 5,
                 mode: str = "clip", **extra) -> dict:
    """Throughput of whole-clip inference: frames/s = batch * T / median latency."""
    with peak_memory(device) as mem:
        ms = time_calls(lambda: forward(clip), device, iters=iters, warmup=1)
    return _row(model_name, mode, clip.shape[2], clip.shape[0], ms, clip.shape[2], mem["mb"], **extra)


def layer_breakdown(model, step: Callable, device, iters: int = 5) -> dict:
    """Milliseconds per call spent in each layer type of an EndoMamba step: spatial / temporal blocks
    (forward hooks, device synchronised), and the rest (embedding, final norm, pool, head)."""
    device = torch.device(device)
    acc = {"spatial": 0.0, "temporal": 0.0}
    t0 = {}

    def pre(i):
        def hook(*_):
            sync(device)
            t0[i] = time.perf_counter()
        return hook

    def post(i, kind):
        def hook(*_):
            sync(device)
            acc[kind] += (time.perf_counter() - t0[i]) * 1e3
        return hook

    handles = []
    for i, layer in enumerate(model.layers):
        kind = "spatial" if i < model.num_spatial else "temporal"
        handles += [layer.register_forward_pre_hook(pre(i)), layer.register_forward_hook(post(i, kind))]
    try:
        step()
        acc.update(spatial=0.0, temporal=0.0)
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            step()
        sync(device)
        total = (time.perf_counter() - start) * 1e3 / iters
    finally:
        for h in handles:
            h.remove()
    out = {k: v / iters for k, v in acc.items()}
    out["embed_norm_head"] = max(0.0, total - out["spatial"] - out["temporal"])
    return out
