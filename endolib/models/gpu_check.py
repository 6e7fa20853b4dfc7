"""GPU acceptance for the backbone: every scan backend vs the float64 oracle, model-level backend agreement,
bf16 autocast, streaming == whole clip on the GPU, and per-frame streaming latency at batch 1.

    python -m endolib.models.gpu_check --out DIR     # writes DIR/backbone_gpu.csv, DIR/backbone_gpu_checks.csv
"""
import argparse
import csv
import logging
import platform
from pathlib import Path

import torch

from endolib import ops
from endolib.models import create_model

log = logging.getLogger("endolib.gpu_check")


def environment() -> dict:
    def version(mod):
        try:
            return __import__(mod).__version__
        except Exception:
            return "absent"
    return {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "mamba_ssm": version("mamba_ssm"),
            "causal_conv1d": version("causal_conv1d"), "triton": version("triton"), "python": platform.python_version()}


def _rel(a, b) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def scan_checks(device="cuda") -> list:
    """Each backend against the float64 loop, fp32, with and without an initial state."""
    rows, g = [], torch.Generator(device="cpu").manual_seed(0)
    b, d, l, n = 2, 128, 400, 16
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64).to(device)  # noqa: E731
    kw = dict(u=r(b, d, l), delta=r(b, d, l) * 0.5, A=-torch.exp(r(d, n) * 0.5), B=r(b, n, l), C=r(b, n, l),
              D=r(d), z=r(b, d, l), delta_bias=r(d) * 0.3)
    for with_state in (False, True):
        h0 = r(b, d, n) if with_state else None
        y_ref, h_ref = ops.selective_scan_ref(**kw, initial_state=h0, delta_softplus=True, return_last_state=True)
        for name in ops.available_backends(device):
            f32 = {k: v.float() for k, v in kw.items()}
            y, h = ops.selective_scan(**f32, initial_state=None if h0 is None else h0.float(), delta_softplus=True,
                                      return_last_state=True, backend=name)
            rows.append({"check": f"scan_fp32{'_h0' if with_state else ''}", "backend": name,
                         "rel_err_y": _rel(y, y_ref), "rel_err_state": _rel(h, h_ref)})
    return rows


def model_checks(device="cuda") -> list:
    """endomamba_small at 224²: backends agree, bf16 autocast works, streaming == whole clip."""
    rows = []
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 224, 224, device=device)
    model = create_model("endomamba_small", num_classes=7).to(device).eval()
    outs = {}
    with torch.no_grad():
        for name in ops.available_backends(device):
            for layer in model.layers:
                layer.mixer.scan_backend = name
            outs[name] = model(x)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                bf = model(x)
            state, parts = model.init_stream(1), []
            for a, b in [(0, 1), (1, 5), (5, 6), (6, 8)]:
                o, state = model.step(x[:, :, a:b], state)
                parts.append(o)
            stream = torch.cat(parts, 1)
            rows.append({"check": "model_small_224", "backend": name,
                         "rel_err_vs_torch_fp32": _rel(outs[name], outs["torch"]) if "torch" in outs else float("nan"),
                         "bf16_rel_err": _rel(bf.float(), outs[name]), "bf16_finite": bool(torch.isfinite(bf).all()),
                         "stream_max_abs_diff": (stream - outs[name]).abs().max().item()})
    return rows


def _time_steps(model, dtype, frames: int, warmup: int = 10) -> list:
    """Per-frame streaming latency (ms) with CUDA events, batch 1, 224²."""
    x = torch.randn(1, 3, frames + warmup, 224, 224, device="cuda")
    state = model.init_stream(1)
    times = []
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        for t in range(frames + warmup):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            _, state = model.step(x[:, :, t:t + 1], state)
            end.record()
            end.synchronize()
            if t >= warmup:
                times.append(start.elapsed_time(end))
    return times


def _time_recompute(model, dtype, window: int = 16, reps: int = 20) -> list:
    """Latency of recomputing the last `window` frames to get the newest frame's output (no state)."""
    x = torch.randn(1, 3, window, 224, 224, device="cuda")
    times = []
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        for i in range(reps + 5):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(x)
            end.record()
            end.synchronize()
            if i >= 5:
                times.append(start.elapsed_time(end))
    return times


def latency_rows(frames: int = 100) -> list:
    rows = []
    model = create_model("endomamba_small", num_classes=7).cuda().eval()
    for name in ops.available_backends("cuda"):
        for layer in model.layers:
            layer.mixer.scan_backend = name
        for dtype in ("fp32", "bf16"):
            for mode, times in (("stream_1frame", _time_steps(model, dtype, frames)),
                                ("recompute_16", _time_recompute(model, dtype))):
                t = torch.tensor(times)
                torch.cuda.reset_peak_memory_stats()
                rows.append({"model": "endomamba_small", "img": 224, "batch": 1, "backend": name, "dtype": dtype,
                             "mode": mode, "n": len(times), "median_ms": t.median().item(),
                             "p90_ms": t.quantile(0.9).item(), "fps": 1000.0 / t.median().item()})
                log.info("%s", rows[-1])
    return rows


def _write(rows, path, env):
    rows = [{**env, **r} for r in rows]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print({k: (float(f'{v:.4g}') if isinstance(v, float) else v) for k, v in r.items() if k not in env})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check runs on the GPU machine")
    args.out.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(env)
    _write(scan_checks() + model_checks(), args.out / "backbone_gpu_checks.csv", env)
    _write(latency_rows(args.frames), args.out / "backbone_gpu.csv", env)


if __name__ == "__main__":
    main()
