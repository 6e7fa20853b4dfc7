"""GPU pretraining throughput: clips/s of one MVM (+ teacher alignment) training step, per scan backend.

    python -m endolib.pretrain.gpu_bench --out DIR [--batch 8] [--steps 5] [--warmup 3]

endomamba_small student at 16 x 224^2, small decoder, tube masking 0.75, AdamW step, bf16 autocast; for each
scan backend available on the device ('torch', and 'cuda' when endolib.ops reports it), with and without a
frozen VideoMamba-S teacher forward (the reference recipe's alignment term). Writes DIR/pretrain_gpu.csv
(device, torch version, backend, dtype, batch, clips/s, ms/step, peak memory). Needs only torch, numpy,
pandas, einops, yaml; no video I/O. Budget: a few minutes on one H100.
"""
import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import torch

from endolib.models import create_model
from endolib.models.videomamba import create_videomamba
from endolib.ops import available_backends
from endolib.pretrain.masking import tube_mask
from endolib.pretrain.model import PretrainModel
from endolib.pretrain.teachers import VideoMambaTeacher

log = logging.getLogger("endolib.pretrain.gpu_bench")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_one(backend: str, teacher: bool, batch: int, frames: int, img: int, steps: int, warmup: int,
              device, budget_s: float = 60.0) -> dict:
    """One configuration: returns a row with clips/s, ms/step and peak memory (or the error)."""
    torch.manual_seed(0)
    enc = create_model("endomamba_small", img_size=img, scan_backend=backend)
    t_model = VideoMambaTeacher(create_videomamba("videomamba_small", img_size=img, num_frames=frames,
                                                  scan_backend=backend)).to(device) if teacher else None
    model = PretrainModel(enc, "small", teacher_dim=384 if teacher else None).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x = torch.randn(batch, 3, frames, img, img, device=device)
    mask = tube_mask(batch, frames, enc.num_patches, 0.75, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            t_tok = t_model(x) if t_model is not None else None
            loss = model(x, mask, t_tok)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.time()
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        s = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - s)
        if time.time() - t0 > budget_s:
            break
    ms = 1000 * sum(times) / len(times)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return dict(ms_per_step=ms, clips_per_s=batch / (ms / 1000), timed_steps=len(times), peak_mem_mb=peak)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for pretrain_gpu.csv")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--img", type=int, default=224)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget", type=float, default=45.0, help="seconds per configuration (timing stops early)")
    ap.add_argument("--total-budget", type=float, default=200.0, help="seconds; later configurations are skipped")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows, t_start = [], time.time()
    for backend in [b for b in ("cuda", "torch") if b in available_backends(device)]:
        for teacher in (False, True):
            row = dict(device=name, torch=torch.__version__, backend=backend, dtype="bfloat16",
                       model="endomamba_small", teacher="videomamba_small" if teacher else "none",
                       frames=args.frames, img_size=args.img, batch=args.batch, mask_ratio=0.75)
            if time.time() - t_start > args.total_budget:
                rows.append({**row, "error": "skipped: total time budget spent"})
                continue
            try:
                row.update(bench_one(backend, teacher, args.batch, args.frames, args.img, args.steps, args.warmup,
                                     device, args.budget))
            except torch.cuda.OutOfMemoryError as e:
                row.update(error=f"out of memory: {str(e).splitlines()[0]}")
            log.info("%s", row)
            rows.append(row)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "pretrain_gpu.csv", index=False)
    log.info("wrote %s", out / "pretrain_gpu.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
