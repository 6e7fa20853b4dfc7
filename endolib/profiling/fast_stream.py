"""Fast streaming inference for EndoMamba: low precision, static buffers, one CUDA graph per frame step.

`FastStream(model)` wraps a trained backbone for live video at a fixed batch and frames-per-step k:
- a copy of the model in `dtype` (bf16 by default); the SSM state stays in float32, the conv state in dtype;
- static input / state / offset buffers, with the frame offset kept as a device tensor, so the whole step
  (embedding, spatial blocks, temporal blocks with their carried state, norm, pool, head) has no host
  dependency and can be captured once in a `torch.cuda.CUDAGraph` and replayed per frame (no launch
  overhead from Python);
- RMSNorm through `F.rms_norm` (fused; the same fp32 arithmetic);
- optionally `torch.compile` of the step body before capture (fuses the small elementwise kernels;
  `compile_mode` passes e.g. 'max-autotune-no-cudagraphs': the graph here is our own);
- optionally (`fuse_mixers=True`) fused token-major mixers (`fused_mixer.fuse_mixers`: row-major GEMMs, the
  conv as shifted multiply-adds, a spatial layer's two directions as one conv / bmm / grouped scan);
- optionally (`fold_dt=True`) dt_proj folded into x_proj (`fused_mixer.fold_dt_proj`: one GEMM per branch
  instead of two);
- the scan backend chosen as everywhere (`endolib.ops`): mamba-ssm / causal-conv1d when they import,
  else the Triton scan, else PyTorch; or forced with `backend=`.
It computes exactly what `model.step` computes (tests compare them on CPU, the GPU module on the GPU).
"""
import copy
import logging
import types
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange

from endolib.models.endomamba import StreamState
from endolib.profiling import fused_mixer

log = logging.getLogger(__name__)


def patch_tokens(model, frames):
    """frames: (B, 3, k, H, W) -> patch tokens (B, k, N, C): `model.patch_embed_tokens` as one GEMM over the
    unfolded patches (the stride-p Conv3d went to cuDNN's implicit-GEMM kernel: 127 µs of a 1.1 ms frame on
    an H200, kernel_names_gpu.csv; the GEMM takes a few µs)."""
    proj, p = model.patch_embed.proj, model.patch_size
    x = rearrange(frames, "b c t (h p) (w q) -> b t (h w) (c p q)", p=p, q=p)
    return F.linear(x, proj.weight.flatten(1), proj.bias)


def embed_at(model, frames, offset):
    """frames: (B, 3, k, H, W), offset: 0-d long tensor (frames already seen) -> tokens (B, k, N+1, C).

    Same as `model._embed(frames, int(offset))`, but the temporal index stays on the device (graph-safe)."""
    B, _, k = frames.shape[:3]
    tok = patch_tokens(model, frames) + model.pos_embed[:, None, 1:]
    cls = (model.cls_token + model.pos_embed[:, :1]).expand(B, k, 1, -1)
    tok = torch.cat([cls.to(tok.dtype), tok], dim=2)
    idx = offset + torch.arange(k, device=frames.device)
    return tok + model.temporal_table.index_select(0, idx).to(tok.dtype)[None, :, None]


def set_scan_backend(model, backend: Optional[str]):
    """Point every Mamba mixer of `model` at `backend` (None = auto)."""
    for m in model.modules():
        if hasattr(m, "scan_backend") and hasattr(m, "d_state"):
            m.scan_backend = backend
    return model


def _rms_norm_fused(self, x):
    # x: (..., C) -> same; fp32 arithmetic as RMSNorm.forward, one fused op instead of six
    return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(x.dtype)


def fuse_norms(model):
    """Swap every RMSNorm's forward for `F.rms_norm` (same fp32 arithmetic, fewer kernels)."""
    from endolib.models.mamba import RMSNorm
    for m in model.modules():
        if isinstance(m, RMSNorm):
            m.forward = types.MethodType(_rms_norm_fused, m)
    return model


def compile_options(compile, mode: Optional[str] = None) -> dict:
    """torch.compile keywords of a FastStream step: inductor without its shape padding, which times padded and
    unpadded copies of each 197-row GEMM while compiling and keeps the faster in isolation: a coin toss between
    steps of 210 and 259 kernels on an H200 (0.72 vs 0.79 ms; the pad and slice kernels cost more than they
    save). `mode` names inductor options ('max-autotune-no-cudagraphs'); another backend takes them as given."""
    if compile is not True:
        return {"backend": compile, **({"mode": mode} if mode else {})}
    from torch._inductor import list_mode_options
    return {"options": {**(list_mode_options(mode) if mode else {}), "shape_padding": False}}


class FastStream:
    """Per-frame streaming step with static buffers (and a CUDA graph on GPU).

    fs = FastStream(model, batch_size=1, frames_per_step=1, dtype=torch.bfloat16)
    fs.reset();  out = fs.step(frames)   # frames: (B, 3, k, H, W) -> (B, k, classes or C), a static buffer
    `out` is overwritten by the next step: clone it to keep it.
    """

    def __init__(self, model, batch_size: int = 1, frames_per_step: int = 1, dtype=torch.bfloat16,
                 device=None, use_graph: Optional[bool] = None, compile: bool = False,
                 backend: Optional[str] = None, warmup: int = 3, fuse_mixers: bool = False,
                 compile_mode: Optional[str] = None, fold_dt: bool = False):
        device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = set_scan_backend(copy.deepcopy(model).eval().to(device=device, dtype=dtype), backend)
        fuse_norms(self.model)
        if fuse_mixers:
            fused_mixer.fuse_mixers(self.model)
        if fold_dt:
            fused_mixer.fold_dt_proj(self.model)
        self.device, self.dtype, self.k, self.batch = device, dtype, frames_per_step, batch_size
        self.use_graph = (device.type == "cuda") if use_graph is None else use_graph
        if self.use_graph and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {device}; pass use_graph=False.")
        H = self.model.img_size
        g = torch.Generator(device="cpu").manual_seed(0)
        self.static_in = torch.randn(batch_size, 3, frames_per_step, H, H, generator=g).to(device, dtype)
        st = self.model.init_stream(batch_size, device=device, dtype=dtype)
        self.conv = [c.clone() for c in st.conv]
        self.ssm = [s.float() for s in st.ssm]
        self.offset = torch.zeros((), dtype=torch.long, device=device)
        self.frames_seen = 0
        if compile:  # True: inductor; a string names another torch.compile backend (tests use "aot_eager")
            self._body = torch.compile(self._step_body, dynamic=False, **compile_options(compile, compile_mode))
        else:
            self._body = self._step_body
        self.graph = None
        self.static_out = None
        if self.use_graph:
            self._capture(warmup)

    @torch.no_grad()
    def _step_body(self):
        """Reads static_in, conv, ssm, offset; writes the new state in place; returns the head output."""
        m = self.model
        tok = embed_at(m, self.static_in, self.offset)
        state = StreamState(list(self.conv), list(self.ssm), 0)
        tokens = m._blocks(tok, state)
        out = m.forward_head(m.pool(tokens))
        for j in range(len(self.conv)):
            self.conv[j].copy_(state.conv[j])
            self.ssm[j].copy_(state.ssm[j])
        self.offset.add_(self.k)
        return out

    def _capture(self, warmup: int):
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up: compilation, autotuning, library handles
            for _ in range(warmup):
                self._body()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.reset()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = self._body()
        self.reset()

    def reset(self):
        """Start a new video: zero the carried state and the frame counter."""
        for c in self.conv:
            c.zero_()
        for s in self.ssm:
            s.zero_()
        self.offset.zero_()
        self.frames_seen = 0

    def step(self, frames):
        """frames: (B, 3, k, H, W) -> per-frame outputs (B, k, classes or C) (a static buffer on GPU)."""
        if tuple(frames.shape) != tuple(self.static_in.shape):
            raise ValueError(f"FastStream was built for frames of shape {tuple(self.static_in.shape)} "
                             f"(batch, 3, k, H, W), got {tuple(frames.shape)}; build another FastStream.")
        if self.frames_seen + self.k > self.model.cfg.max_frames:
            raise ValueError(f"{self.frames_seen + self.k} frames exceed the temporal table "
                             f"({self.model.cfg.max_frames}); call reset() for a new video or raise max_frames.")
        self.static_in.copy_(frames)
        self.frames_seen += self.k
        if self.graph is not None:
            self.graph.replay()
            return self.static_out
        return self._body()
