"""Streaming selective-scan forward as one CUDA C kernel compiled at run time by NVRTC (tile layout 'walk').

Same semantics and arguments as the Triton inference scan (`scan_triton._fwd`, which dispatches here for
tiles 'BLOCK_D,SEGMENTS,WARPS,walk'), for short sequences such as one streamed frame's 197 tokens, where
a scan is a chain of dependent steps, not bandwidth. The Triton 'seq' kernel measured ~210 cycles a step,
issue- and latency-bound with one warp per scheduler (endolib/profiling/NOTES.md, "Inside one scan
call"); plain Triton cannot place the workspace in shared memory or keep the y reduction out of the walk.
Here one block owns BLOCK_D channels of one batch element:
  1. all threads stage the per-step inputs in shared memory: (delta, delta u), (silu(z), D u silu(z)), B, C;
  2. the sequence is cut into SEGMENTS walked in parallel, one group of threads per segment, each thread
     holding NPT = BLOCK_N * BLOCK_D * SEGMENTS / (32 WARPS) states of one channel in registers: a walk
     from a zero state gives each segment's end state and decay; the threads holding h0 chain them into the
     state entering each segment; a second walk from that state writes per-thread partial sums C_t . h_t to
     shared memory (no shuffles, no global stores in the walk);
  3. all threads reduce the partials, gate them and store y.
NVRTC ships with PyTorch's CUDA wheels (`torch.cuda._compile_kernel`): no extension build, no nvcc. The
CUDA tests compare it with the float64 reference (tests/test_scan_triton.py); so do the CPU tests, which
compile the same source with the host's C++ compiler and run every block's threads (tests/walk_host.py).
"""
import functools
import logging
import math

import torch

log = logging.getLogger(__name__)
FULL_UNROLL = 16  # segments of up to this many steps are walked fully unrolled (H200: 16-segment tiles at
                  # L = 197 gained 0.1-0.6 us a call, 25-step segments lost 0.1-0.3 us; NOTES.md, stop 14)

_SOURCE = r"""
#define DB __DB__
#define NS __NS__
#define NPT __NPT__
#define SEGS __SEGS__
#define G (NS / NPT)
#define NT (SEGS * DB * G)
#define IN_BITS __BITS__  // 32: float32 inputs and output, 16: bfloat16
#define PB __PB__  // staging: loads per thread and array in flight before their math
#define SEG __SEG__  // steps a segment: ceil(L / SEGS)
#define CIT __CIT__  // staged steps a thread of the per-channel arrays: ceil(rows / (NT / DB))
#define SIT __SIT__  // and of B and C: ceil(rows / (NT / NS))
#define CPB (CIT < PB ? CIT : PB)
#define SPB (SIT < PB ? SIT : PB)

#if IN_BITS == 32
typedef float io_t;
__device__ __forceinline__ float ld(const io_t* p) { return *p; }
__device__ __forceinline__ void st(io_t* p, float v) { *p = v; }
#else
typedef unsigned short io_t;
__device__ __forceinline__ float ld(const io_t* p) { return __uint_as_float(((unsigned int)*p) << 16); }
__device__ __forceinline__ void st(io_t* p, float v) {
#ifdef __CUDACC_RTC__
  unsigned short h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(v));
  *p = h;
#else  // compiled on a host by the tests (tests/walk_host.py): round to nearest even
  *p = bf16_bits(v);
#endif
}
#endif

__device__ __forceinline__ float ex2(float x) {
#ifdef __CUDACC_RTC__
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return exp2f(x);
#endif
}

// 16-byte shared-memory accesses: the host build of the tests (tests/walk_host.py) counts misaligned ones,
// which fault on a GPU
__device__ __forceinline__ float4 ld4(const float* p) {
#ifndef __CUDACC_RTC__
  if (!aligned16(p)) { float4 q; std::memcpy(&q, p, 16); return q; }
#endif
  return *(const float4*)p;
}
__device__ __forceinline__ void st4(float* p, float4 q) {
#ifndef __CUDACC_RTC__
  if (!aligned16(p)) { std::memcpy(p, &q, 16); return; }
#endif
  *(float4*)p = q;
}

__device__ __forceinline__ void row(const float* p, float* v) {  // NPT consecutive floats, 16-byte loads
#pragma unroll
  for (int k = 0; k < NPT; k += 4) {
    const float4 q = ld4(p + k);
    v[k] = q.x; v[k + 1] = q.y; v[k + 2] = q.z; v[k + 3] = q.w;
  }
}
__device__ __forceinline__ void put_row(float* p, const float* v) {  // the store of `row`
#pragma unroll
  for (int k = 0; k < NPT; k += 4) st4(p + k, make_float4(v[k], v[k + 1], v[k + 2], v[k + 3]));
}

extern "C" __global__ void __launch_bounds__(NT) walk_scan(
    const io_t* U, const io_t* DT, const float* A, const io_t* Bm, const io_t* Cm, const float* Dv,
    const io_t* Z, const float* BIAS, const float* H0, io_t* OUT, float* HLAST,
    int L, int DIM, int NSTATE, int GRP, int flags,
    int su_b, int su_d, int su_l, int sdt_b, int sdt_d, int sdt_l, int sz_b, int sz_d, int sz_l,
    int sb_b, int sb_n, int sb_l, int sc_b, int sc_n, int sc_l, int so_b, int so_d, int so_l) {
  const bool has_d = flags & 1, has_z = flags & 2, has_bias = flags & 4, softplus = flags & 8, has_h0 = flags & 16;
  extern __shared__ float4 smem4[];
  const int rows = SEGS * SEG + 1;                     // >= L + 1: steps past L pass the state through, and
                                                       // the walks read one step ahead
  float2* s_dd = (float2*)smem4;                       // [rows][DB] (delta, delta u)
  float2* s_gg = s_dd + rows * DB;                     // [rows][DB] (gate, gated skip)
  float* s_b = (float*)(s_gg + rows * DB);             // [rows][NS]
  float* s_c = s_b + rows * NS;                        // [rows][NS]
  float* s_y = s_c + rows * NS;                        // [rows][DB][G] partial C . h
  float* s_h = s_y + (rows * DB * G + 3) / 4 * 4;      // [SEGS][DB][NS] end states of the zero walks, then the
                                                       // states entering the segments; every array read in 16
                                                       // bytes starts at a multiple of 4 floats
  float* s_a = s_h + SEGS * DB * NS;                   // [SEGS][DB][NS] segment decays
  const int d0 = blockIdx.x * DB, bi = blockIdx.y, grp = bi / GRP;

  const int sg = threadIdx.x % G, c = (threadIdx.x / G) % DB, seg = threadIdx.x / (G * DB);
  const int d = d0 + c, n0 = sg * NPT, t0 = seg * SEG;
  float a2[NPT], h[NPT], bv[NPT], cv[NPT], bn[NPT], cn[NPT];  // loaded first: their round trip overlaps 1.
#pragma unroll
  for (int k = 0; k < NPT; ++k) {
    const bool ok = d < DIM && n0 + k < NSTATE;
    a2[k] = ok ? A[(grp * DIM + d) * NSTATE + n0 + k] * 1.4426950408889634f : 0.f;  // exp -> exp2
    h[k] = (ok && has_h0) ? H0[(bi * DIM + d) * NSTATE + n0 + k] : 0.f;
  }

  // 1. staging: a thread stages the steps t = t_first + j NT / DB of one channel (j < CIT) and t = t_first +
  // j NT / NS of one state index of B and C (j < SIT), NT being a multiple of DB and NS; every load of a chunk
  // is issued before any math (one round trip to L2), from per-thread pointers advanced by a constant step
  // (indexing them anew cost ~10 address instructions a load)
  const int cs = d0 + threadIdx.x % DB, tc = threadIdx.x / DB, ns = threadIdx.x % NS, tn = threadIdx.x / NS;
  const float bias = (has_bias && cs < DIM) ? BIAS[grp * DIM + cs] : 0.f;
  const float dskip = (has_d && cs < DIM) ? Dv[grp * DIM + cs] : 0.f;
  {
    const io_t* pu = U + (bi * su_b + cs * su_d + tc * su_l);
    const io_t* px = DT + (bi * sdt_b + cs * sdt_d + tc * sdt_l);
    const io_t* pz = Z + (bi * sz_b + cs * sz_d + tc * sz_l);
    const int ku = (NT / DB) * su_l, kx = (NT / DB) * sdt_l, kz = (NT / DB) * sz_l;
    for (int j0 = 0; j0 < CIT; j0 += CPB) {
      float uu[CPB], xx[CPB], zz[CPB];
#pragma unroll
      for (int j = 0; j < CPB; ++j) {
        const bool ok = tc + (j0 + j) * (NT / DB) < L && cs < DIM;
        uu[j] = ok ? ld(pu) : 0.f;
        xx[j] = ok ? ld(px) : 0.f;
        zz[j] = (ok && has_z) ? ld(pz) : 0.f;
        pu += ku; px += kx; pz += kz;
      }
#pragma unroll
      for (int j = 0; j < CPB; ++j) {
        const int t = tc + (j0 + j) * (NT / DB), i = threadIdx.x + (j0 + j) * NT;
        if (t < rows) {
          const float x = xx[j] + bias;
          // softplus and silu with the fast exp / log / divide (as Triton's tl.exp / tl.log do): this math runs
          // once per (step, channel) on the critical path; mamba-ssm's softplus threshold
          const float delta = (t >= L || cs >= DIM) ? 0.f : (softplus && x <= 20.f) ? __logf(1.f + __expf(x)) : x;
          const float gate = has_z ? __fdividef(zz[j], 1.f + __expf(-zz[j])) : 1.f;
          s_dd[i] = make_float2(delta, delta * uu[j]);
          s_gg[i] = make_float2(gate, dskip * uu[j] * gate);
        }
      }
    }
  }
  {
    const io_t* pb = Bm + (bi * sb_b + ns * sb_n + tn * sb_l);
    const io_t* pc = Cm + (bi * sc_b + ns * sc_n + tn * sc_l);
    const int kb = (NT / NS) * sb_l, kc = (NT / NS) * sc_l;
    for (int j0 = 0; j0 < SIT; j0 += SPB) {
      float bb[SPB], cc[SPB];
#pragma unroll
      for (int j = 0; j < SPB; ++j) {
        const bool ok = tn + (j0 + j) * (NT / NS) < L && ns < NSTATE;
        bb[j] = ok ? ld(pb) : 0.f;
        cc[j] = ok ? ld(pc) : 0.f;
        pb += kb; pc += kc;
      }
#pragma unroll
      for (int j = 0; j < SPB; ++j) {
        const int i = threadIdx.x + (j0 + j) * NT;
        if (tn + (j0 + j) * (NT / NS) < rows) { s_b[i] = bb[j]; s_c[i] = cc[j]; }
      }
    }
  }

  __syncthreads();

  // The walks load step t + 1 before computing step t: shared-memory loads then overlap the math (the compiler
  // keeps them after the previous step's store otherwise, as it cannot tell the arrays apart).
  if (seg < SEGS - 1) {  // 2a. each segment but the last from a zero state: its end state and decay
    float hz[NPT], total = 0.f;
#pragma unroll
    for (int k = 0; k < NPT; ++k) hz[k] = 0.f;
    float2 dd = s_dd[t0 * DB + c];
    row(s_b + t0 * NS + n0, bv);
#pragma unroll __WU__
    for (int s = 0; s < SEG; ++s) {
      const int t = t0 + s;
      const float2 dn = s_dd[(t + 1) * DB + c];
      row(s_b + (t + 1) * NS + n0, bn);
#pragma unroll
      for (int k = 0; k < NPT; ++k) { hz[k] = ex2(dd.x * a2[k]) * hz[k] + dd.y * bv[k]; bv[k] = bn[k]; }
      total += dd.x;
      dd = dn;
    }
    float decay[NPT];
#pragma unroll
    for (int k = 0; k < NPT; ++k) decay[k] = ex2(total * a2[k]);
    put_row(s_h + (seg * DB + c) * NS + n0, hz);
    put_row(s_a + (seg * DB + c) * NS + n0, decay);
  }
  if (SEGS > 1) {  // 2b. the state entering each segment: h0 through the segments before it
    __syncthreads();
    if (seg == 0) {  // the threads holding h0 chain the segments, writing over s_h the state entering seg q + 1
      float hp[NPT];
#pragma unroll
      for (int k = 0; k < NPT; ++k) hp[k] = h[k];
#pragma unroll
      for (int q0 = 0; q0 < SEGS - 1; q0 += 4) {  // loads of 4 segments in flight, then their 4 dependent steps
        float av[4][NPT], hv[4][NPT];
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (q0 + j < SEGS - 1) {
            row(s_a + ((q0 + j) * DB + c) * NS + n0, av[j]);
            row(s_h + ((q0 + j) * DB + c) * NS + n0, hv[j]);
          }
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (q0 + j < SEGS - 1) {
#pragma unroll
            for (int k = 0; k < NPT; ++k) hp[k] = av[j][k] * hp[k] + hv[j][k];
            put_row(s_h + ((q0 + j) * DB + c) * NS + n0, hp);
          }
      }
    }
    __syncthreads();
    if (seg > 0) row(s_h + ((seg - 1) * DB + c) * NS + n0, h);
  }
  {  // 2c. the walk from the entering state, partial outputs to shared memory
    float2 dd = s_dd[t0 * DB + c];
    row(s_b + t0 * NS + n0, bv);
    row(s_c + t0 * NS + n0, cv);
#pragma unroll __WU__
    for (int s = 0; s < SEG; ++s) {
      const int t = t0 + s;
      const float2 dn = s_dd[(t + 1) * DB + c];
      row(s_b + (t + 1) * NS + n0, bn);
      row(s_c + (t + 1) * NS + n0, cn);
      float p = 0.f;
#pragma unroll
      for (int k = 0; k < NPT; ++k) {
        h[k] = ex2(dd.x * a2[k]) * h[k] + dd.y * bv[k];
        p += cv[k] * h[k];
        bv[k] = bn[k];
        cv[k] = cn[k];
      }
      s_y[(t * DB + c) * G + sg] = p;
      dd = dn;
    }
  }
  if (seg == SEGS - 1 && d < DIM) {
#pragma unroll
    for (int k = 0; k < NPT; ++k) if (n0 + k < NSTATE) HLAST[(bi * DIM + d) * NSTATE + n0 + k] = h[k];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < L * DB; i += NT) {  // 3. y = (C . h) silu(z) + D u silu(z)
    const int t = i / DB, dd = d0 + i % DB;
    if (dd < DIM) {
      float y = 0.f;
#if G % 4 == 0
#pragma unroll
      for (int g = 0; g < G; g += 4) {
        const float4 q = ld4(s_y + i * G + g);
        y += (q.x + q.y) + (q.z + q.w);
      }
#else
#pragma unroll
      for (int g = 0; g < G; ++g) y += s_y[i * G + g];
#endif
      const float2 gg = s_gg[i];
      st(OUT + bi * so_b + dd * so_d + t * so_l, y * gg.x + gg.y);
    }
  }
}
"""


def split(block_d: int, segs: int, warps: int, block_n: int) -> int:
    """States a thread holds (NPT) in a 'walk' tile: BLOCK_D channels x SEGS segments x BLOCK_N states over
    32 WARPS threads; ValueError unless that is a multiple of 4 (16-byte loads) dividing BLOCK_N."""
    threads = 32 * warps
    cells = block_d * segs * block_n
    npt = cells // threads if cells % threads == 0 else 0
    if npt < 4 or npt % 4 or block_n % npt or threads > 1024 or threads % block_n:  # (threads = BLOCK_D SEGS G)
        raise ValueError(f"'walk' tiles need BLOCK_D x SEGMENTS x BLOCK_N / (32 WARPS) states a thread to be a "
                         f"multiple of 4 dividing BLOCK_N, with <= 1024 threads, a multiple of BLOCK_N; got "
                         f"BLOCK_D={block_d}, SEGMENTS={segs}, WARPS={warps}, BLOCK_N={block_n}")
    return npt


def _threads(block_d: int, segs: int, npt: int, block_n: int) -> int:
    """Threads of a block (NT): BLOCK_D channels x SEGS segments x BLOCK_N / NPT state groups."""
    return block_d * segs * block_n // npt


def _rows(l: int, segs: int) -> int:
    """Steps a block stages: whole segments and one step more, as the walks read a step ahead."""
    return segs * math.ceil(l / segs) + 1


def step_counts(l: int, block_d: int, segs: int, npt: int, block_n: int) -> tuple:
    """Step counts compiled into the kernel for a sequence of l steps: a segment's steps, and the steps each
    thread stages of the per-channel arrays (its threads cover NT / BLOCK_D steps at a time) and of B and C
    (NT / BLOCK_N at a time)."""
    threads, rows = _threads(block_d, segs, npt, block_n), _rows(l, segs)
    return math.ceil(l / segs), math.ceil(rows / (threads // block_d)), math.ceil(rows / (threads // block_n))


def shared_bytes(l: int, block_d: int, segs: int, npt: int, block_n: int) -> int:
    """Dynamic shared memory of one block: the staged steps, the partial outputs, the segment states."""
    rows = _rows(l, segs)
    partials = -(-rows * block_d * (block_n // npt) // 4) * 4  # padded to 16 bytes
    return 4 * (rows * (4 * block_d + 2 * block_n) + partials + 2 * segs * block_d * block_n)


def takes(*inputs) -> bool:
    """Whether the kernel reads these inputs (None for absent ones): one dtype, float32 or bfloat16."""
    dtypes = {t.dtype for t in inputs if t is not None}
    return len(dtypes) == 1 and dtypes <= {torch.float32, torch.bfloat16}


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether this torch can compile CUDA C at run time: `torch.cuda._compile_kernel` with its shared-memory
    setting (torch >= 2.9) and an NVRTC library (shipped with the CUDA wheels of torch). Without them 'walk'
    tiles fall back to Triton ones."""
    if not (torch.cuda.is_available() and hasattr(torch.cuda, "_compile_kernel")):
        return False
    try:  # one empty kernel: the definitive test (~0.1 s, once)
        probe = torch.cuda._compile_kernel('extern "C" __global__ void probe() {}', "probe")
        why = None if hasattr(probe, "set_shared_memory_config") else "no shared-memory setting in this torch"
    except Exception as e:  # no NVRTC library on this machine, or no driver support for its PTX
        why = str(e)
    if why:
        log.warning("NVRTC cannot serve the 'walk' scan here (%s): its tiles fall back to Triton tiles", why)
    return why is None


def fits(l: int, tiles, device) -> bool:
    """Whether a 'walk' tile applies to a sequence of l steps on this CUDA device: NVRTC is there, the tile
    splits into whole 16-byte state groups and its shared memory fits one block."""
    if not available():
        return False
    try:
        npt = split(tiles.block_d, tiles.chunk, tiles.warps, tiles.block_n)
    except ValueError:
        return False
    limit = getattr(torch.cuda.get_device_properties(device), "shared_memory_per_block_optin", 48 * 1024)
    return shared_bytes(l, tiles.block_d, tiles.chunk, npt, tiles.block_n) <= limit


def source(block_d: int, segs: int, npt: int, block_n: int, dtype: torch.dtype, counts: tuple) -> str:
    """The kernel's CUDA C source for one tile, input dtype (float32 or bfloat16) and `step_counts`."""
    bits = {torch.float32: 32, torch.bfloat16: 16}[dtype]
    threads, (seg, cit, sit) = _threads(block_d, segs, npt, block_n), counts
    subs = {"__PB__": max(1, min(16, 4096 // threads)), "__DB__": block_d, "__NS__": block_n, "__NPT__": npt,
            "__SEGS__": segs, "__BITS__": bits, "__SEG__": seg, "__CIT__": cit, "__SIT__": sit,
            "__WU__": seg if seg <= FULL_UNROLL else 4}
    text = _SOURCE
    for k, v in subs.items():
        text = text.replace(k, str(v))
    return text


@functools.lru_cache(maxsize=None)
def _kernel(block_d: int, segs: int, npt: int, block_n: int, dtype: torch.dtype, counts: tuple, device_index: int):
    from torch.cuda import _compile_kernel  # NVRTC (private in torch 2.8-2.13)
    with torch.cuda.device(device_index):
        return _compile_kernel(source(block_d, segs, npt, block_n, dtype, counts), "walk_scan")


def forward(args: tuple, strides: tuple, grp: int, flags: dict, tiles) -> None:
    """Run the kernel on the arguments `scan_triton._fwd` prepares: (u, delta, A, B, C, D, z, delta_bias, h0,
    out, last) with A, D, delta_bias, h0 float32 contiguous and dummies where absent (flags HAS_D, ...), the
    strides of u, delta, z, B, C, out; writes out (b, d, l) and last (b, d, n) in place."""
    u, delta, A, B, C, D, z, bias, h0, out, last = args  # dtypes: `takes` routed them here
    (b, d, l), n = u.shape, A.shape[-1]
    if max(sum((s - 1) * st for s, st in zip(t.shape, t.stride())) for t in (u, delta, B, C, out)) >= 2 ** 31:
        raise ValueError("the 'walk' scan indexes with 32-bit integers: split the batch below 2^31 elements")
    npt = split(tiles.block_d, tiles.chunk, tiles.warps, tiles.block_n)
    counts = step_counts(l, tiles.block_d, tiles.chunk, npt, tiles.block_n)  # one compile per segment length
    kern = _kernel(tiles.block_d, tiles.chunk, npt, tiles.block_n, u.dtype, counts, u.device.index or 0)
    smem = shared_bytes(l, tiles.block_d, tiles.chunk, npt, tiles.block_n)
    if smem > getattr(kern, "_max_shared_mem_bytes", 0):  # above 48 KB a kernel must ask for its shared memory
        kern.set_shared_memory_config(smem)
    bits = sum(int(flags[k]) << i for i, k in enumerate(("HAS_D", "HAS_Z", "HAS_BIAS", "SOFTPLUS", "HAS_H0")))
    kern(grid=(math.ceil(d / tiles.block_d), b, 1), block=(32 * tiles.warps, 1, 1), shared_mem=smem,
         args=[u, delta, A, B, C, D, z, bias, h0, out, last, l, d, n, grp, bits,
               *strides])
