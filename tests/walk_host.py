"""Run the NVRTC 'walk' scan kernel (endolib/ops/scan_walk.py) on a CPU, for tests on machines without a GPU.

The kernel's CUDA C source is compiled by the host's C++ compiler with a small shim for the CUDA built-ins it
uses (thread and block indices, vector types, fast math, shared memory, __syncthreads); each block's threads
run as OS threads meeting at a std::barrier, blocks one after another. The GPU's own instructions (ex2.approx,
cvt.rn.bf16) have host stand-ins in the kernel source; everything else, the indexing, staging, segments,
state passing, reductions and masks, is the code the GPU runs.
"""
import ctypes
import functools
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

_SHIM = r"""
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__
struct dim3_ { int x, y, z; };
struct float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
static inline float2 make_float2(float x, float y) { return {x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
static inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
#define __expf(x) std::exp(x)
#define __logf(x) std::log(x)
#define __fdividef(a, b) ((a) / (b))
static inline unsigned short bf16_bits(float v) {  // round to nearest even, as cvt.rn.bf16.f32
  unsigned int u; std::memcpy(&u, &v, 4);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static std::atomic<int> misaligned{0};  // 16-byte accesses off a 16-byte boundary: a GPU faults on them
static inline bool aligned16(const void* p) {
  if ((std::uintptr_t)p % 16 == 0) return true;
  ++misaligned;
  return false;
}
thread_local dim3_ threadIdx, blockIdx;
static std::barrier<>* block_barrier;
static inline void __syncthreads() { block_barrier->arrive_and_wait(); }
float4 smem4[1 << 16];  // one block's dynamic shared memory (1 MiB): blocks run one at a time
"""

_LAUNCH = r"""
extern "C" int launch(int gx, int gy, int threads, void** p, const int* v) {  // -> misaligned accesses
  misaligned = 0;
  for (int by = 0; by < gy; ++by)
    for (int bx = 0; bx < gx; ++bx) {
      std::memset(smem4, 0xff, sizeof smem4);  // NaN: a read of a shared word no thread wrote shows in the output
      std::barrier<> bar(threads);
      block_barrier = &bar;
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([=] {
          threadIdx = {t, 0, 0};
          blockIdx = {bx, by, 0};
          walk_scan((const io_t*)p[0], (const io_t*)p[1], (const float*)p[2], (const io_t*)p[3],
                    (const io_t*)p[4], (const float*)p[5], (const io_t*)p[6], (const float*)p[7],
                    (const float*)p[8], (io_t*)p[9], (float*)p[10], v[0], v[1], v[2], v[3], v[4], v[5],
                    v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16], v[17], v[18],
                    v[19], v[20], v[21], v[22]);
        });
      for (auto& th : pool) th.join();
    }
  return misaligned;
}
"""
_POINTERS, _INTS = 11, 23  # the kernel's pointer and int parameters, in order


def compiler() -> str:
    """The host C++ compiler, or '' if there is none."""
    return shutil.which("g++") or shutil.which("clang++") or ""


class HostKernel:
    """The kernel of one `scan_walk.source(...)`, compiled for the CPU, with the launch interface of torch's
    NVRTC kernels: kern(grid=(gx, gy, 1), block=(threads, 1, 1), shared_mem=bytes, args=[tensors, ints])."""

    _max_shared_mem_bytes = 1 << 20

    def __init__(self, source: str):
        self.lib = _build(source)

    def set_shared_memory_config(self, nbytes: int) -> None:
        if nbytes > self._max_shared_mem_bytes:
            raise ValueError(f"the host shim holds {self._max_shared_mem_bytes} bytes of shared memory, asked {nbytes}")

    def __call__(self, grid, block, shared_mem, args):
        self.set_shared_memory_config(shared_mem)
        ptrs, ints = args[:_POINTERS], args[_POINTERS:]
        if len(ints) != _INTS or not all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in ptrs):
            raise ValueError(f"walk_scan takes {_POINTERS} CPU tensors and {_INTS} ints, got {len(ptrs)} / {len(ints)}")
        p = (ctypes.c_void_p * _POINTERS)(*[t.data_ptr() for t in ptrs])
        v = (ctypes.c_int * _INTS)(*ints)
        bad = self.lib.launch(grid[0], grid[1], block[0], p, v)
        if bad:
            raise AssertionError(f"the walk kernel made {bad} 16-byte shared-memory accesses off a 16-byte boundary "
                                 f"(a GPU faults on them)")


def host_kernel(block_d: int, segs: int, npt: int, block_n: int, dtype, counts: tuple, device_index: int):
    """Stands in for `scan_walk._kernel` (monkeypatched): the kernel of `scan_walk.source(...)`, as it reads at
    call time, built for this CPU."""
    from endolib.ops import scan_walk
    return HostKernel(scan_walk.source(block_d, segs, npt, block_n, dtype, counts))


@functools.lru_cache(maxsize=None)
def _build(source: str) -> ctypes.CDLL:
    text = _SHIM + source + _LAUNCH
    out = Path(tempfile.gettempdir()) / f"walk_host_{hashlib.sha1(text.encode()).hexdigest()[:16]}.so"
    if not out.exists():
        src = out.with_suffix(".cpp")
        src.write_text(text)
        cmd = [compiler(), "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-Wno-unknown-pragmas",
               str(src), "-o", str(out) + ".tmp"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"compiling the walk kernel for the host failed:\n{proc.stderr[-3000:]}")
        Path(str(out) + ".tmp").replace(out)  # atomic: parallel test runs never load a half-written library
    return ctypes.CDLL(str(out))
