"""Where a scan call spends its time: the 'seq' and 'walk' kernels with phases switched off, timed in CUDA graphs.

    python -m endolib.profiling.scan_phases --out DIR      # ~2.5 min on an H200 -> DIR/scan_phases_gpu.csv

A diagnostic, not a fast path. It compiles copies of the kernels whose sources are patched (PATCHES for the
Triton 'seq' kernel, `scan_triton._fwd_seq_kernel`; WALK_PATCHES for the CUDA C 'walk' kernel,
`scan_walk.source`: each must match its kernel's text exactly once, so an edit of a kernel that breaks one
fails loudly; tested) to take one more constant, PH, a sum of flags. 'seq' (FLAGS):
    1 the prologue (per-step inputs staged into the workspace),  2 the zero-state walk and the state passing,
    4 the walk writing y,  8 that walk reads the same workspace rows at every step (always cached),
    16 that walk stores no y,  32 after the prologue, prefetch the program's workspace into L1.
'walk' (WALK_FLAGS): 1 staging, 2 the zero walks, 4 the state passing, 8 the walk writing partial outputs,
    16 the output pass (reduce, gate, store); PH=0 leaves the launch, the A / h0 loads and the last state.
With phases off the results are wrong by design: only the times mean something, and the difference of two rows
is a phase's cost (PH=5 minus PH=1: the 'seq' walk writing y). The two streaming shapes of
`scan_check.time_tiles`.
"""
import argparse
import importlib.util
import inspect
import logging
import tempfile
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from endolib.profiling import harness, scan_check
from endolib.utils import atomic_write_text

log = logging.getLogger(__name__)
FLAGS = {1: "prologue", 2: "zero walk + passing", 4: "walk writing y", 8: "fixed rows", 16: "no y stores",
         32: "L1 prefetch"}
WALK_FLAGS = {1: "staging", 2: "zero walks", 4: "state passing", 8: "walk writing partials", 16: "output"}
SEQ_PHASE_BITS = (1, 2, 4)  # the 'seq' flags that add a phase; 8, 16 and 32 change how its walk runs
# the kernel's body is indented by 4 after textwrap.dedent
_WALK_Y = ("        nxt = _seq_group_loads(ws + (first + s0 + UNROLL) * W, W, BLOCK_D, BLOCK_N, True, UNROLL)\n"
           "        h = _seq_walk(cur, h, A2, o_ptr, first + s0, L, dmask, so_l, UNROLL, INTERPRET)\n")
_BARRIER = "    tl.debug_barrier()  # the workspace rows are read below by other threads of this program\n"
PATCHES = [  # (kernel text, replacement)
    ("INTERPRET: tl.constexpr):", "INTERPRET: tl.constexpr, PH: tl.constexpr):"),
    ("for c in range(0, rows, TCH):  # 1.", "for c in range(0, rows if PH % 2 == 1 else 0, TCH):  # 1."),
    (_BARRIER, _BARRIER + "    if (PH // 32) % 2 == 1:\n"
     "        for i in range(0, rows * W, 32 * 256):  # one 128-byte line a thread\n"
     "            _prefetch_l1(ws + i + tl.arange(0, 256) * 32)\n"),
    ("if SEGS > 1:  # 2. and 3.", "if SEGS > 1 and (PH // 2) % 2 == 1:  # 2. and 3."),
    ("    for s0 in range(0, SEG, UNROLL):\n        cur = nxt\n",
     "    for s0 in range(0, SEG if (PH // 4) % 2 == 1 else 0, UNROLL):\n        cur = nxt\n"),
    (_WALK_Y, _WALK_Y.replace("(first + s0 + UNROLL)", "(first + (s0 + UNROLL) * (1 - (PH // 8) % 2))")
     .replace("first + s0, L,", "first + s0, L * (1 - (PH // 16) % 2),")),
]
WALK_PATCHES = [  # (kernel text, replacement): each phase of the 'walk' kernel behind a bit of PH
    ("  // 1. staging", "  if (PH & 1) {\n  // 1. staging"),
    ("  __syncthreads();\n\n  // The walks load", "  }\n  __syncthreads();\n\n  // The walks load"),
    ("  if (seg < SEGS - 1) {  // 2a.", "  if ((PH & 2) && seg < SEGS - 1) {  // 2a."),
    ("  if (SEGS > 1) {  // 2b.", "  if ((PH & 4) && SEGS > 1) {  // 2b."),
    ("  {  // 2c.", "  if (PH & 8) {  // 2c."),
    ("  for (int i = threadIdx.x; i < L * DB; i += NT) {  // 3.",
     "  if (PH & 16) for (int i = threadIdx.x; i < L * DB; i += NT) {  // 3."),
]

_HEADER = '''import triton
import triton.language as tl


@triton.jit
def _prefetch_l1(ptr):
    tl.inline_asm_elementwise("prefetch.global.L1 [$1]; mov.b32 $0, 0;", "=r,l", [ptr.to(tl.uint64, bitcast=True)],
                              dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
'''


def _patch(src: str, patches: list, what: str) -> str:
    """src with each (text, replacement) of patches applied; ValueError unless each text occurs exactly once."""
    for old, new in patches:
        if src.count(old) != 1:
            raise ValueError(f"scan_phases patches no longer match {what} ({src.count(old)} matches of "
                             f"{old.strip()[:60]!r}): update them to the kernel's new text.")
        src = src.replace(old, new)
    return src


def patched_source() -> str:
    """The 'seq' kernel's source with PATCHES applied (ValueError if one does not match exactly once)."""
    from endolib.ops import scan_triton
    src = _patch(textwrap.dedent(inspect.getsource(scan_triton._fwd_seq_kernel.fn)), PATCHES, "_fwd_seq_kernel")
    return _HEADER + src.replace("@triton.jit\n", "", 1)


def patched_walk_source(src: str, ph: int) -> str:
    """A 'walk' kernel source (`scan_walk.source(...)`) with WALK_PATCHES applied and PH defined."""
    return f"#define PH {ph}\n" + _patch(src, WALK_PATCHES, "scan_walk.source")


_KERNEL = None


def phase_kernel():
    """The patched kernel (triton.jit reads a function's source from its file: hence a module on disk); the
    helpers it calls are scan_triton's own (its globals, resolved when the kernel compiles)."""
    global _KERNEL
    if _KERNEL is None:
        from endolib.ops import scan_triton
        path = Path(tempfile.mkdtemp()) / "seq_phases_kernel.py"
        path.write_text(patched_source())
        spec = importlib.util.spec_from_file_location("seq_phases_kernel", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name, value in vars(scan_triton).items():
            vars(mod).setdefault(name, value)
        _KERNEL = mod._fwd_seq_kernel
    return _KERNEL


class _WithPhases:
    """Stands in for `scan_triton._fwd_seq_kernel`: launches the patched kernel with PH (and TCH rows per
    prologue tile when tch > 0)."""

    def __init__(self, ph: int, tch: int = 0):
        self.kernel, self.ph, self.tch = phase_kernel(), ph, tch

    def __getitem__(self, grid):
        def launch(*args, **kw):
            if self.tch:
                kw["TCH"] = self.tch
            return self.kernel[grid](*args, PH=self.ph, **kw)
        return launch


@contextmanager
def _phases(ph: int, tch: int):
    from endolib.ops import scan_triton
    real = scan_triton._fwd_seq_kernel
    scan_triton._fwd_seq_kernel = _WithPhases(ph, tch)
    try:
        yield
    finally:
        scan_triton._fwd_seq_kernel = real


@contextmanager
def _walk_phases(ph: int):
    """Inside, scan_walk compiles its kernel from the source patched with PH (its kernel cache emptied on the
    way in and out, so no patched kernel outlives the block)."""
    from endolib.ops import scan_walk
    real = scan_walk.source
    clear = getattr(scan_walk._kernel, "cache_clear", lambda: None)
    scan_walk.source = lambda *args: patched_walk_source(real(*args), ph)
    clear()
    try:
        yield
    finally:
        scan_walk.source = real
        clear()


def is_walk(tiles: str) -> bool:
    return tiles.endswith(",walk")


def flags_of(tiles: str) -> dict:
    """The PH flags of the kernel a tile spec runs: WALK_FLAGS for 'walk' tiles, FLAGS for the 'seq' kernel."""
    return WALK_FLAGS if is_walk(tiles) else FLAGS


def phase_bits(tiles: str) -> tuple:
    """The flags that each add a phase, in the kernel's order: PH = 0, 1, 3, 7, ... switch them on one by one."""
    return tuple(WALK_FLAGS) if is_walk(tiles) else SEQ_PHASE_BITS


def label(ph: int, tiles: str) -> str:
    return " + ".join(name for bit, name in flags_of(tiles).items() if ph & bit) or "launch only"


# (tiles, PH, prologue rows per tile; 0 = the kernel's own): the tuned temporal tiles phase by phase, their
# walk on cached rows / without stores, the L1 prefetch, smaller prologue tiles; more warps (one state a thread),
# a longer unroll, the tuned spatial tiles, one segment
SPECS = ([("8,4,4,seq2", ph, 0) for ph in (7, 0, 1, 3, 5, 4, 6, 13, 21, 29, 31, 39)]
         + [("8,4,4,seq2", 1, 64), ("8,4,4,seq2", 1, 32)]
         + [("8,4,16,seq2", ph, 0) for ph in (7, 0, 1, 3, 5, 21, 29)]
         + [("8,4,4,seq8", ph, 0) for ph in (7, 5, 13, 29)]
         + [("16,4,8,seq2", ph, 0) for ph in (7, 0, 1, 3, 5, 4)]
         + [("8,1,1,seq2", ph, 0) for ph in (7, 0, 1, 5)]
         # the tuned 'walk' tiles (temporal, fused spatial) phase by phase, and staging + output alone
         + [(t, ph, 0) for t in ("6,16,12,walk", "12,16,24,walk") for ph in (31, 0, 1, 3, 7, 15, 16, 17)])


def time_phases(device, specs=SPECS) -> list:
    """Rows of `scan_check.time_tiles` (µs a call in CUDA graphs, both streaming shapes) per (tiles, PH, tch)."""
    rows = []
    for tiles, ph, tch in specs:
        with _walk_phases(ph) if is_walk(tiles) else _phases(ph, tch):
            for r in scan_check.time_tiles(device, tiles=(tiles,)):
                r.pop("rel_vs_first", None)  # compared with itself: meaningless here
                rows.append(dict(r, ph=ph, phases=label(ph, tiles), prologue_rows=tch or "auto"))
                log.info("%-14s PH=%2d %-50s %-20s %6.2f us", tiles, ph, label(ph, tiles), r["case"],
                         r.get("us_median", np.nan))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not torch.cuda.is_available():
        raise SystemExit("scan_phases times CUDA kernels: run it on a GPU machine.")
    df = pd.DataFrame(time_phases(torch.device("cuda")))
    for k, v in harness.environment(torch.device("cuda"), "triton", torch.bfloat16).items():
        df[k] = v
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(df.to_csv(index=False), args.out / "scan_phases_gpu.csv")
    print(df.pivot_table(index=["tiles", "ph", "phases", "prologue_rows"], columns="case", values="us_median").round(2)
          .to_string())


if __name__ == "__main__":
    main()
