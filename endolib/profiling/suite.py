"""The speed comparison, one function per family of measurements, shared by the notebook (CPU) and the GPU module.

Each function builds what it measures, runs the harness and returns tidy rows (list of dicts); `speed_table`
puts them in one DataFrame with the environment columns. Models are random-init: speed does not depend on
the weights. Frames are random, ImageNet-normalised-like values (never zeros), a small pool rotated.
"""
import copy
import logging
import math
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import torch

from endolib.models import create_model
from endolib.profiling import harness
from endolib.profiling.baselines import build_baseline
from endolib.profiling.fast_stream import FastStream, set_scan_backend

log = logging.getLogger(__name__)
# transformers builds VideoMAE's sinusoid table in a Python loop over every token (~100k at 1024 frames)
VIDEOMAE_MAX_FRAMES = 256
SIZE_OF = {"endomamba_nano": "nano", "endomamba_tiny": "tiny", "endomamba_small": "small"}


def frame_pool(n: int, img_size: int, device, dtype, k: int = 1, batch: int = 1, seed: int = 0) -> list:
    """n distinct random clips (batch, 3, k, H, W)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, k, img_size, img_size, generator=g).to(device, dtype) for _ in range(n)]


def _clip(f: int, img_size: int, device, dtype, batch: int = 1):
    """A random clip (batch, 3, f, H, W), drawn on the device (a 1024-frame clip is 150M values)."""
    g = torch.Generator(device=device).manual_seed(f)
    return torch.randn(batch, 3, f, img_size, img_size, generator=g, device=device).to(dtype)


def _as(model, device, dtype, backend):
    """A copy of `model` on device/dtype using scan `backend` (the caller's model is left untouched)."""
    return set_scan_backend(copy.deepcopy(model), backend).to(device, dtype).eval()


@torch.no_grad()
def eager_stream(model, backend: str, frames_seen: Iterable[int], device, dtype, window: int = 16) -> list:
    """EndoMamba's own `init_stream` / `step`, eager, in `dtype` (SSM state in the same dtype)."""
    model = _as(model, device, dtype, backend)
    st = {}
    pool = frame_pool(4, model.img_size, device, dtype)

    def reset():
        st["s"] = model.init_stream(1, device=device, dtype=dtype)

    def step(x):
        out, st["s"] = model.step(x, st["s"])
        return out
    return harness.measure_stream("endomamba", reset, step, pool, frames_seen, device, window=window,
                                  mode="stream_eager", backend=backend)


@torch.no_grad()
def fast_stream(model, backend: str, frames_seen: Iterable[int], device, dtype, compile: bool = False,
                check_frames: int = 8, window: int = 32) -> list:
    """FastStream (bf16 + CUDA graph on GPU; static buffers only on CPU), checked against the fp32 eager step."""
    fs = FastStream(model, dtype=dtype, device=device, backend=backend, compile=compile)
    diff = check_fast_stream(model, fs, backend, check_frames)
    pool = frame_pool(4, model.img_size, device, dtype)
    mode = "stream_fast_compiled" if compile else ("stream_fast_graph" if fs.graph is not None else "stream_fast")
    return harness.measure_stream("endomamba", fs.reset, fs.step, pool, frames_seen, device, window=window,
                                  mode=mode, backend=backend, **diff)


@torch.no_grad()
def check_fast_stream(model, fs: FastStream, backend: str, frames: int) -> dict:
    """FastStream's per-frame outputs vs the float32 eager `model.step`: worst max-abs and relative difference.

    Also `history_rel`: how much the last output changes when the earlier frames are dropped (the size of
    what the carried state contributes, so a stale state would show as a check_rel of that size), and, for
    a graph, `graph_vs_nograph_max_abs`: the replayed graph against the same step run without capture."""
    ref_model = _as(model, fs.device, torch.float32, backend)
    xs = frame_pool(frames, model.img_size, fs.device, torch.float32, seed=123)
    st = ref_model.init_stream(1, device=fs.device, dtype=torch.float32)
    plain = FastStream(model, dtype=fs.dtype, device=fs.device, backend=backend, use_graph=False) \
        if fs.graph is not None else None
    fs.reset()
    worst_abs, worst_rel, graph_abs = 0.0, 0.0, 0.0
    for x in xs:
        ref, st = ref_model.step(x, st)
        out = fs.step(x.to(fs.dtype)).float()
        worst_abs = max(worst_abs, (out - ref).abs().max().item())
        worst_rel = max(worst_rel, ((out - ref).norm() / ref.norm().clamp_min(1e-12)).item())
        if plain is not None:
            graph_abs = max(graph_abs, (out - plain.step(x.to(fs.dtype)).float()).abs().max().item())
    fresh, _ = ref_model.step(xs[-1], ref_model.init_stream(1, device=fs.device, dtype=torch.float32))
    fs.reset()
    return dict(check_max_abs=worst_abs, check_rel=worst_rel, check_frames=frames,
                history_rel=((fresh - ref).norm() / ref.norm().clamp_min(1e-12)).item(),
                graph_vs_nograph_max_abs=graph_abs if plain is not None else float("nan"))


@torch.no_grad()
def endomamba_recompute(model, backend: str, frames_seen, device, dtype, max_ms: float = 2000.0) -> list:
    """Recompute the whole clip of F frames for each new frame (what a clip model must do)."""
    model = _as(model, device, dtype, backend)
    return harness.measure_recompute("endomamba", model, lambda f: _clip(f, model.img_size, device, dtype),
                                     frames_seen, device, max_ms=max_ms, iters=3, backend=backend)


@torch.no_grad()
def baseline_rows(names, size: str, img_size: int, frames_seen, device, dtype, backend: Optional[str],
                  max_ms: float = 2000.0, graph_framewise: bool = False) -> list:
    """Frame-wise ViT streamed one frame per call; clip models recomputing the whole clip per new frame."""
    rows = []
    for name in names:
        try:
            net = build_baseline(name, size, img_size, scan_backend=backend).to(device, dtype).eval()
        except ImportError as e:
            log.info("baseline %s not measured: %s", name, e)
            rows.append(dict(model=name, mode="recompute", status=f"absent ({type(e).__name__})"))
            continue
        if name == "vit_framewise":
            pool = frame_pool(4, img_size, device, dtype)
            step = _graphed(net, pool[0]) if graph_framewise else net
            rows += harness.measure_stream(name, lambda: None, step, pool, frames_seen, device, window=16,
                                           mode="framewise_graph" if graph_framewise else "framewise", backend="n/a")
        else:
            fs = [f for f in frames_seen if name != "videomae" or (f % 2 == 0 and f <= VIDEOMAE_MAX_FRAMES)]
            rows += harness.measure_recompute(name, net, lambda f: _clip(f, img_size, device, dtype), fs,
                                              device, max_ms=max_ms, iters=3,
                                              backend=backend if name == "videomamba" else "n/a")
        del net
    return rows


def _graphed(net, example):
    """fn(x) replaying a CUDA graph of net(static_x) (static input copied in)."""
    static_x = example.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            net(static_x)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        static_out = net(static_x)

    def run(x):
        static_x.copy_(x)
        g.replay()
        return static_out
    return run


@torch.no_grad()
def clip_rows(model_name: str, size: str, img_size: int, batches, num_frames: int, device, dtype,
              backend: Optional[str], names=("vit_framewise", "divided_st", "videomamba")) -> list:
    """Whole-clip throughput (frames/s) of EndoMamba and the baselines at each batch size."""
    nets = {"endomamba": set_scan_backend(create_model(model_name, img_size=img_size), backend)}
    for n in names:
        nets[n] = build_baseline(n, size, img_size, scan_backend=backend)
    rows = []
    for name, net in nets.items():
        net = net.to(device, dtype).eval()
        for b in batches:
            try:
                rows.append(harness.measure_clip(name, net, _clip(num_frames, img_size, device, dtype, b), device,
                                                 iters=3, backend=backend if "mamba" in name else "n/a"))
            except torch.OutOfMemoryError:
                rows.append(dict(model=name, mode="clip", batch=b, frames_seen=num_frames, status="oom"))
                torch.cuda.empty_cache()
        nets[name] = None
    return rows


@torch.no_grad()
def breakdown_rows(model, backend: str, device, dtype, iters: int = 5) -> list:
    """Per-layer-type milliseconds of one eager streamed frame (spatial / temporal / embed+norm+head)."""
    model = _as(model, device, dtype, backend)
    st = {"s": model.init_stream(1, device=device, dtype=dtype)}
    x = frame_pool(1, model.img_size, device, dtype)[0]

    def step():
        _, st["s"] = model.step(x, st["s"])
    parts = harness.layer_breakdown(model, step, device, iters=iters)
    return [dict(model="endomamba", mode="breakdown", layer_type=k, latency_ms_median=v, backend=backend, status="ok")
            for k, v in parts.items()]


def speed_table(rows: list, device, dtype, img_size: int, model_name: str) -> pd.DataFrame:
    """Rows -> DataFrame with the environment and the size columns on every row."""
    env = harness.environment(device, None, dtype)
    env.pop("backend")
    df = pd.DataFrame(rows)
    for k, v in env.items():
        df[k] = v
    df["img_size"] = img_size
    df["size_of"] = model_name
    if "backend" not in df:
        df["backend"] = "n/a"
    df["backend"] = df["backend"].fillna("n/a")
    return df


def frames_seen_grid(max_frames: int, start: int = 8) -> list:
    """8, 16, 32, ... up to max_frames (powers of two)."""
    return [2 ** i for i in range(int(math.log2(start)), int(math.log2(max_frames)) + 1)]


def speedups(df: pd.DataFrame, at_frames: int) -> pd.DataFrame:
    """Streaming FPS of each model/mode/backend at the checkpoint nearest `at_frames`, and ratios to the best."""
    ok = df[(df.get("status", "ok") == "ok") & df["mode"].ne("breakdown") & df["mode"].ne("clip")].copy()
    ok["backend"] = ok["backend"].fillna("n/a") if "backend" in ok else "n/a"
    ok["dist"] = (np.log2(ok["frames_seen"].astype(float)) - math.log2(at_frames)).abs()
    best = ok.sort_values("dist").groupby(["model", "mode", "backend"], as_index=False).first()
    top = best["fps"].max()
    best["slower_than_best_x"] = top / best["fps"]
    return best[["model", "mode", "backend", "frames_seen", "fps", "latency_ms_median", "peak_mem_mb",
                 "slower_than_best_x"]].sort_values("fps", ascending=False)


def run_cpu(model_name: str, img_size: int, frames_seen, baselines=("vit_framewise", "divided_st", "videomamba"),
            device="cpu", dtype=torch.float32, seed: int = 0) -> pd.DataFrame:
    """The whole comparison at a small size on one device, eager (what the notebook runs on a CPU)."""
    torch.manual_seed(seed)
    model = create_model(model_name, img_size=img_size).eval()
    be = "torch" if torch.device(device).type == "cpu" else None
    rows = eager_stream(model, be, frames_seen, device, dtype, window=4)
    rows += fast_stream(model, be, frames_seen, device, dtype, check_frames=4, window=4)
    rows += endomamba_recompute(model, be, frames_seen, device, dtype)
    rows += baseline_rows(baselines, SIZE_OF.get(model_name, "small"), img_size, frames_seen, device, dtype, be)
    rows += breakdown_rows(model, be, device, dtype, iters=3)
    return speed_table(rows, device, dtype, img_size, model_name)
