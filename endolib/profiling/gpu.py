"""GPU entry point: every speed measurement of issue 6 in one run, written as tidy CSVs.

    python -m endolib.profiling.gpu --out DIR            # ~3-5 min on one H100
writes DIR/scan_check_gpu.csv (every scan backend vs the float64 loop, fp32 / bf16, gradients, timing),
DIR/speed_gpu.csv (streaming eager and fast per backend, recompute baselines, clip throughput, memory vs
frames seen, per-layer-type breakdown), DIR/floor_gpu.csv (the floor model and measured / floor) and
DIR/kernels_gpu.csv (GPU time per kernel family of each fast variant), each CSV rewritten after every
section so a run cut short still leaves what it measured; a summary table last.
`--only fast` measures just the fast streaming variants (gpu.FAST_VARIANTS; `--tiles-bench` first times
GEMM operand layouts -> DIR/gemm_layout_gpu.csv and the Triton scan tiles -> DIR/scan_tiles_gpu.csv, inside
CUDA graphs, and runs the variants with the fastest tiles); kernels by name -> DIR/kernel_names_gpu.csv.
Imports only torch, numpy, pandas (and triton / mamba-ssm / transformers when present, lazily).
`--device cpu --quick` runs the same code on a CPU at toy sizes (used by the tests).
"""
import argparse
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from endolib.models import create_model
from endolib.ops import available_backends, backend_name
from endolib.profiling import floor, harness, scan_check, suite
from endolib.profiling.fast_stream import FastStream
from endolib.utils import atomic_write_text

log = logging.getLogger("endolib.profiling.gpu")
PAPER_FPS = 47.0  # EndoMamba paper's reported real-time inference speed


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="folder for the CSVs")
    p.add_argument("--model", default="endomamba_small")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="toy sizes (CPU smoke test)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile fast variant")
    p.add_argument("--max-ms", type=float, default=1500.0, help="stop a recompute curve past this latency")
    p.add_argument("--budget-s", type=float, default=200.0, help="skip the compiled variant past this time")
    p.add_argument("--only", choices=["all", "fast", "baselines"], default="all",
                   help="'fast': only the fast streaming variants (triton scan) + their floor rows, < 2 min; "
                        "'baselines': only EndoMamba recomputing the clip and the baseline models")
    p.add_argument("--variants", default="", help="with --only fast: comma list of FAST_VARIANTS indices")
    p.add_argument("--tiles-bench", action="store_true", help="with --only fast: time the scan tile choices first")
    return p.parse_args(argv)


def _grids(quick: bool) -> dict:
    if quick:
        return dict(eager=[4, 8], fast=[4, 8], recompute=[4, 8], window=4, batches=[2], clip_frames=4,
                    scan_cases=[(1, 16, 40, 16, {}), (2, 8, 33, 8, dict(with_h0=False))], scan_timing=dict(d=16, l=40, iters=3))
    return dict(eager=[8, 32, 128], fast=[8, 64, 256, 1024, 2048], recompute=suite.frames_seen_grid(1024),
                window=32, batches=[1, 8, 32], clip_frames=16, scan_cases=scan_check.CASES,
                scan_timing=dict(iters=50))


class Writer:
    """Keeps the rows of each CSV and rewrites the file atomically after each section."""

    def __init__(self, out: Path, env: dict):
        self.out, self.env, self.tables = out, env, {}

    def add(self, name: str, rows: list):
        self.tables.setdefault(name, []).extend(rows)
        df = pd.DataFrame(self.tables[name])
        for k, v in self.env.items():
            if k not in df:
                df[k] = v
        atomic_write_text(df.to_csv(index=False), self.out / name)
        return df


def _section(name: str, fn, *a, **kw) -> list:
    t = time.time()
    try:
        rows = fn(*a, **kw)
    except Exception as e:  # one failing section must not lose the others
        log.exception("section %s failed", name)
        rows = [dict(section=name, status=f"error: {type(e).__name__}: {e}"[:300])]
    log.info("section %-22s %6.1f s, %d rows", name, time.time() - t, len(rows))
    return rows


def _scan_tiles(model, backend, device) -> str:
    """The Triton tiles of the model's two streaming scan shapes (temporal batch 1 / fused spatial batch 2)."""
    if backend != "triton" or torch.device(device).type != "cuda":
        return "n/a"
    from endolib.ops import scan_triton
    mixer = model.layers[0].mixer
    tiles = [scan_triton._tiles(b, mixer.d_inner, mixer.d_state, torch.device(device)) for b in (1, 2)]
    return " / ".join(t.spec() for t in tiles)


def _fast_rows(model, backend, frames, device, dtype, compile: bool, window: int, keep: dict,
               fuse_mixers: bool = False, compile_mode=None, writer=None, fold_dt: bool = False) -> list:
    """Streaming rows of one FastStream variant; on CUDA its GPU time per kernel family goes to the log and,
    with a `writer`, to kernels_gpu.csv."""
    fs = FastStream(model, dtype=dtype, device=device, backend=backend, compile=compile, fuse_mixers=fuse_mixers,
                    compile_mode=compile_mode, fold_dt=fold_dt)
    diff = suite.check_fast_stream(model, fs, backend, frames=8)
    pool = suite.frame_pool(4, model.img_size, device, dtype)
    mode = "stream_fast_compiled" if compile else ("stream_fast_graph" if fs.graph is not None else "stream_fast")
    mode += ("_fused_tm" if fuse_mixers else "") + ("_fold" if fold_dt else "") + (f"_{compile_mode}" if compile_mode else "")
    tiles = os.environ.get("ENDOLIB_TRITON_TILES")
    mode += f"_tiles{tiles.replace(',', 'x')}" if tiles else ""
    diff["scan_tiles"] = _scan_tiles(model, backend, device)
    for walk in ("seq", "walk"):  # scans walking time step by step: Triton ('seq') or the NVRTC kernel ('walk')
        mode += f"_{walk}" if backend == "triton" and walk in diff["scan_tiles"] and not tiles else ""
    if torch.device(device).type == "cuda":
        table = floor.kernel_table(fs._body)
        kernels = [dict(mode=mode, backend=backend, **r) for r in floor.kernel_breakdown(table)]
        for r in kernels:
            log.info("%s kernels %-13s %4d  %8.1f us", mode, r["family"], r["count"], r["us"])
        if writer is not None:
            writer.add("kernels_gpu.csv", kernels)
            writer.add("kernel_names_gpu.csv", [dict(mode=mode, backend=backend, **{**r, "name": r["name"][:120]})
                                                for r in table[:40]])
    rows = harness.measure_stream("endomamba", fs.reset, fs.step, pool, frames, device, window=window,
                                  mode=mode, backend=backend, **diff)
    keep[(mode, backend)] = (fs, rows[-1]["latency_ms_median"])
    return rows


def _launches(fs: FastStream, device) -> tuple:
    """(launches per step, how counted): profiler kernel count on CUDA, else dispatched ATen ops."""
    if torch.device(device).type == "cuda":
        n = floor.count_cuda_kernels(fs._body)
        if n > 0:
            return n, "cuda kernels (profiler)"
        log.warning("the profiler saw no CUDA kernels; counting dispatched ops instead")
    with floor.OpCounter() as oc:
        fs._body()
    return oc.ops, "dispatched aten ops"


def _floor_rows(device, fast: dict, cache: dict) -> list:
    """Floor terms for each fast variant in `fast` (one frame, batch 1, costed on the variant's own bf16 model:
    fused / folded mixers read other constants and do other FLOPs); pops what it used."""
    if "ceil" not in cache:
        if torch.device(device).type == "cuda":
            cache["ceil"] = floor.measure_ceilings(device)
        else:  # no ceilings on a CPU: NaN keeps the table shape (smoke test only)
            cache["ceil"] = floor.Ceilings(float("nan"), float("nan"), float("nan"), float("nan"))
    ceil, rows = cache["ceil"], []
    while fast:
        (mode, backend), (fs, ms) = fast.popitem()
        cost = floor.step_cost(fs.model, dtype=torch.bfloat16)
        n, how = _launches(fs, device)
        for r in floor.floor_rows(cost, ceil, n, ms, graph=fs.graph is not None):
            rows.append(dict(mode=mode, backend=backend, launches_counted_as=how, **r))
        del fs
    return rows


def _summary(speed: pd.DataFrame, floor_df: pd.DataFrame, scan: pd.DataFrame) -> str:
    top = suite.speedups(speed, at_frames=1024)
    lines = [""]
    if "y_rel_err" in scan:
        agg = {c: "max" for c in ("y_rel_err", "last_state_rel_err", "grad_rel_err_max", "ms_median") if c in scan}
        lines += ["== scan backends vs float64 loop (worst case) ==",
                  scan.groupby(["backend", "dtype"]).agg(agg).to_string()]
    if "check_rel" in speed:
        chk = speed[speed["mode"].astype(str).str.startswith("stream_fast")]
        cols = [c for c in ("mode", "backend", "check_max_abs", "check_rel", "history_rel", "graph_vs_nograph_max_abs")
                if c in chk]
        lines += ["== fast path vs fp32 eager step ==", chk[cols].drop_duplicates(["mode", "backend"]).to_string(index=False)]
    lines += ["== streaming FPS at batch 1 (frames seen nearest 1024) ==", top.to_string(index=False)]
    fast = top[top["mode"].str.startswith("stream_fast")]
    if len(fast):
        best = fast.iloc[0]
        lines.append(f"best fast path: {best['mode']} / {best['backend']}: {best['fps']:.0f} FPS = "
                     f"{best['fps'] / PAPER_FPS:.1f}x the paper's {PAPER_FPS:.0f} FPS")
    if len(floor_df) and "floor_ms" in floor_df:
        f = floor_df.drop_duplicates(["mode", "backend"])[["mode", "backend", "launches", "measured_ms", "floor_ms",
                                                           "measured_over_floor", "dominant"]]
        lines += ["== floor (one frame, batch 1) ==", f.to_string(index=False)]
    return "\n".join(lines)


# FastStream options of the fast-only run, cheapest first; the last ones only within --budget-s
AUTOTUNE = "max-autotune-no-cudagraphs"  # inductor's GEMM autotuning; the CUDA graph is FastStream's own
FAST_VARIANTS = [dict(fuse_mixers=True), dict(compile=True), dict(fuse_mixers=True, compile=True),
                 dict(fuse_mixers=True, compile=True, compile_mode=AUTOTUNE),
                 dict(fuse_mixers=True, compile=True, fold_dt=True),
                 dict(fuse_mixers=True, compile=True, fold_dt=True, compile_mode=AUTOTUNE)]


def _model(args, device):
    """The measured backbone, random init from seed 0 (speed does not depend on the weights)."""
    torch.manual_seed(0)
    return create_model(args.model, img_size=args.img_size).to(device).eval()


def _speed_writer(args, w: Writer):
    """rows -> speed_gpu.csv, with the run's model, image size and dtype in every row."""
    extra = dict(img_size=args.img_size, size_of=args.model, dtype="bfloat16")
    return lambda rows: w.add("speed_gpu.csv", [{**extra, **r} for r in rows])


def fast_only(args, model, device, dtype, w: Writer, t0: float) -> tuple:
    """Only the fast streaming variants (FAST_VARIANTS, triton scan when present) and their floor rows."""
    g = _grids(args.quick)
    be = "triton" if "triton" in available_backends(device) else backend_name(device)
    speed = _speed_writer(args, w)
    cache, df, floor_df = {}, pd.DataFrame(), pd.DataFrame()
    if args.tiles_bench and device.type == "cuda":
        gl = w.add("gemm_layout_gpu.csv", _section("gemm_layout", floor.time_gemm_layouts, device))
        log.info("GEMM activation layouts:\n%s", gl.to_string(index=False))
    if args.tiles_bench and device.type == "cuda" and be == "triton":
        from endolib.ops import scan_triton
        rows = _section("scan_tiles", scan_check.time_tiles, device)
        tb = w.add("scan_tiles_gpu.csv", rows)
        log.info("scan tiles:\n%s", tb.to_string(index=False))
        scan_triton.TUNED.update(scan_check.best_tiles(rows))  # the variants below run the measured best
        log.info("scan tiles used from here on: %s", scan_triton.TUNED)
    pick = [int(i) for i in args.variants.split(",") if i] or range(len(FAST_VARIANTS))
    for opts in (FAST_VARIANTS[i] for i in pick):
        comp = opts.get("compile", False)
        if (comp and (args.no_compile or device.type != "cuda")) or time.time() - t0 > args.budget_s:
            log.info("variant %s skipped", opts)
            continue
        fast, kw = {}, {k: v for k, v in opts.items() if k != "compile"}
        rows = _section(f"fast_{opts}", _fast_rows, model, be, g["fast"], device, dtype, comp,
                        g["window"], fast, writer=w, **kw)
        df = speed(rows)
        floor_df = w.add("floor_gpu.csv", _section("floor", _floor_rows, device, fast, cache))
    return df, floor_df


BASELINES = ["vit_framewise", "divided_st", "videomamba", "videomae"]


def _baseline_sections(args, model, device, dtype, best: str, speed) -> pd.DataFrame:
    """EndoMamba recomputing the clip per frame and the BASELINES models, rows handed to `speed`."""
    g, size = _grids(args.quick), suite.SIZE_OF.get(args.model, "small")
    speed(_section("recompute", suite.endomamba_recompute, model, best, g["recompute"], device, dtype, args.max_ms))
    df = speed(_section("baselines", suite.baseline_rows, BASELINES, size, args.img_size, g["recompute"], device,
                        dtype, best, args.max_ms))
    if device.type == "cuda":
        df = speed(_section("vit_graph", suite.baseline_rows, ["vit_framewise"], size, args.img_size, g["fast"],
                            device, dtype, best, graph_framewise=True))
    return df


def baselines_only(args, model, device, dtype, w: Writer) -> pd.DataFrame:
    """Only the clip-recomputing and baseline rows (e.g. to add a device's baselines to committed fast rows)."""
    df = _baseline_sections(args, model, device, dtype, backend_name(device), _speed_writer(args, w))
    return df[["model", "mode", "backend", "frames_seen", "fps", "latency_ms_median", "status"]]


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device; run on the GPU machine or pass --device cpu --quick")
    dtype = torch.bfloat16
    g = _grids(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    backends, best = available_backends(device), backend_name(device)
    env = harness.environment(device, None, dtype)
    env.pop("backend"), env.pop("dtype")
    log.info("device %s; scan backends %s (auto: %s)", env["device_name"], backends, best)
    t0 = time.time()
    w = Writer(args.out, env)
    if args.only == "fast":
        df, floor_df = fast_only(args, _model(args, device), device, dtype, w, t0)
        print(_summary(df, floor_df, pd.DataFrame()))
        return 0
    if args.only == "baselines":
        print(baselines_only(args, _model(args, device), device, dtype, w).to_string(index=False))
        return 0
    checked = backends + (["triton:flip"] if "triton" in backends and device.type == "cuda" else [])
    w.add("scan_check_gpu.csv", _section("scan_check", scan_check.check_backends, checked, device, g["scan_cases"]))
    w.add("scan_check_gpu.csv", _section("scan_timing", scan_check.time_backends, backends, device, **g["scan_timing"]))

    model = _model(args, device)
    size = suite.SIZE_OF.get(args.model, "small")
    speed = _speed_writer(args, w)
    fast = {}
    for be in backends:
        speed(_section(f"eager_{be}", suite.eager_stream, model, be, g["eager"], device, dtype, window=16))
        speed(_section(f"fast_{be}", _fast_rows, model, be, g["fast"], device, dtype, False, g["window"], fast,
                       writer=w))
    _baseline_sections(args, model, device, dtype, best, speed)
    speed(_section("clip", suite.clip_rows, args.model, size, args.img_size, g["batches"], g["clip_frames"], device,
                   dtype, best))
    df = speed(_section("breakdown", suite.breakdown_rows, model, best, device, dtype))
    cache = {}
    floor_df = w.add("floor_gpu.csv", _section("floor", _floor_rows, device, fast, cache))
    if device.type == "cuda" and not args.no_compile and time.time() - t0 < args.budget_s:
        cbe = "triton" if "triton" in backends else best  # the triton scan is one custom op: no graph breaks
        df = speed(_section("fast_compiled", _fast_rows, model, cbe, g["fast"], device, dtype, True, g["window"],
                            fast, writer=w))
        floor_df = w.add("floor_gpu.csv", _section("floor_compiled", _floor_rows, device, fast, cache))
    else:
        log.info("compiled variant skipped (--no-compile, no CUDA, or past --budget-s)")
    log.info("total %.1f s", time.time() - t0)
    print(_summary(df, floor_df, pd.DataFrame(w.tables.get("scan_check_gpu.csv", []))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
