"""Check every selective-scan backend against the float64 loop (`selective_scan_ref`), forward and gradients.

Fresh random inputs for each case (never zeros); the reference runs on the CPU in float64 on the very inputs
the backend saw (bf16 inputs are rounded first, then upcast), so the error is the backend's arithmetic.
Error = ||out - ref|| / ||ref|| per output; gradients: the worst over all differentiable inputs.
"""
import logging
import os
from contextlib import contextmanager

import numpy as np
import torch

from endolib.ops import selective_scan, selective_scan_ref
from endolib.profiling.harness import time_calls, time_in_graph

log = logging.getLogger(__name__)
_REF_CACHE: dict = {}
GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state")


def random_inputs(b, d, l, n, seed, with_h0=True, with_z=True, with_d=True, with_bias=True) -> dict:
    """float64 CPU inputs in the ranges the mixer produces (delta pre-softplus around 0, A negative)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return dict(u=r(b, d, l), delta=r(b, d, l) * 0.5 - 1.0, A=-torch.exp(r(d, n) * 0.5), B=r(b, n, l), C=r(b, n, l),
                D=r(d) if with_d else None, z=r(b, d, l) if with_z else None,
                delta_bias=r(d) * 0.3 if with_bias else None, initial_state=r(b, d, n) if with_h0 else None)


def _rel(a, b) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _run(fn, inp: dict, device, dtype, grad: bool, seed: int, use_last: bool):
    """Run fn on copies of inp (cast), return (y, last, grads dict)."""
    dev_inp = {}
    for k, v in inp.items():
        if v is None:
            dev_inp[k] = None
            continue
        low = k in ("u", "delta", "B", "C", "z")  # activations in the run dtype; parameters in fp32
        t = v.to(dtype if low else torch.float32).to(device) if fn is not selective_scan_ref else v.clone()
        dev_inp[k] = t.requires_grad_(grad)
    y, last = fn(**dev_inp, delta_softplus=True, return_last_state=True)
    grads = {}
    if grad:
        g = torch.Generator().manual_seed(seed + 1)
        gy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.device, y.dtype)
        gl = torch.randn(last.shape, generator=g, dtype=torch.float64).to(last.device, last.dtype)
        loss = (y * gy).sum() + ((last * gl).sum() if use_last else 0)
        names = [k for k in GRAD_NAMES if dev_inp.get(k) is not None]
        out = torch.autograd.grad(loss, [dev_inp[k] for k in names])
        grads = dict(zip(names, out))
    return y, last, grads


def check_case(backend: str, device, dtype, b, d, l, n, seed: int, grad: bool, **flags) -> dict:
    """One comparison of `backend` with the float64 oracle; returns a tidy row."""
    inp = random_inputs(b, d, l, n, seed, **flags)
    if dtype != torch.float32:  # the oracle sees the rounded activations the backend sees
        inp = {k: (v.to(dtype).double() if v is not None and k in ("u", "delta", "B", "C", "z") else v)
               for k, v in inp.items()}
    use_last = backend != "cuda"  # mamba-ssm's kernel does not backpropagate through the last state
    fn = lambda **kw: selective_scan(**kw, backend=backend)  # noqa: E731
    y, last, gr = _run(fn, inp, device, dtype, grad, seed, use_last)
    key = (b, d, l, n, seed, tuple(sorted(flags.items())), str(dtype), grad, use_last)
    if key not in _REF_CACHE:  # the oracle is the slow part: compute it once for all backends
        _REF_CACHE.clear()
        _REF_CACHE[key] = _run(selective_scan_ref, inp, "cpu", torch.float64, grad, seed, use_last)
    yr, lr, grr = _REF_CACHE[key]
    row = dict(backend=backend, dtype=str(dtype).replace("torch.", ""), b=b, d=d, l=l, n=n, seed=seed,
               **{f"has_{k[5:]}": v for k, v in flags.items()}, y_rel_err=_rel(y, yr), last_state_rel_err=_rel(last, lr),
               y_all_finite=bool(torch.isfinite(y).all()))
    if grad:
        errs = {k: _rel(gr[k], grr[k]) for k in grr}
        worst = max(errs, key=errs.get)
        row.update(grad_rel_err_max=errs[worst], grad_worst_input=worst, grad_through_last_state=use_last)
    return row


CASES = [  # (b, d, l, n, flags): streaming frame, long clip, odd sizes, without options
    (1, 768, 197, 16, dict()),
    (2, 96, 1000, 16, dict()),
    (3, 37, 71, 16, dict(with_h0=False)),
    (2, 64, 130, 8, dict(with_z=False, with_d=False, with_bias=False)),
]


@contextmanager
def _env(name: str, value):
    """Set (value None: unset) environment variable `name` inside the block, then restore what it was."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextmanager
def _variant(label: str):
    """'triton:flip' = backend 'triton' with its backward's reverse scan done by flips; else the backend."""
    name, _, mode = label.partition(":")
    if not mode:
        yield name
        return
    with _env("ENDOLIB_TRITON_REVERSE", mode):
        yield name


def check_backends(backends, device, cases=CASES, seed: int = 0, grad_max_elems: int = 2_000_000) -> list:
    """Forward fp32 + bf16 and fp32 gradients for each backend and case (gradients on the smaller cases).
    A backend label 'triton:flip' checks the Triton backward's alternative reverse scan."""
    rows = []
    for i, (b, d, l, n, flags) in enumerate(cases):
        for dtype in (torch.float32, torch.bfloat16):
            for backend in backends:
                grad = dtype == torch.float32 and b * d * l <= grad_max_elems
                try:
                    with _variant(backend) as name:
                        row = check_case(name, device, dtype, b, d, l, n, seed + 17 * i, grad, **flags)
                    rows.append({**row, "backend": backend})
                except Exception as e:  # a failing backend is a result, not a crash of the whole run
                    log.exception("scan check %s failed", backend)
                    rows.append(dict(backend=backend, dtype=str(dtype), b=b, d=d, l=l, n=n,
                                     error=f"{type(e).__name__}: {e}"[:300]))
    return rows


@torch.no_grad()
def time_backends(backends, device, b=1, d=768, l=197, n=16, iters: int = 50) -> list:
    """Forward time (median ms) of each backend on the streaming shape (one frame of a temporal layer)."""
    rows = []
    inp = random_inputs(b, d, l, n, seed=99)
    for backend in backends:
        for dtype in (torch.float32, torch.bfloat16):
            kw = {k: (v.to(dtype if k in ("u", "delta", "B", "C", "z") else torch.float32).to(device)
                      if v is not None else None) for k, v in inp.items()}
            fn = lambda: selective_scan(**kw, delta_softplus=True, return_last_state=True, backend=backend)  # noqa
            ms = time_calls(fn, device, iters=iters, warmup=3)
            rows.append(dict(backend=backend, dtype=str(dtype).replace("torch.", ""), b=b, d=d, l=l, n=n,
                             case="timing", ms_median=float(np.median(ms)), ms_p90=float(np.percentile(ms, 90))))
    return rows


# forward tile choices timed on the streaming shapes (scan_triton.parse_tiles strings): the chunked-scan winners
# of the full (d, t, n) / (d, n, t) / nloop grid measured on the H200 at commit 6d976c0 (16.2 / 24.4 µs), and
# 'seq' walks (channels, segments, warps at 4 state values a thread, steps per loop iteration) around the best of
# a 24-choice grid (outputs/benchmarks/scan_tiles_gpu.csv: more segments, more warps or longer unrolls were slower;
# so was Triton's loop pipelining of the walks, removed after measuring 12 choices of it: NOTES.md)
TILE_CHOICES = ("2,128,4", "2,64,1,tlast", "8,4,4,seq2", "8,4,4,seq4", "16,4,8,seq2", "16,4,8,seq4",
                "8,8,8,seq2", "16,2,4,seq4", "8,2,2,seq4",
                "8,8,8,walk", "8,16,16,walk", "4,16,8,walk", "16,8,16,walk", "16,16,32,walk",
                "6,8,6,walk", "6,16,12,walk", "12,8,12,walk", "12,16,24,walk", "12,4,6,walk",
                "3,32,12,walk", "4,32,16,walk", "6,32,24,walk")


def time_tiles(device, tiles=("auto",) + TILE_CHOICES, d: int = 768, l: int = 197, n: int = 16) -> list:
    """Triton scan forward GPU time (bf16, µs per call inside a CUDA graph) per tile choice (set through
    ENDOLIB_TRITON_TILES) on the two streaming shapes, with the token-major strides and output of the fused
    mixers: a temporal layer (batch 1, initial state) and a fused spatial layer (2 directions);
    `best_tiles(rows)` picks the fastest per shape."""
    from endolib.ops import scan_triton
    inp = {k: v for k, v in random_inputs(2, d, l, n, seed=98).items() if v is not None}
    # laid out as the fused token-major mixers hand them over: (b, l, .) storage seen as (b, ., l) views
    tm = lambda v: v.transpose(1, 2).contiguous().transpose(1, 2)  # noqa: E731
    kw = {k: tm(v.to(device, torch.bfloat16)) if k in ("u", "delta", "B", "C", "z") else v.to(device, torch.float32)
          for k, v in inp.items()}
    grp = dict(A=torch.stack([kw["A"], kw["A"] * 0.5]), D=torch.stack([kw["D"], -kw["D"]]),
               delta_bias=torch.stack([kw["delta_bias"], kw["delta_bias"] + 0.1]))
    one = lambda k: kw[k][:1]  # noqa: E731
    calls = {"temporal_b1_h0": lambda: scan_triton.selective_scan_grouped(
                 one("u"), one("delta"), kw["A"][None], one("B"), one("C"), kw["D"][None], z=one("z"),
                 delta_bias=kw["delta_bias"][None], delta_softplus=True, initial_state=one("initial_state"),
                 return_last_state=True, token_major=True),
             "spatial_grouped_b2": lambda: scan_triton.selective_scan_grouped(
                 kw["u"], kw["delta"], grp["A"], kw["B"], kw["C"], grp["D"], z=kw["z"],
                 delta_bias=grp["delta_bias"], delta_softplus=True, token_major=True)}
    batch = {"temporal_b1_h0": 1, "spatial_grouped_b2": 2}
    rows, first = [], {}
    for t in tiles:
        for case, fn in calls.items():
            try:
                with _env("ENDOLIB_TRITON_TILES", None if t == "auto" else t):
                    y = fn()
                    y = y[0] if isinstance(y, tuple) else y
                    first.setdefault(case, y)
                    us = time_in_graph(fn, device) * 1e3
                rows.append(dict(tiles=t, case=case, batch=batch[case], d=d, l=l, n=n,
                                 us_median=float(np.median(us)), rel_vs_first=_rel(y, first[case])))
            except Exception as e:  # a config that fails to compile (resources) is a result, not a crash
                rows.append(dict(tiles=t, case=case, batch=batch[case], d=d, l=l, n=n,
                                 error=f"{type(e).__name__}: {e}"[:200]))
    return rows


def best_tiles(rows: list, max_rel: float = 1e-2) -> dict:
    """{(batch, d, n): tiles} of the fastest correct choice per shape in `time_tiles` rows ('auto' excluded)."""
    ok = [r for r in rows if r.get("tiles") != "auto" and np.isfinite(r.get("us_median", np.nan))
          and r.get("rel_vs_first", np.inf) <= max_rel]
    best = {}
    for r in sorted(ok, key=lambda r: r["us_median"]):
        best.setdefault((r["batch"], r["d"], r["n"]), r["tiles"])
    return best
