"""Selective scan in Triton (forward and backward, initial state in, last state out), backend 'triton'.

Same semantics as `endolib.ops.selective_scan_ref` (mamba-ssm's `selective_scan_fn`):
    delta <- softplus(delta + delta_bias);  h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t  (h_{-1} = initial_state)
    y_t = C_t . h_t + D u_t;  y_t <- y_t * silu(z_t)
Each program owns BLOCK_D channels of one batch element and walks the sequence in chunks of CHUNK steps;
inside a chunk the linear recurrence is one `tl.associative_scan` over (exp(delta A), delta B u) pairs, so a
GPU user gets a fast, differentiable scan without compiling a CUDA extension.
The backward recomputes the states of each chunk from the chunk-start states saved by the forward (b, d,
chunks, n floats) and runs the adjoint recurrence G_t = dy_t C_t + exp(delta_{t+1} A) G_{t+1} as a reverse
scan. Runs on CUDA tensors, or on CPU tensors under Triton's interpreter (`TRITON_INTERPRET=1` set before
triton is imported) for tests. Importing this module never fails: without triton, `available()` is False.
"""
import logging
import math
import os
import re
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from endolib.ops import scan_walk

log = logging.getLogger(__name__)

try:  # triton is optional: the module must import on any machine
    import triton
    import triton.language as tl
    _HAVE_TRITON = True
except Exception:  # pragma: no cover - depends on the machine
    triton = None
    tl = None
    _HAVE_TRITON = False

CHUNK = 32


def interpreting() -> bool:
    """True when Triton runs kernels through its CPU interpreter (TRITON_INTERPRET=1 at import)."""
    if not _HAVE_TRITON:
        return False
    try:
        return bool(triton.knobs.runtime.interpret)
    except AttributeError:  # older triton
        return os.environ.get("TRITON_INTERPRET", "0") == "1"


_INTERPRET = interpreting()  # fixed when triton is imported; a constant keeps torch.compile from tracing triton


def available(device=None) -> bool:
    """Whether the Triton scan can run on `device` (CUDA with triton, or CPU under the interpreter)."""
    if not _HAVE_TRITON:
        return False
    dev = torch.device(device) if device is not None else None
    if dev is None or dev.type == "cuda":
        return torch.cuda.is_available()
    return dev.type == "cpu" and _INTERPRET


if _HAVE_TRITON:

    @triton.jit
    def _softplus(x):
        # log(1 + e^x), the identity past 20 (mamba-ssm's threshold: no overflow, same value in fp32)
        return tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)

    @triton.jit
    def _combine(a1, b1, a2, b2):
        # compose two steps h -> a h + b: first (a1, b1), then (a2, b2)
        return a1 * a2, a2 * b1 + b2

    @triton.jit
    def _fwd_kernel(U, DT, A, Bm, Cm, Dv, Z, BIAS, H0, OUT, HLAST, HSAVE, L, DIM, NSTATE, NCHUNK, GRP,
                    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sz_b, sz_d, sz_l, sb_b, sb_n, sb_l, sc_b, sc_n, sc_l,
                    so_b, so_d, so_l,
                    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                    SOFTPLUS: tl.constexpr, HAS_H0: tl.constexpr, SAVE: tl.constexpr,
                    BLOCK_D: tl.constexpr, CHUNK: tl.constexpr, BLOCK_N: tl.constexpr,
                    TLAST: tl.constexpr):
        pid_b = tl.program_id(0)
        offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        offs_t = tl.arange(0, CHUNK)
        dmask = offs_d < DIM
        dn_mask = dmask[:, None] & (offs_n < NSTATE)[None, :]
        grp = pid_b // GRP  # parameter group of this batch element (A, D, bias of shape (groups, d, ...))
        A = A + grp * DIM * NSTATE
        Dv = Dv + grp * DIM
        BIAS = BIAS + grp * DIM
        A_blk = tl.load(A + offs_d[:, None] * NSTATE + offs_n[None, :], mask=dn_mask, other=0.0).to(tl.float32)
        state_off = (pid_b * DIM + offs_d[:, None]) * NSTATE + offs_n[None, :]
        if HAS_H0:
            h = tl.load(H0 + state_off, mask=dn_mask, other=0.0).to(tl.float32)
        else:
            h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(BIAS + offs_d, mask=dmask, other=0.0).to(tl.float32)
        if HAS_D:
            dskip = tl.load(Dv + offs_d, mask=dmask, other=0.0).to(tl.float32)
        for c in range(0, NCHUNK):
            if SAVE:
                tl.store(HSAVE + ((pid_b * DIM + offs_d[:, None]) * NCHUNK + c) * NSTATE + offs_n[None, :],
                         h, mask=dn_mask)
            t = c * CHUNK + offs_t
            tmask = t < L
            m2 = dmask[:, None] & tmask[None, :]
            out_off = pid_b * so_b + offs_d[:, None] * so_d + t[None, :] * so_l
            u = tl.load(U + pid_b * su_b + offs_d[:, None] * su_d + t[None, :] * su_l, mask=m2, other=0.0)
            u = u.to(tl.float32)
            dt = tl.load(DT + pid_b * sdt_b + offs_d[:, None] * sdt_d + t[None, :] * sdt_l, mask=m2, other=0.0)
            dt = dt.to(tl.float32)
            if HAS_BIAS:
                dt = dt + bias[:, None]
            if SOFTPLUS:
                dt = _softplus(dt)
            dt = tl.where(m2, dt, 0.0)  # padded steps: exp(0) = 1 and no input, the state passes through
            if TLAST:  # tiles (d, n, t): time is the fastest axis, so a thread holds consecutive steps
                nt_mask = (offs_n < NSTATE)[:, None] & tmask[None, :]
                Bc = tl.load(Bm + pid_b * sb_b + offs_n[:, None] * sb_n + t[None, :] * sb_l, mask=nt_mask, other=0.0)
                Cc = tl.load(Cm + pid_b * sc_b + offs_n[:, None] * sc_n + t[None, :] * sc_l, mask=nt_mask, other=0.0)
                dA = tl.exp(A_blk[:, :, None] * dt[:, None, :])
                dBu = Bc.to(tl.float32)[None, :, :] * (dt * u)[:, None, :]
                sa, sb = tl.associative_scan((dA, dBu), axis=2, combine_fn=_combine)
                hs = sa * h[:, :, None] + sb
                y = tl.sum(hs * Cc.to(tl.float32)[None, :, :], axis=1)
                h = tl.sum(tl.where((offs_t == CHUNK - 1)[None, None, :], hs, 0.0), axis=2)
            else:  # tiles (d, t, n)
                tn_mask = tmask[:, None] & (offs_n < NSTATE)[None, :]
                Bc = tl.load(Bm + pid_b * sb_b + offs_n[None, :] * sb_n + t[:, None] * sb_l, mask=tn_mask, other=0.0)
                Cc = tl.load(Cm + pid_b * sc_b + offs_n[None, :] * sc_n + t[:, None] * sc_l, mask=tn_mask, other=0.0)
                dA = tl.exp(dt[:, :, None] * A_blk[:, None, :])
                dBu = (dt * u)[:, :, None] * Bc.to(tl.float32)[None, :, :]
                sa, sb = tl.associative_scan((dA, dBu), axis=1, combine_fn=_combine)
                hs = sa * h[:, None, :] + sb
                y = tl.sum(hs * Cc.to(tl.float32)[None, :, :], axis=2)
                h = tl.sum(tl.where((offs_t == CHUNK - 1)[None, :, None], hs, 0.0), axis=1)
            if HAS_D:
                y = y + u * dskip[:, None]
            if HAS_Z:
                zz = tl.load(Z + pid_b * sz_b + offs_d[:, None] * sz_d + t[None, :] * sz_l, mask=m2, other=0.0)
                zz = zz.to(tl.float32)
                y = y * zz * tl.sigmoid(zz)
            tl.store(OUT + out_off, y.to(OUT.dtype.element_ty), mask=m2)
        tl.store(HLAST + state_off, h, mask=dn_mask)

    @triton.jit
    def _fwd_nloop_kernel(U, DT, A, Bm, Cm, Dv, Z, BIAS, H0, OUT, HLAST, L, DIM, NSTATE, GRP,
                          su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sz_b, sz_d, sz_l, sb_b, sb_n, sb_l,
                          sc_b, sc_n, sc_l, so_b, so_d, so_l,
                          HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                          SOFTPLUS: tl.constexpr, HAS_H0: tl.constexpr,
                          BLOCK_D: tl.constexpr, LP: tl.constexpr, BLOCK_N: tl.constexpr):
        # Inference, whole sequence in one tile (LP >= L): one 2-D (channels, time) scan per state n, so every
        # tensor shares one layout (no 3-D broadcasts or layout conversions); the 16 scans are independent.
        pid_b = tl.program_id(0)
        offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        t = tl.arange(0, LP)
        dmask = offs_d < DIM
        tmask = t < L
        m2 = dmask[:, None] & tmask[None, :]
        grp = pid_b // GRP
        u = tl.load(U + pid_b * su_b + offs_d[:, None] * su_d + t[None, :] * su_l, mask=m2, other=0.0).to(tl.float32)
        dt = tl.load(DT + pid_b * sdt_b + offs_d[:, None] * sdt_d + t[None, :] * sdt_l, mask=m2, other=0.0)
        dt = dt.to(tl.float32)
        if HAS_BIAS:
            dt = dt + tl.load(BIAS + grp * DIM + offs_d, mask=dmask, other=0.0).to(tl.float32)[:, None]
        if SOFTPLUS:
            dt = _softplus(dt)
        dt = tl.where(m2, dt, 0.0)  # padded steps: exp(0) = 1 and no input, the state passes through
        dtu = dt * u
        y = tl.zeros((BLOCK_D, LP), dtype=tl.float32)
        for n in tl.static_range(BLOCK_N):
            dmask_n = dmask & (tl.full((BLOCK_D,), n, tl.int32) < NSTATE)  # padded states: no input, no output
            tmask_n = tmask & (tl.full((LP,), n, tl.int32) < NSTATE)
            a = tl.load(A + (grp * DIM + offs_d) * NSTATE + n, mask=dmask_n, other=0.0).to(tl.float32)
            bn = tl.load(Bm + pid_b * sb_b + n * sb_n + t * sb_l, mask=tmask_n, other=0.0).to(tl.float32)
            cn = tl.load(Cm + pid_b * sc_b + n * sc_n + t * sc_l, mask=tmask_n, other=0.0).to(tl.float32)
            sa, sb = tl.associative_scan((tl.exp(a[:, None] * dt), dtu * bn[None, :]), axis=1, combine_fn=_combine)
            state = (pid_b * DIM + offs_d) * NSTATE + n
            if HAS_H0:
                sb = sb + sa * tl.load(H0 + state, mask=dmask_n, other=0.0).to(tl.float32)[:, None]
            y += sb * cn[None, :]
            tl.store(HLAST + state, tl.sum(tl.where((t == L - 1)[None, :], sb, 0.0), axis=1), mask=dmask_n)
        if HAS_D:
            y = y + u * tl.load(Dv + grp * DIM + offs_d, mask=dmask, other=0.0).to(tl.float32)[:, None]
        if HAS_Z:
            zz = tl.load(Z + pid_b * sz_b + offs_d[:, None] * sz_d + t[None, :] * sz_l, mask=m2, other=0.0)
            zz = zz.to(tl.float32)
            y = y * zz * tl.sigmoid(zz)
        tl.store(OUT + pid_b * so_b + offs_d[:, None] * so_d + t[None, :] * so_l, y.to(OUT.dtype.element_ty), mask=m2)

    @triton.jit
    def _store_in_place(ptr, val, mask, INTERPRET: tl.constexpr):
        # tl.store, but from the value's own register layout: for a store Triton picks the layout that
        # coalesces best and converts the value through shared memory (a barrier per store), which inside a
        # time loop costs more than the step. Threads holding copies of a value store it again (same address).
        if INTERPRET:
            tl.store(ptr, val, mask=mask)
        elif val.dtype.primitive_bitwidth == 32:
            tl.inline_asm_elementwise(
                "{ .reg .pred p; setp.ne.b32 p, $3, 0; @p st.global.b32 [$1], $2; mov.b32 $0, 0; }",
                "=r,l,r,r", [ptr.to(tl.uint64, bitcast=True), val.to(tl.uint32, bitcast=True), mask.to(tl.int32)],
                dtype=tl.int32, is_pure=False, pack=1)
        else:
            tl.static_assert(val.dtype.primitive_bitwidth == 16, "_store_in_place writes 16- or 32-bit values")
            tl.inline_asm_elementwise(
                "{ .reg .pred p; setp.ne.b32 p, $3, 0; @p st.global.b16 [$1], $2; mov.b32 $0, 0; }",
                "=r,l,h,r", [ptr.to(tl.uint64, bitcast=True), val.to(tl.uint16, bitcast=True), mask.to(tl.int32)],
                dtype=tl.int32, is_pure=False, pack=1)

    @triton.jit
    def _fwd_seq_kernel(U, DT, A, Bm, Cm, Dv, Z, BIAS, H0, OUT, HLAST, WS, HS, L, SEG, DIM, NSTATE, GRP,
                        su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sz_b, sz_d, sz_l, sb_b, sb_n, sb_l,
                        sc_b, sc_n, sc_l, so_b, so_d, so_l: tl.constexpr,
                        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                        SOFTPLUS: tl.constexpr, HAS_H0: tl.constexpr, BLOCK_D: tl.constexpr,
                        BLOCK_N: tl.constexpr, SEGS: tl.constexpr, UNROLL: tl.constexpr, TCH: tl.constexpr,
                        INTERPRET: tl.constexpr):
        # Inference for short sequences (batch-1 streaming), where a scan is latency-bound: each thread walks
        # time step by step for its (channel, states) with the recurrence in registers (no associative-scan
        # shuffles), and the sequence is cut into SEGS segments walked in parallel (state passing):
        #   1. the per-step inputs once, parallel over the tile, into this program's workspace rows (fp32,
        #      W = 4 BLOCK_D + 2 BLOCK_N per step): delta = softplus(dt + bias), delta u, the gate silu(z),
        #      the gated skip D u silu(z), B and C; the walks below then load at constant offsets;
        #   2. each segment from a zero state: its end state and its decay exp(A sum(delta)) into HS;
        #   3. the state entering each segment, from h0 and the earlier segments (SEGS - 1 steps);
        #   4. each segment again from its true entering state, writing y.
        # So the sequential chain per thread is 2 L / SEGS steps (L with SEGS = 1, which skips 2 and 3). The
        # walks issue the loads of the next UNROLL steps before computing the current ones. Segments are SEG
        # steps (a multiple of UNROLL) and the workspace has SEGS SEG + UNROLL rows, zero past L (steps that
        # pass the state through), so the walks load without masks.
        W: tl.constexpr = 4 * BLOCK_D + 2 * BLOCK_N
        pid_b = tl.program_id(0)
        prog = pid_b * tl.num_programs(1) + tl.program_id(1)
        offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        dmask = offs_d < DIM
        nmask = offs_n < NSTATE
        grp = pid_b // GRP
        rows = SEGS * SEG + UNROLL
        ws = WS + prog * rows * W
        if HAS_BIAS:
            bias = tl.load(BIAS + grp * DIM + offs_d, mask=dmask, other=0.0)
        if HAS_D:
            dskip = tl.load(Dv + grp * DIM + offs_d, mask=dmask, other=0.0)
        for c in range(0, rows, TCH):  # 1.
            t = c + tl.arange(0, TCH)
            tmask = t < L
            wmask = t < rows
            m2 = tmask[:, None] & dmask[None, :]
            u = tl.load(U + pid_b * su_b + t[:, None] * su_l + offs_d[None, :] * su_d, mask=m2, other=0.0)
            u = u.to(tl.float32)
            dt = tl.load(DT + pid_b * sdt_b + t[:, None] * sdt_l + offs_d[None, :] * sdt_d, mask=m2, other=0.0)
            dt = dt.to(tl.float32)
            if HAS_BIAS:
                dt = dt + bias[None, :]
            if SOFTPLUS:
                dt = _softplus(dt)
            dt = tl.where(m2, dt, 0.0)  # padded channels: no input, no output
            if HAS_Z:
                zz = tl.load(Z + pid_b * sz_b + t[:, None] * sz_l + offs_d[None, :] * sz_d, mask=m2, other=0.0)
                zz = zz.to(tl.float32)
                gate = zz * tl.sigmoid(zz)
            else:
                gate = tl.full((TCH, BLOCK_D), 1.0, tl.float32)
            if HAS_D:
                gd = u * dskip[None, :] * gate
            else:
                gd = tl.zeros((TCH, BLOCK_D), tl.float32)
            row = ws + t[:, None] * W + tl.arange(0, BLOCK_D)[None, :]
            rmask = wmask[:, None] & (tl.arange(0, BLOCK_D) >= 0)[None, :]
            tl.store(row, dt, mask=rmask)
            tl.store(row + BLOCK_D, dt * u, mask=rmask)
            tl.store(row + 2 * BLOCK_D, gate, mask=rmask)
            tl.store(row + 3 * BLOCK_D, gd, mask=rmask)
            tn = tmask[:, None] & nmask[None, :]
            Bt = tl.load(Bm + pid_b * sb_b + t[:, None] * sb_l + offs_n[None, :] * sb_n, mask=tn, other=0.0)
            Ct = tl.load(Cm + pid_b * sc_b + t[:, None] * sc_l + offs_n[None, :] * sc_n, mask=tn, other=0.0)
            rown = ws + t[:, None] * W + 4 * BLOCK_D + offs_n[None, :]
            rnmask = wmask[:, None] & (offs_n >= 0)[None, :]
            tl.store(rown, Bt.to(tl.float32), mask=rnmask)  # padded states: B = C = 0
            tl.store(rown + BLOCK_N, Ct.to(tl.float32), mask=rnmask)
        tl.debug_barrier()  # the workspace rows are read below by other threads of this program
        first = tl.arange(0, SEGS) * SEG  # first step of each segment
        p3 = tl.arange(0, SEGS)[:, None, None]
        dn3 = offs_d[None, :, None] * NSTATE + offs_n[None, None, :]
        dn_mask3 = dmask[None, :, None] & nmask[None, None, :] & (p3 >= 0)
        A2 = tl.load(A + grp * DIM * NSTATE + dn3, mask=dn_mask3, other=0.0) * 1.4426950408889634  # exp -> exp2
        if HAS_H0:
            h = tl.load(H0 + pid_b * DIM * NSTATE + dn3, mask=dn_mask3, other=0.0)
        else:
            h = tl.zeros((SEGS, BLOCK_D, BLOCK_N), tl.float32)
        if SEGS > 1:  # 2. and 3.
            hs = tl.zeros((SEGS, BLOCK_D, BLOCK_N), tl.float32)
            total = tl.zeros((SEGS, BLOCK_D), tl.float32)
            nxt = _seq_group_loads(ws + first * W, W, BLOCK_D, BLOCK_N, False, UNROLL)
            for s0 in range(0, SEG, UNROLL):
                cur = nxt  # the next group's loads are issued before this group computes
                nxt = _seq_group_loads(ws + (first + s0 + UNROLL) * W, W, BLOCK_D, BLOCK_N, False, UNROLL)
                hs, total = _seq_walk_zero(cur, hs, total, A2, UNROLL)
            hs_base = HS + prog * 2 * SEGS * BLOCK_D * BLOCK_N
            pdn = (p3 * BLOCK_D + tl.arange(0, BLOCK_D)[None, :, None]) * BLOCK_N + offs_n[None, None, :]
            tl.store(hs_base + pdn, hs)
            tl.store(hs_base + SEGS * BLOCK_D * BLOCK_N + pdn, tl.exp2(total[:, :, None] * A2))
            tl.debug_barrier()
            dn = tl.arange(0, BLOCK_D)[None, :, None] * BLOCK_N + offs_n[None, None, :] + 0 * p3
            for q in tl.static_range(SEGS - 1):  # state entering segment p: h0 through segments 0 .. p-1
                hq = tl.load(hs_base + q * BLOCK_D * BLOCK_N + dn)
                aq = tl.load(hs_base + (SEGS + q) * BLOCK_D * BLOCK_N + dn)
                h = tl.where(p3 > q, aq * h + hq, h)
        o_ptr = OUT + pid_b * so_b + offs_d[None, :] * so_d
        nxt = _seq_group_loads(ws + first * W, W, BLOCK_D, BLOCK_N, True, UNROLL)  # 4.
        for s0 in range(0, SEG, UNROLL):
            cur = nxt
            nxt = _seq_group_loads(ws + (first + s0 + UNROLL) * W, W, BLOCK_D, BLOCK_N, True, UNROLL)
            h = _seq_walk(cur, h, A2, o_ptr, first + s0, L, dmask, so_l, UNROLL, INTERPRET)
        # the last segment's walk ends at step L - 1 (padded steps pass the state through)
        tl.store(HLAST + pid_b * DIM * NSTATE + dn3 + 0 * p3, h, mask=dn_mask3 & (p3 == SEGS - 1))

    @triton.jit
    def _seq_walk_zero(group, hs, total, A2, UNROLL: tl.constexpr):
        # UNROLL steps of the recurrence (walk 2.), summing delta for the segment's decay
        for j in tl.static_range(UNROLL):
            delta, du, Bt = group[j][0], group[j][1], group[j][4]
            hs = tl.exp2(delta[:, :, None] * A2) * hs + du[:, :, None] * Bt[:, None, :]
            total += delta
        return hs, total

    @triton.jit
    def _seq_walk(group, h, A2, o_ptr, t0, L, dmask, so_l: tl.constexpr, UNROLL: tl.constexpr,
                  INTERPRET: tl.constexpr):
        # UNROLL steps of the recurrence from steps t0 (SEGS,) on (walk 4.), writing y_t = C_t h_t gate + skip
        o_grp = o_ptr + t0[:, None] * so_l
        for j in tl.static_range(UNROLL):
            delta, du, gate, gd, Bt, Ct = group[j]
            h = tl.exp2(delta[:, :, None] * A2) * h + du[:, :, None] * Bt[:, None, :]
            y = tl.sum(h * Ct[:, None, :], axis=2) * gate + gd
            m2 = (t0 + j < L)[:, None] & dmask[None, :]
            _store_in_place(o_grp + j * so_l, y.to(o_ptr.dtype.element_ty), m2, INTERPRET)
        return h

    @triton.jit
    def _seq_group_loads(base, W: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, FULL: tl.constexpr,
                         UNROLL: tl.constexpr):
        # UNROLL steps from the workspace, base: (SEGS,) row pointers of the first: a tuple, per step, of (delta,
        # delta u, gate, gated skip) as (SEGS, BLOCK_D) and (B, C) as (SEGS, BLOCK_N), each at a constant offset
        # from base. FULL=False leaves the gate, the gated skip and C out (the first walk needs none).
        od = tl.arange(0, BLOCK_D)[None, :]
        on = tl.arange(0, BLOCK_N)[None, :]
        group = ()
        for j in tl.static_range(UNROLL):
            row = base[:, None] + j * W
            delta = tl.load(row + od)
            du = tl.load(row + BLOCK_D + od)
            Bt = tl.load(row + 4 * BLOCK_D + on)
            if FULL:
                gate = tl.load(row + 2 * BLOCK_D + od)
                gd = tl.load(row + 3 * BLOCK_D + od)
                Ct = tl.load(row + 4 * BLOCK_D + BLOCK_N + on)
            else:
                gate = delta
                gd = delta
                Ct = Bt
            group = group + ((delta, du, gate, gd, Bt, Ct),)
        return group

    @triton.jit
    def _bwd_kernel(U, DT, A, Bm, Cm, DY, HSAVE, DHLAST, DU, DDT, DA, DB, DC, DH0, L, DIM, NSTATE, NCHUNK,
                    HAS_DHLAST: tl.constexpr, BLOCK_D: tl.constexpr, CHUNK: tl.constexpr,
                    BLOCK_N: tl.constexpr, FLIP: tl.constexpr):
        pid_b = tl.program_id(0)
        pid_d = tl.program_id(1)
        ndblk = tl.num_programs(1)
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        offs_t = tl.arange(0, CHUNK)
        dmask = offs_d < DIM
        nmask = offs_n < NSTATE
        dn_mask = dmask[:, None] & nmask[None, :]
        A_blk = tl.load(A + offs_d[:, None] * NSTATE + offs_n[None, :], mask=dn_mask, other=0.0).to(tl.float32)
        state_off = (pid_b * DIM + offs_d[:, None]) * NSTATE + offs_n[None, :]
        if HAS_DHLAST:
            g = tl.load(DHLAST + state_off, mask=dn_mask, other=0.0).to(tl.float32)
        else:
            g = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
        dA_acc = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
        for ci in range(0, NCHUNK):
            c = NCHUNK - 1 - ci
            t = c * CHUNK + offs_t
            tmask = t < L
            m2 = dmask[:, None] & tmask[None, :]
            base = (pid_b * DIM + offs_d[:, None]) * L + t[None, :]
            u = tl.load(U + base, mask=m2, other=0.0)
            dt = tl.load(DT + base, mask=m2, other=0.0)
            dy = tl.load(DY + base, mask=m2, other=0.0)
            m2n = dmask[:, None] & (t + 1 < L)[None, :]
            dt1 = tl.load(DT + base + 1, mask=m2n, other=0.0)  # delta_{t+1}; 0 past the end -> factor 1
            bc_off = pid_b * NSTATE * L + offs_n[None, :] * L + t[:, None]
            tn_mask = tmask[:, None] & nmask[None, :]
            Bc = tl.load(Bm + bc_off, mask=tn_mask, other=0.0).to(tl.float32)
            Cc = tl.load(Cm + bc_off, mask=tn_mask, other=0.0).to(tl.float32)
            h_start = tl.load(HSAVE + ((pid_b * DIM + offs_d[:, None]) * NCHUNK + c) * NSTATE + offs_n[None, :],
                              mask=dn_mask, other=0.0)
            dA = tl.exp(dt[:, :, None] * A_blk[:, None, :])
            dBu = (dt * u)[:, :, None] * Bc[None, :, :]
            sa, sb = tl.associative_scan((dA, dBu), axis=1, combine_fn=_combine)
            hs = sa * h_start[:, None, :] + sb
            dA1 = tl.exp(dt1[:, :, None] * A_blk[:, None, :])
            x = dy[:, :, None] * Cc[None, :, :]
            if FLIP:  # the same reverse scan as flip -> forward scan -> flip
                ra, rb = tl.associative_scan((tl.flip(dA1, 1), tl.flip(x, 1)), axis=1, combine_fn=_combine)
                ra = tl.flip(ra, 1)
                rb = tl.flip(rb, 1)
            else:
                ra, rb = tl.associative_scan((dA1, x), axis=1, combine_fn=_combine, reverse=True)
            G = rb + ra * g[:, None, :]  # total gradient of h_t
            first = (offs_t == 0)[None, :, None]
            g = tl.sum(tl.where(first, G, 0.0), axis=1)
            hprev_dA = hs - dBu  # exp(delta_t A) h_{t-1}
            ddt = tl.sum(G * (Bc[None, :, :] * u[:, :, None] + A_blk[:, None, :] * hprev_dA), axis=2)
            du = tl.sum(G * Bc[None, :, :], axis=2) * dt
            dA_acc += tl.sum(G * dt[:, :, None] * hprev_dA, axis=1)
            dB_part = tl.sum(G * (dt * u)[:, :, None], axis=0)
            dC_part = tl.sum(hs * dy[:, :, None], axis=0)
            tl.store(DU + base, du, mask=m2)
            tl.store(DDT + base, ddt, mask=m2)
            part_off = ((pid_b * ndblk + pid_d) * NSTATE + offs_n[None, :]) * L + t[:, None]
            tl.store(DB + part_off, dB_part, mask=tn_mask)
            tl.store(DC + part_off, dC_part, mask=tn_mask)
        # after the first chunk, g is G_0; the initial state enters h_0 through exp(delta_0 A)
        dt0 = tl.load(DT + (pid_b * DIM + offs_d) * L, mask=dmask, other=0.0)
        tl.store(DA + state_off, dA_acc, mask=dn_mask)
        tl.store(DH0 + state_off, g * tl.exp(dt0[:, None] * A_blk), mask=dn_mask)


class Tiles(NamedTuple):
    block_d: int      # channels per program
    chunk: int        # steps per associative scan (the program walks the sequence chunk by chunk); with the
                      # 'seq' layout, the number of segments walked in parallel
    block_n: int      # state size padded to a power of 2
    warps: int
    layout: str       # forward: 'dtn' tiles (d, t, n), 'dnt' (d, n, t), 'nloop': inference with the whole
                      # sequence in one (d, t) tile (chunk >= L) and one 2-D scan per state, 'seq':
                      # inference walking time step by step in `chunk` parallel segments (_fwd_seq_kernel),
                      # or 'walk': the same walks as a CUDA C kernel compiled by NVRTC (`scan_walk`)
    unroll: int = 1   # 'seq': time steps per loop iteration (the next iteration's loads fly meanwhile)

    def spec(self) -> str:
        """The 'BLOCK_D,CHUNK,WARPS,layout' string `parse_tiles` reads back."""
        lay = {"dtn": "", "dnt": "tlast", "nloop": "nloop", "seq": f"seq{self.unroll}", "walk": "walk"}[self.layout]
        return f"{self.block_d},{self.chunk},{self.warps}" + (f",{lay}" if lay else "")


LAYOUTS = {"": "dtn", "tlast": "dnt", "nloop": "nloop", "seq": "seq", "walk": "walk"}  # spec token -> layout
INFERENCE_ONLY = ("nloop", "seq", "walk")  # layouts with no chunk-start states saved for a backward
SEQ_MAX_L = 1024  # 'seq' walks L / segments steps one by one: longer sequences (whole clips) take chunked tiles

# Tiles measured best on an H200 for the batch-1 streaming shapes of endomamba_small (L = 197, token-major
# strides) in CUDA graphs, keyed by (batch, d, n): `scan_check.time_tiles` -> outputs/benchmarks/
# scan_tiles_gpu.csv: the NVRTC 'walk' kernel, temporal 6.2 us (Triton 'seq' 12.6, chunked 16.2), fused spatial
# 7.9 us (Triton 'seq' 18.6, chunked 24.7); where NVRTC is missing they fall back to the heuristic Triton tiles.
# Other GPUs may prefer others: `python -m endolib.profiling.gpu --only fast --tiles-bench` measures and uses theirs.
TUNED = {(1, 768, 16): "6,16,12,walk", (2, 768, 16): "12,16,24,walk"}


def parse_tiles(spec: str, n: int) -> Tiles:
    """'BLOCK_D,CHUNK[,WARPS[,tlast|nloop|seqUNROLL|walk]]' -> Tiles (the format of ENDOLIB_TRITON_TILES and
    TUNED); with 'seq' and 'walk', CHUNK is the number of segments (e.g. '8,4,4,seq8': 8 channels, 4 segments,
    4 warps, 8 steps per loop iteration)."""
    parts = spec.split(",")
    lay = parts[3] if len(parts) == 4 else ""
    seq = re.fullmatch(r"seq(\d*)", lay)
    unroll = int(seq.group(1) or 1) if seq else 1
    pow2 = parts[1:2] if lay == "walk" else parts[:3] + [str(unroll)]  # 'walk': any BLOCK_D and WARPS
    if not 2 <= len(parts) <= 4 or not all(v.isdigit() and int(v) > 0 for v in parts[:3]) \
            or (lay not in LAYOUTS and not seq) or any(int(v) & (int(v) - 1) for v in pow2):
        raise ValueError(f"tiles must be 'BLOCK_D,CHUNK[,WARPS[,tlast|nloop|seqUNROLL|walk]]' with powers of 2 "
                         f"(BLOCK_D and WARPS any with 'walk'), got {spec!r}")
    block_d, chunk = int(parts[0]), int(parts[1])
    block_n = max(2, triton.next_power_of_2(n))
    warps = int(parts[2]) if len(parts) > 2 else (4 if block_d * chunk * block_n <= 2048 else 8)
    return Tiles(block_d, chunk, block_n, warps, "seq" if seq else LAYOUTS[lay], unroll)


def _tiles(batch: int, dim: int, n: int, device: torch.device, tuned: bool = True) -> Tiles:
    """Tiles for a scan of `batch` x `dim` channels with state size n.

    BLOCK_D x CHUNK x BLOCK_N fp32 values live per program: kept to 4096 (16 per thread at 8 warps, no
    spills). Small problems (batch-1 streaming) take narrow channel blocks, for enough programs to fill the
    SMs; the measured streaming shapes come from TUNED. ENDOLIB_TRITON_TILES overrides (tests, tuning).
    tuned=False: the heuristic alone (what inference-only tiles fall back to where they do not apply:
    `_forward_tiles`)."""
    forced = os.environ.get("ENDOLIB_TRITON_TILES")
    if forced and tuned:
        return parse_tiles(forced, n)
    block_n = max(2, triton.next_power_of_2(n))
    if device.type != "cuda":  # interpreter: fewer, larger programs run faster
        return Tiles(min(64, triton.next_power_of_2(dim)), CHUNK, block_n, 4, "dtn")
    if tuned and (batch, dim, n) in TUNED:
        return parse_tiles(TUNED[(batch, dim, n)], n)
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    block_d = 8 if batch * math.ceil(dim / 8) >= 2 * sms else 2
    chunk = max(16, min(64, 4096 // (block_d * block_n)))
    return Tiles(block_d, chunk, block_n, 4 if block_d * chunk * block_n <= 2048 else 8, "dtn")


def _forward_tiles(batch: int, dim: int, n: int, l: int, device: torch.device, save: bool,
                   out_bytes: int = 2, walk_inputs: bool = True) -> Tiles:
    """`_tiles`, where they apply to a forward over l steps: a forward that saves chunk-start states for a backward
    (save) takes chunked tiles, 'nloop' needs the sequence in one tile, 'seq' walks at most SEQ_MAX_L steps and
    writes 2- or 4-byte outputs (its register-layout store, `_store_in_place`); 'walk' runs on CUDA where it
    takes the inputs (walk_inputs: `scan_walk.takes`), its tile splits and its staged steps fit in shared memory."""
    tiles = _tiles(batch, dim, n, device)
    seq_fits = l <= SEQ_MAX_L and out_bytes in (2, 4)
    if (tiles.layout in INFERENCE_ONLY and save) or (tiles.layout == "seq" and not seq_fits) or \
            (tiles.layout == "walk" and not (device.type == "cuda" and walk_inputs
                                             and scan_walk.fits(l, tiles, device))) or \
            (tiles.layout == "nloop" and max(16, triton.next_power_of_2(l)) > tiles.chunk):
        return _tiles(batch, dim, n, device, tuned=False)
    return tiles


def _check(u, delta, A, B, C, initial_state):
    # u, delta: (b, d, l); A: (d, n); B, C: (b, n, l); initial_state: (b, d, n)
    b, d, l = u.shape
    n = A.shape[1]
    if delta.shape != u.shape or A.shape != (d, n) or B.shape != (b, n, l) or C.shape != (b, n, l):
        raise ValueError(
            f"selective_scan (triton) expects u, delta (b, d, l), A (d, n), B, C (b, n, l); got u "
            f"{tuple(u.shape)}, delta {tuple(delta.shape)}, A {tuple(A.shape)}, B {tuple(B.shape)}, "
            f"C {tuple(C.shape)}. Variable B/C per channel and complex A are not supported: use backend 'torch'.")
    if initial_state is not None and initial_state.shape != (b, d, n):
        raise ValueError(f"initial_state must be (b, d, n) = {(b, d, n)}, got {tuple(initial_state.shape)}")
    if not available(u.device):
        raise ValueError(
            f"the triton scan needs CUDA tensors (or CPU tensors with TRITON_INTERPRET=1 set before triton is "
            f"imported); got device {u.device}, triton installed: {_HAVE_TRITON}. Use backend 'torch' instead.")


def _empty_out(u, token_major: bool):
    """The scan output (b, d, l): contiguous, or token-major (a view of a contiguous (b, l, d)), so that the
    `b d l -> b l d` view a mixer hands its out_proj is row-major (a GEMM with a column-major activation
    operand measured ~3x slower at 197 rows: outputs/benchmarks/gemm_layout_gpu.csv)."""
    b, d, l = u.shape
    if token_major:
        return torch.empty(b, l, d, device=u.device, dtype=u.dtype).transpose(1, 2)
    return torch.empty(b, d, l, device=u.device, dtype=u.dtype)


def kernel_args(u, delta, A, B, C, D, z, delta_bias, h0, softplus, out, last) -> tuple:
    """What the forward kernels take: (u, delta, A, B, C, D, z, delta_bias, h0, out, last) with the float32
    parameters contiguous and `last` as the dummy of an absent input, the strides of u, delta, z, B, C, out,
    and the flags saying which inputs are present."""
    dummy = last
    args = (u, delta, A.float().contiguous(), B, C, D.float().contiguous() if D is not None else dummy,
            z if z is not None else dummy, delta_bias.float().contiguous() if delta_bias is not None else dummy,
            h0.float().contiguous() if h0 is not None else dummy, out, last)
    strides = (*u.stride(), *delta.stride(), *(z.stride() if z is not None else (0, 0, 0)), *B.stride(),
               *C.stride(), *out.stride())
    flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                 SOFTPLUS=bool(softplus), HAS_H0=h0 is not None)
    return args, strides, flags


def _fwd(u, delta, A, B, C, D, z, delta_bias, softplus, h0, save, token_major=False):
    # u, delta, z: (b, d, l), B, C: (b, n, l), any strides; A: (d, n) or (g, d, n) with D, delta_bias (g, d)
    # (batch element i uses group i // (b // g)) -> out (b, d, l) in u.dtype, contiguous, or with
    # token_major a view of a contiguous (b, l, d); last (b, d, n) fp32, hsave (b, d, chunks, n) fp32
    b, d, l = u.shape
    n = A.shape[-1]
    grp = b // A.shape[0] if A.dim() == 3 else b
    tiles = _forward_tiles(b, d, n, l, u.device, save, u.element_size(), scan_walk.takes(u, delta, B, C, z))
    lp = max(16, triton.next_power_of_2(l))
    out = _empty_out(u, token_major)
    last = torch.empty(b, d, n, device=u.device, dtype=torch.float32)
    grid = (b, triton.cdiv(d, tiles.block_d))
    args, strides, flags = kernel_args(u, delta, A, B, C, D, z, delta_bias, h0, softplus, out, last)
    flags.update(BLOCK_D=tiles.block_d, BLOCK_N=tiles.block_n, num_warps=tiles.warps)
    if tiles.layout == "nloop":
        _fwd_nloop_kernel[grid](*args, l, d, n, grp, *strides, LP=lp, **flags)
        return out, last, None
    if tiles.layout == "walk":
        scan_walk.forward(args, strides, grp, flags, tiles)
        return out, last, None
    if tiles.layout == "seq":
        seg = math.ceil(math.ceil(l / tiles.chunk) / tiles.unroll) * tiles.unroll  # steps per segment
        ws = torch.empty(b * grid[1], tiles.chunk * seg + tiles.unroll, 4 * tiles.block_d + 2 * tiles.block_n,
                         device=u.device, dtype=torch.float32)
        hs = torch.empty(b, grid[1], 2, tiles.chunk, tiles.block_d, tiles.block_n, device=u.device,
                         dtype=torch.float32) if tiles.chunk > 1 else last
        _fwd_seq_kernel[grid](*args, ws, hs, l, seg, d, n, grp, *strides, SEGS=tiles.chunk, UNROLL=tiles.unroll,
                              TCH=min(256, lp), INTERPRET=_INTERPRET, **flags)
        return out, last, None
    nchunk = max(1, math.ceil(l / tiles.chunk))
    hsave = torch.empty(b, d, nchunk, n, device=u.device, dtype=torch.float32) if save else last
    _fwd_kernel[grid](*args, hsave, l, d, n, nchunk, grp, *strides, SAVE=save, CHUNK=tiles.chunk,
                      TLAST=tiles.layout == "dnt", **flags)
    return out, last, (hsave if save else None)


def reverse_mode() -> str:
    """How the backward runs its reverse scan: 'native' (tl.associative_scan(reverse=True), default) or
    'flip' (tl.flip around a forward scan), chosen by ENDOLIB_TRITON_REVERSE; both are checked by the tests."""
    mode = os.environ.get("ENDOLIB_TRITON_REVERSE", "native")
    if mode not in ("native", "flip"):
        raise ValueError(f"ENDOLIB_TRITON_REVERSE must be 'native' or 'flip', got {mode!r}")
    return mode


def _dsilu(z):
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, h0, softplus):
        save = any(ctx.needs_input_grad)
        out, last, hsave = _fwd(u, delta, A, B, C, D, z, delta_bias, softplus, h0, save)
        ctx.softplus = softplus
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, h0, hsave)
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, h0, hsave = ctx.saved_tensors
        b, d, l = u.shape
        n = A.shape[1]
        uf = u.float()
        raw = delta.float() + (delta_bias.float()[:, None] if delta_bias is not None else 0.0)
        dtp = F.softplus(raw) if ctx.softplus else raw
        dout = dout.float() if dout is not None else torch.zeros_like(uf)
        dz = None
        if z is not None:
            y_full, _, _ = _fwd(u, dtp.contiguous(), A, B, C, D, None, None, False, h0, False)
            zf = z.float()
            dz = (dout * y_full.float() * _dsilu(zf)).to(z.dtype)
            dout = dout * F.silu(zf)
        block_d, chunk, block_n, warps = _forward_tiles(b, d, n, l, u.device, save=True)[:4]  # hsave fits them
        ndblk = triton.cdiv(d, block_d)
        du = torch.empty(b, d, l, device=u.device, dtype=torch.float32)
        ddt = torch.empty_like(du)
        dA = torch.empty(b, d, n, device=u.device, dtype=torch.float32)
        dh0 = torch.empty_like(dA)
        dB = torch.empty(b, ndblk, n, l, device=u.device, dtype=torch.float32)
        dC = torch.empty_like(dB)
        _bwd_kernel[(b, ndblk)](
            uf.contiguous(), dtp.contiguous(), A.float().contiguous(), B, C, dout.contiguous(), hsave,
            dlast.float().contiguous() if dlast is not None else dA, du, ddt, dA, dB, dC, dh0,
            l, d, n, hsave.shape[2], HAS_DHLAST=dlast is not None, BLOCK_D=block_d, CHUNK=chunk,
            BLOCK_N=block_n, num_warps=warps, FLIP=reverse_mode() == "flip")
        dD = (dout * uf).sum((0, 2)) if D is not None else None
        if D is not None:
            du = du + dout * D.float()[:, None]
        if ctx.softplus:
            ddt = ddt * torch.sigmoid(raw)
        dbias = ddt.sum((0, 2)) if delta_bias is not None else None
        grads = (du.to(u.dtype), ddt.to(delta.dtype), dA.sum(0).to(A.dtype), dB.sum(1).to(B.dtype),
                 dC.sum(1).to(C.dtype), dD.to(D.dtype) if D is not None else None, dz,
                 dbias.to(delta_bias.dtype) if delta_bias is not None else None,
                 dh0.to(h0.dtype) if h0 is not None else None, None)
        return grads


def _scan_infer(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                D: Optional[torch.Tensor], z: Optional[torch.Tensor], delta_bias: Optional[torch.Tensor],
                h0: Optional[torch.Tensor], softplus: bool, token_major: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Forward only (inference): (y, last_state). Registered as a custom op so torch.compile keeps it whole."""
    out, last, _ = _fwd(u, delta, A, B, C, D, z, delta_bias, softplus, h0, False, token_major)
    return out, last


_infer_op = _scan_infer
if _HAVE_TRITON:
    try:  # one opaque node for torch.compile (no graph break); plain function if this torch lacks custom_op
        _infer_op = torch.library.custom_op("endolib::triton_selective_scan", mutates_args=())(_scan_infer)

        @_infer_op.register_fake
        def _(u, delta, A, B, C, D, z, delta_bias, h0, softplus, token_major=False):
            last = u.new_empty(u.shape[0], u.shape[1], A.shape[-1], dtype=torch.float32)
            return _empty_out(u, token_major), last
    except Exception as e:  # pragma: no cover - older torch
        log.debug("custom op registration failed (%s); torch.compile will graph-break at the scan", e)


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          initial_state=None, return_last_state=False):
    """Triton selective scan. u, delta, z: (b, d, l); A: (d, n); B, C: (b, n, l); D, delta_bias: (d,);
    initial_state: (b, d, n). Returns y (b, d, l) in u's dtype [, last_state (b, d, n) float32]."""
    _check(u, delta, A, B, C, initial_state)
    args = (u, delta, A, B, C, D, z, delta_bias, initial_state)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args):
        cont = [t.contiguous() if t is not None else None for t in args]
        out, last = _TritonScan.apply(*cont, bool(delta_softplus))
    else:  # inference reads u, delta, z, B, C through their strides: no copies of transposed views
        out, last = _infer_op(*args, bool(delta_softplus))
    return (out, last) if return_last_state else out


def selective_scan_grouped(u, delta, A, B, C, D, z=None, delta_bias=None, delta_softplus=False,
                           initial_state=None, return_last_state=False, token_major=False):
    """Inference scan over groups of batch elements with their own parameters, in ONE launch (Triton).

    u, delta, z: (b, d, l) with any strides; B, C: (b, n, l); A: (g, d, n); D, delta_bias: (g, d); b = g * m
    and batch element i uses group i // m (e.g. a bidirectional layer's two directions stacked on the batch
    axis; g = 1 for a plain layer); initial_state: (b, d, n). Returns y (b, d, l) in u's dtype, the same as
    `selective_scan` run on each group's slice [, last_state (b, d, n) float32]. token_major=True returns y
    as a view of a contiguous (b, l, d) tensor (same values)."""
    g, d, n = A.shape
    b, l = u.shape[0], u.shape[2]
    if b % g or u.shape[1] != d or D.shape != (g, d) or B.shape != (b, n, l) or C.shape != (b, n, l) \
            or (delta_bias is not None and delta_bias.shape != (g, d)) \
            or (initial_state is not None and initial_state.shape != (b, d, n)):
        raise ValueError(f"selective_scan_grouped expects u (b, d, l) with b a multiple of the groups, A (g, d, n), "
                         f"D / delta_bias (g, d), B, C (b, n, l), initial_state (b, d, n); got u {tuple(u.shape)}, "
                         f"A {tuple(A.shape)}, D {tuple(D.shape)}, B {tuple(B.shape)}, C {tuple(C.shape)}, "
                         f"initial_state {None if initial_state is None else tuple(initial_state.shape)}.")
    if not available(u.device):
        raise ValueError(f"selective_scan_grouped needs the triton scan (CUDA, or TRITON_INTERPRET=1 on CPU); "
                         f"got device {u.device}, triton installed: {_HAVE_TRITON}.")
    y, last = _infer_op(u, delta, A, B, C, D, z, delta_bias, initial_state, bool(delta_softplus), bool(token_major))
    return (y, last) if return_last_state else y


def _register():
    try:
        from endolib.ops.backends import register_backend
    except Exception as e:  # the registry is optional for this module
        log.debug("endolib.ops.backends not importable (%s); triton scan not registered", e)
        return
    register_backend("triton", selective_scan_triton, available)


_register()
