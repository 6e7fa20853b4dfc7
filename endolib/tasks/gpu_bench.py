"""GPU downstream fine-tuning: one full-size training run per task family -> throughput and peak memory CSV.

    python -m endolib.tasks.gpu_bench --out DIR [--model endomamba_small] [--img 224] [--frames 16]
                                      [--batch 2] [--steps 6] [--warmup 2] [--budget 25]

For every task family that has a `benchmark_step` (classification, segmentation, detection here; phase,
triplet, action, localization from the video-task modules when present) it builds the backbone with its
head at the reference input size (224², 16 frames), runs `warmup` + `steps` fine-tuning steps (AdamW,
bf16 autocast on CUDA, backward through the whole backbone) on random data, and writes
DIR/downstream_gpu.csv: device, torch version, scan backend, dtype, task, model, batch, frames, image
size, ms/step, clips/s, frames/s, peak memory, first/last loss, error. The scan backend is whatever
`endolib.ops` picks for the device (the CUDA kernels when they import, else pure PyTorch). Needs only
torch, numpy, pandas, einops, yaml (no video I/O). Budget: about 3 minutes on one H100.
"""
import argparse
import importlib
import importlib.machinery
import logging
import sys
import time
from pathlib import Path

import torch

log = logging.getLogger("endolib.tasks.gpu_bench")

FAMILIES = ("classification", "segmentation", "detection", "phase", "triplet", "action", "localization")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ensure_tqdm() -> None:
    """The GPU machine has no tqdm; task modules that import it at the top get a silent stand-in."""
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:
        import types

        def tqdm(iterable=None, *args, **kwargs):  # progress bars are off in benchmarks anyway
            return iterable if iterable is not None else types.SimpleNamespace(
                update=lambda *a, **k: None, close=lambda: None, set_postfix=lambda *a, **k: None)

        pkg, auto = types.ModuleType("tqdm"), types.ModuleType("tqdm.auto")
        pkg.__spec__ = importlib.machinery.ModuleSpec("tqdm", None, is_package=True)
        auto.__spec__ = importlib.machinery.ModuleSpec("tqdm.auto", None)
        pkg.tqdm = auto.tqdm = tqdm
        pkg.auto = auto
        for name, module in (("tqdm", pkg), ("tqdm.auto", auto)):
            if sys.modules.get(name) is None:
                sys.modules[name] = module
        log.info("tqdm is not installed: using a silent stand-in")


def bench_family(family: str, args, device, dtype) -> dict:
    """Time one family's fine-tuning step; returns the measured columns (or raises)."""
    mod = importlib.import_module(f"endolib.tasks.{family}")
    if not hasattr(mod, "benchmark_step"):
        raise ValueError(f"endolib.tasks.{family} has no benchmark_step(); nothing to time.")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    step, info = mod.benchmark_step(model_name=args.model, img_size=args.img, num_frames=args.frames,
                                    device=device, dtype=dtype, batch_size=args.batch)
    t0 = time.time()
    first = step()
    for _ in range(max(0, args.warmup - 1)):
        step()
    _sync(device)
    times, last = [], first
    for _ in range(args.steps):
        s = time.perf_counter()
        last = step()
        _sync(device)
        times.append(time.perf_counter() - s)
        if time.time() - t0 > args.budget:
            break
    ms = 1000 * sum(times) / max(1, len(times))
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {**info, "ms_per_step": ms, "clips_per_s": info["batch_size"] / (ms / 1000),
            "frames_per_s": info["frames_per_step"] / (ms / 1000), "peak_mem_mb": peak,
            "timed_steps": len(times), "loss_first": float(first), "loss_last": float(last)}


def run(args) -> list:
    from endolib.ops import backend_name

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if device.type == "cuda" and args.dtype == "bfloat16" else torch.float32
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    base = {"device": name, "torch": torch.__version__, "backend": backend_name(device),
            "dtype": str(dtype).replace("torch.", "")}
    _ensure_tqdm()
    rows = []
    for family in args.families:
        row = {**base, "task": family}
        try:
            row.update(bench_family(family, args, device, dtype))
        except ModuleNotFoundError as e:
            row["error"] = f"module not available: {e}"
        except torch.cuda.OutOfMemoryError as e:
            row["error"] = f"out of memory: {str(e).splitlines()[0]}"
        except Exception as e:  # one family's failure must not lose the others' measurements
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        log.info("%s", row)
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for downstream_gpu.csv")
    ap.add_argument("--model", default="endomamba_small")
    ap.add_argument("--img", type=int, default=224)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--budget", type=float, default=25.0, help="seconds per family (timing stops early)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    ap.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import pandas as pd

    rows = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "downstream_gpu.csv", index=False)
    log.info("wrote %s", out / "downstream_gpu.csv")
    return 0 if any("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
