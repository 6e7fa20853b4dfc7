"""Triton selective scan vs the float64 sequential loop: forward, last state and every gradient.

On a CUDA machine the kernels run compiled, in this process. On a CPU machine they run under Triton's
interpreter, which must be switched on before triton is imported, so the same checks run in a fresh
subprocess (this file executed as a script with TRITON_INTERPRET=1) and report their errors as JSON.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from endolib.ops import selective_scan_ref
from endolib.ops import scan_triton, scan_walk
from walk_host import compiler, host_kernel

HAVE_TRITON = importlib.util.find_spec("triton") is not None
FLAG_SETS = [  # (initial_state, z, D, delta_bias, softplus)
    (True, True, True, True, True),
    (False, False, False, False, False),
    (True, False, True, False, True),
    (False, True, False, True, False),
]


def _shapes(seed: int):
    """Fresh random shapes per case: l spans 1, one chunk and several chunks; n not always a power of 2."""
    g = torch.Generator().manual_seed(seed)
    pick = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))  # noqa: E731
    ls = [1, pick(2, 63), pick(65, 100), pick(65, 100)]
    return [(pick(1, 2), pick(3, 8), ls[i % 4], [16, 5, 8, 16][i % 4]) for i in range(len(FLAG_SETS))]


def _inputs(b, d, l, n, flags, seed, device, dtype=torch.float32):
    h0, z, D, bias, sp = flags
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    x = dict(u=r(b, d, l), delta=r(b, d, l) * 0.5 - 1.0,
             A=-torch.exp(r(d, n) * 0.5), B=r(b, n, l), C=r(b, n, l), D=r(d) if D else None, z=r(b, d, l) if z else None,
             delta_bias=r(d) * 0.3 if bias else None, initial_state=r(b, d, n) if h0 else None)
    if not sp:  # without softplus delta must be positive, as the mixer guarantees
        x["delta"] = x["delta"].abs() + 0.05
    cast = {k: (v.to(dtype) if k in ("u", "delta", "B", "C", "z") else v.float()) for k, v in x.items() if v is not None}
    ref_in = {k: v.double() for k, v in cast.items()}
    dev = {k: v.to(device).requires_grad_(dtype == torch.float32) for k, v in cast.items()}
    return dev, {k: v.requires_grad_(dtype == torch.float32) for k, v in ref_in.items()}, sp


def _rel(a, b) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def compare_all(device, seed=0) -> list:
    """Errors of the triton scan vs the oracle for each flag set: forward fp32 + gradients (contiguous inputs),
    forward bf16 without gradients (strided inputs)."""
    out = []
    for i, ((b, d, l, n), flags) in enumerate(zip(_shapes(seed), FLAG_SETS)):
        dev, ref, sp = _inputs(b, d, l, n, flags, seed + i, device)
        y, last = scan_triton.selective_scan_triton(**dev, delta_softplus=sp, return_last_state=True)
        yr, lr = selective_scan_ref(**ref, delta_softplus=sp, return_last_state=True)
        g = torch.Generator().manual_seed(seed + 100 + i)
        gy, gl = torch.randn(yr.shape, generator=g, dtype=torch.float64), torch.randn(lr.shape, generator=g, dtype=torch.float64)
        names = sorted(dev)
        gt = torch.autograd.grad((y.double().cpu() * gy).sum() + (last.double().cpu() * gl).sum(), [dev[k] for k in names])
        gr = torch.autograd.grad((yr * gy).sum() + (lr * gl).sum(), [ref[k] for k in names])
        # inference (no gradients: the inference-only tiles too) reads through strides: hand it the transposed
        # views the mixer produces, in fp32 and bf16
        strided = lambda x: {k: (v.detach().transpose(1, 2).contiguous().transpose(1, 2)  # noqa: E731
                                 if v.dim() == 3 and k != "initial_state" else v.detach()) for k, v in x.items()}
        devb, refb, _ = _inputs(b, d, l, n, flags, seed + i, device, torch.bfloat16)
        devb = strided(devb)
        assert l == 1 or not devb["delta"].is_contiguous()
        with torch.no_grad():
            yi, lasti = scan_triton.selective_scan_triton(**strided(dev), delta_softplus=sp, return_last_state=True)
            yb = scan_triton.selective_scan_triton(**devb, delta_softplus=sp)
            ybr = selective_scan_ref(**{k: v.detach() for k, v in refb.items()}, delta_softplus=sp)
        out.append(dict(shape=[b, d, l, n], flags=list(flags), y=_rel(y, yr), last=_rel(last, lr),
                        y_infer=_rel(yi, yr), last_infer=_rel(lasti, lr),
                        grads={k: _rel(a, c) for k, a, c in zip(names, gt, gr)}, y_bf16=_rel(yb, ybr),
                        finite=bool(torch.isfinite(y).all() and torch.isfinite(yb).all())))
    return out


def compare_grouped(device, seed=0) -> list:
    """selective_scan_grouped (directions stacked on the batch axis, own A / D / bias per group, strided
    delta) vs the float64 loop run on each group's slice: relative errors per group and call, of y and, with
    an initial state and a token-major output, of y and the last state; -1 if that output is not token-major."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    G, m, d, l, n = 2, int(torch.randint(1, 3, (1,), generator=g)), 6, int(torch.randint(65, 100, (1,), generator=g)), 16
    u, dt, z, B, C = r(G * m, d, l), r(G * m, d, l) * 0.5 - 1, r(G * m, d, l), r(G * m, n, l), r(G * m, n, l)
    A, D, bias, h0 = -torch.exp(r(G, d, n) * 0.5), r(G, d), r(G, d) * 0.3, r(G * m, d, n)
    to = lambda t: t.to(device)  # noqa: E731
    args = (to(u), to(dt).transpose(1, 2).contiguous().transpose(1, 2), to(A), to(B), to(C), to(D))
    kw = dict(z=to(z), delta_bias=to(bias), delta_softplus=True)
    y = scan_triton.selective_scan_grouped(*args, **kw)
    y2, last = scan_triton.selective_scan_grouped(*args, **kw, initial_state=to(h0), return_last_state=True,
                                                  token_major=True)
    errs = [] if y2.transpose(1, 2).is_contiguous() else [-1.0]
    for i in range(G):
        s = slice(i * m, (i + 1) * m)
        ref = lambda h: selective_scan_ref(u[s].double(), dt[s].double(), A[i].double(), B[s].double(),  # noqa
                                           C[s].double(), D[i].double(), z=z[s].double(), delta_bias=bias[i].double(),
                                           delta_softplus=True, initial_state=h, return_last_state=True)
        yr, _ = ref(None)
        yr2, lastr = ref(h0[s].double())
        errs += [_rel(y[s], yr), _rel(y2[s], yr2), _rel(last[s], lastr)]
    return errs


def compare_fused_mixers(device, seed=0) -> list:
    """Fused token-major mixers on the Triton scan (grouped, token-major output, carried state) vs eager mixers
    on the PyTorch scan, with random weights, inputs and states: relative errors of a bidirectional mixer's
    output, then of a causal mixer's output, conv state and SSM state over two calls."""
    import copy
    from endolib.models.mamba import MambaMixer
    from endolib.profiling.fused_mixer import fuse_mixers
    torch.manual_seed(seed)
    if scan_triton.interpreting():  # one program per sequence: the interpreter runs programs one by one
        os.environ["ENDOLIB_TRITON_TILES"] = "32,8"
    errs = []
    for bidir in (True, False):
        ref = MambaMixer(16, bidirectional=bidir, scan_backend="torch").to(device)
        for prm in ref.parameters():  # O(1) weights: every path matters to the output
            torch.nn.init.normal_(prm, std=0.3)
        fused = torch.nn.Sequential(copy.deepcopy(ref))
        fused[0].scan_backend = "triton"
        fuse_mixers(fused)
        assert fused[0]._fused["triton"]
        x = torch.randn(2, 2, 7, 16, device=device)
        with torch.no_grad():
            if bidir:
                errs.append(_rel(fused[0](x[0]), ref(x[0])))
                continue
            s_ref = tuple(torch.randn_like(t) for t in ref.init_state(2, device))
            s_fused = tuple(t.clone() for t in s_ref)
            for t in range(2):
                a, s_ref = ref(x[t], s_ref)
                b, s_fused = fused[0](x[t], s_fused)
                errs += [_rel(b, a), _rel(s_fused[0], s_ref[0]), _rel(s_fused[1], s_ref[1])]
    return errs


def _assert_errors(rows):
    assert len(rows) == len(FLAG_SETS)
    for r in rows:
        assert r["finite"], r
        assert max(r["y"], r["last"], r["y_infer"], r["last_infer"]) < 1e-5, r
        assert max(r["grads"].values()) < 1e-4, r
        assert r["y_bf16"] < 2e-2, r
    # every optional input got a gradient somewhere
    seen = set().union(*(r["grads"] for r in rows))
    assert {"u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state"} <= seen


def _assert_grouped(errs):
    assert len(errs) == 6 and min(errs) >= 0 and max(errs) < 1e-5, errs


def test_grouped_bad_shapes_say_what_was_expected():
    x = torch.randn(3, 4, 8)
    with pytest.raises(ValueError, match="multiple of the groups"):
        scan_triton.selective_scan_grouped(x, x, -torch.rand(2, 4, 16), torch.randn(3, 16, 8), torch.randn(3, 16, 8),
                                           torch.randn(2, 4))


def test_import_and_availability_never_fail():
    assert isinstance(scan_triton.available("cpu"), bool)
    if not scan_triton.interpreting():
        assert not scan_triton.available("cpu")
        with pytest.raises(ValueError, match="backend 'torch'"):
            x = torch.randn(1, 4, 8)
            scan_triton.selective_scan_triton(x, x, -torch.rand(4, 16), torch.randn(1, 16, 8), torch.randn(1, 16, 8))


def test_bad_shapes_say_what_was_expected():
    x = torch.randn(1, 4, 8)
    with pytest.raises(ValueError, match=r"A \(d, n\)"):
        scan_triton.selective_scan_triton(x, x, -torch.rand(5, 16), torch.randn(1, 16, 8), torch.randn(1, 16, 8))


@pytest.mark.skipif(not torch.cuda.is_available() or not HAVE_TRITON, reason="needs CUDA and triton")
@pytest.mark.parametrize("reverse,tiles", [("native", None), ("flip", None), ("native", "8,8,8,seq4"),
                                           ("native", "4,4,2,seq2"), ("native", "8,4,4,walk"),
                                           ("native", "4,4,1,walk")])
def test_triton_matches_reference_cuda(reverse, tiles, monkeypatch):
    """Default tiles with both reverse scans, and the inference-only 'seq' tiles (segments, unrolled walks) and
    'walk' tiles (the NVRTC kernel; '8,4,4': 4 states a thread at n = 16, falling back at n = 5, 8; '4,4,1': 8
    states a thread at n = 16, 4 at n = 5 (padded to 8) and 8)."""
    monkeypatch.setenv("ENDOLIB_TRITON_REVERSE", reverse)
    if tiles:
        monkeypatch.setenv("ENDOLIB_TRITON_TILES", tiles)
    seed = int.from_bytes(os.urandom(2), "little")
    _assert_errors(compare_all("cuda", seed=seed))
    _assert_grouped(compare_grouped("cuda", seed=seed))
    assert max(compare_fused_mixers("cuda", seed=seed)) < 1e-5


@pytest.mark.skipif(not compiler() or not HAVE_TRITON, reason="needs a C++ compiler (g++ / clang++) and triton")
@pytest.mark.parametrize("spec, d, l, n, dtype", [("8,4,4,walk", 12, 37, 16, torch.float32),
                                                  ("8,4,4,walk", 12, 37, 16, torch.bfloat16),
                                                  ("4,4,1,walk", 6, 50, 5, torch.float32),
                                                  ("6,16,3,walk", 12, 37, 4, torch.float32),
                                                  ("8,4,4,walk", 12, 600, 16, torch.float32),
                                                  ("8,16,16,walk", 12, 197, 16, torch.bfloat16),
                                                  ("6,16,12,walk", 12, 197, 16, torch.bfloat16),
                                                  ("3,32,12,walk", 6, 197, 16, torch.float32),
                                                  ("12,16,24,walk", 24, 197, 16, torch.bfloat16)])
def test_walk_kernel_on_the_host_matches_reference(spec, d, l, n, dtype, monkeypatch):
    """The 'walk' kernel's CUDA C compiled for this CPU (tests/walk_host.py: the same source, every block's
    threads as OS threads) vs the float64 loop, on fresh random inputs: two groups with their own A / D / bias,
    token-major strided rows, channels and states past the tile masked (d not a multiple of BLOCK_D, n = 5 in
    8 padded states), segments of uneven length, 32 segments (the state passing in several rounds), staging in
    several chunks (l = 600); all optional inputs, then none (no softplus)."""
    monkeypatch.setattr(scan_walk, "_kernel", host_kernel)
    tiles = scan_triton.parse_tiles(spec, n)
    g = torch.Generator().manual_seed(int.from_bytes(os.urandom(2), "little"))
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    tm = lambda t: t.to(dtype).transpose(1, 2)  # noqa: E731  (b, l, .) rows seen as (b, ., l)
    G, b = 2, 4
    for full in (True, False):
        u, z, B, C = tm(r(b, l, d)), tm(r(b, l, d)), tm(r(b, l, n)), tm(r(b, l, n))
        dt = tm(r(b, l, d) * 0.5 - 1) if full else tm(r(b, l, d).abs() * 0.3 + 0.05)
        A, D, bias, h0 = -torch.exp(r(G, d, n) * 0.5), r(G, d), r(G, d) * 0.3, r(b, d, n)
        opt = dict(D=D, z=z, delta_bias=bias, h0=h0) if full else dict(D=None, z=None, delta_bias=None, h0=None)
        out, last = scan_triton._empty_out(u, True), torch.empty(b, d, n)
        args, strides, flags = scan_triton.kernel_args(u, dt, A, B, C, opt["D"], opt["z"], opt["delta_bias"],
                                                       opt["h0"], full, out, last)
        scan_walk.forward(args, strides, b // G, flags, tiles)
        for i in range(G):
            s = slice(i * b // G, (i + 1) * b // G)
            f64 = lambda t, k=None: None if t is None else t[s if k is None else k].double()  # noqa: E731
            yr, lr = selective_scan_ref(f64(u), f64(dt), f64(A, i), f64(B), f64(C), f64(opt["D"], i),
                                        z=f64(opt["z"]), delta_bias=f64(opt["delta_bias"], i), delta_softplus=full,
                                        initial_state=f64(opt["h0"]), return_last_state=True)
            tol = 1e-5 if dtype == torch.float32 else 1e-2  # bf16: the output's rounding
            assert _rel(out[s], yr) < tol and _rel(last[s], lr) < 1e-5, (full, i, _rel(out[s], yr), _rel(last[s], lr))


@pytest.mark.skipif(not torch.cuda.is_available() or not HAVE_TRITON, reason="needs CUDA and triton")
def test_walk_tiles_fall_back_past_shared_memory(monkeypatch):
    """A 'walk' tile stages every step in shared memory: past what one block may hold (~1 K steps on an H100 /
    H200) the forward takes chunked tiles, and so do inputs it does not read (mixed dtypes, float16)."""
    monkeypatch.setenv("ENDOLIB_TRITON_TILES", "8,8,8,walk")
    cuda = torch.device("cuda")
    fwd = lambda l, ok=True: scan_triton._forward_tiles(1, 768, 16, l, cuda, False, 2, ok).layout  # noqa: E731
    assert fwd(197) == "walk" and fwd(8192) == "dtn" and fwd(197, ok=False) == "dtn"
    x, h = torch.ones(1, device=cuda), torch.ones(1, device=cuda, dtype=torch.float16)
    assert scan_walk.takes(x.bfloat16(), x.bfloat16(), None) and scan_walk.takes(x, x)
    assert not scan_walk.takes(x, x.bfloat16()) and not scan_walk.takes(h, h)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: the compiled kernels are tested instead")
@pytest.mark.parametrize("tiles", ["4,64", "2,32,2,tlast", "4,128,2,nloop", "4,4,2,seq2"])
def test_triton_matches_reference_interpreter(tiles):
    """The native reverse scan; the 'flip' variant is slow under the interpreter and is checked on CUDA
    (here and by `python -m endolib.profiling.gpu`)."""
    if not HAVE_TRITON:
        pytest.skip("triton is not installed: `pip install triton` to run the kernels under TRITON_INTERPRET=1")
    # GPU-like tiles (several chunks, masked tails), in both forward layouts: (d, t, n) and (d, n, t)
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1", "ENDOLIB_TRITON_TILES": tiles,
           "ENDOLIB_TRITON_REVERSE": "native"}
    seed = int.from_bytes(os.urandom(2), "little")
    proc = subprocess.run([sys.executable, __file__, str(seed)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"interpreter run failed (seed {seed}):\n{proc.stderr[-3000:]}"
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    _assert_errors(res["rows"])
    _assert_grouped(res["grouped"])
    assert len(res["mixers"]) == 7 and max(res["mixers"]) < 1e-5, res["mixers"]


@pytest.mark.skipif(not HAVE_TRITON, reason="needs triton")
def test_inference_tiles_fall_back_where_they_do_not_apply(monkeypatch):
    """'seq' / 'nloop' tiles serve short inference forwards only: a forward saving states for a backward, a
    'seq' walk over more than SEQ_MAX_L steps or a sequence longer than the 'nloop' tile takes chunked tiles."""
    cpu = torch.device("cpu")
    fwd = lambda l, save=False: scan_triton._forward_tiles(1, 64, 16, l, cpu, save).layout  # noqa: E731
    monkeypatch.setenv("ENDOLIB_TRITON_TILES", "8,4,4,seq2")
    assert fwd(197) == "seq" and fwd(scan_triton.SEQ_MAX_L) == "seq"
    assert fwd(scan_triton.SEQ_MAX_L + 1) == "dtn" and fwd(197, save=True) == "dtn"
    assert [scan_triton._forward_tiles(1, 64, 16, 197, cpu, False, b).layout for b in (2, 4, 8)] == ["seq", "seq", "dtn"]
    monkeypatch.setenv("ENDOLIB_TRITON_TILES", "4,256,2,nloop")
    assert fwd(197) == "nloop" and fwd(257) == "dtn" and fwd(100, save=True) == "dtn"
    monkeypatch.setenv("ENDOLIB_TRITON_TILES", "8,4,4,walk")  # the NVRTC kernel needs CUDA
    assert fwd(197) == "dtn"


def test_walk_tiles_split_into_16_byte_state_groups():
    """'walk' tiles: states a thread = channels x segments x padded states / threads, a multiple of 4 dividing
    the state size; the shared memory holds the staged steps, the partial outputs and the segment states."""
    assert scan_walk.split(8, 4, 4, 16) == 4 and scan_walk.split(4, 4, 1, 16) == 8 and scan_walk.split(4, 4, 1, 8) == 4
    assert scan_walk.split(6, 8, 6, 16) == 4 and scan_walk.split(12, 8, 12, 16) == 4
    # 2 a thread, 2, 2, > 1024 threads, 32 threads for 64 states
    for bad in ((8, 4, 8, 16), (8, 4, 4, 8), (2, 2, 1, 16), (64, 16, 64, 16), (4, 4, 1, 64)):
        with pytest.raises(ValueError, match="states a thread"):
            scan_walk.split(*bad)
    rows = 4 * 50 + 1  # 197 steps in 4 segments of 50, and the step the walks read ahead
    assert scan_walk.shared_bytes(197, 8, 4, 4, 16) == 4 * (rows * (4 * 8 + 2 * 16 + 8 * 4) + 2 * 4 * 8 * 16)
    # segments of 50 steps; 128 threads stage 16 steps of a channel and 8 of a state index at a time: 201 rows
    # take 13 and 26 turns
    assert scan_walk.step_counts(197, 8, 4, 4, 16) == (50, 13, 26)
    assert scan_walk.step_counts(192, 8, 4, 4, 16) == (48, 13, 25)
    src = scan_walk.source(8, 4, 4, 16, torch.bfloat16, (50, 13, 26))
    for define in ("SEG 50", "CIT 13", "SIT 26", "NPT 4", "SEGS 4", "IN_BITS 16"):
        assert f"#define {define}" in src, define
    assert re.search(r"__[A-Z]+__", src) is None, "a template placeholder was left in the source"


@pytest.mark.skipif(not HAVE_TRITON, reason="needs triton")
def test_parse_tiles():
    assert scan_triton.parse_tiles("2,64", 16) == scan_triton.Tiles(2, 64, 16, 4, "dtn")
    assert scan_triton.parse_tiles("1,256,8,tlast", 5) == scan_triton.Tiles(1, 256, 8, 8, "dnt")
    assert scan_triton.parse_tiles("4,256,2,nloop", 16).layout == "nloop"
    assert scan_triton.parse_tiles("8,4,4,seq8", 16) == scan_triton.Tiles(8, 4, 16, 4, "seq", 8)
    assert scan_triton.parse_tiles("8,4,4,seq", 16).unroll == 1
    assert scan_triton.parse_tiles("8,4,4,walk", 16) == scan_triton.Tiles(8, 4, 16, 4, "walk")
    assert scan_triton.parse_tiles("6,8,6,walk", 16).block_d == 6  # 128 blocks of 6 channels fill 132 SMs
    for t in (scan_triton.Tiles(2, 64, 16, 4, "dtn"), scan_triton.Tiles(8, 4, 16, 4, "seq", 8),
              scan_triton.Tiles(4, 256, 16, 2, "nloop"), scan_triton.Tiles(8, 4, 16, 4, "walk")):
        assert scan_triton.parse_tiles(t.spec(), 16) == t
    for bad in ("3,64", "6,8,6,seq2", "6,8,6", "0,8,6,walk", "6,6,6,walk", "2,64,4,tdfirst", "2", "2,64,4,tlast,1",
                "2,x", "8,4,4,seqx", "8,4,4,seq3", "8,4,4,seq2s3"):
        with pytest.raises(ValueError, match="BLOCK_D,CHUNK"):
            scan_triton.parse_tiles(bad, 16)


if __name__ == "__main__":  # run by the interpreter test in a fresh process
    assert scan_triton.interpreting(), "set TRITON_INTERPRET=1 before running this file"
    seed = int(sys.argv[1])
    print(json.dumps(dict(rows=compare_all("cpu", seed=seed), grouped=compare_grouped("cpu", seed=seed),
                          mixers=compare_fused_mixers("cpu", seed=seed))))
