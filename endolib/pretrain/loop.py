"""The pretraining loop: AdamW + warmup/cosine, AMP, clipping, CSV/TensorBoard metrics, atomic checkpoints,
exact resume, and DistributedDataParallel when launched by `torchrun`.

Exact resume: a checkpoint holds model, optimizer, scheduler, grad scaler, every RNG state and the step;
batches and masks are functions of (seed, step) (see `batches.py`), so a run killed after a checkpoint and
resumed produces bit-identical weights to one that never stopped.
"""
import csv
import logging
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from endolib.paths import REPO_ROOT
from endolib.pretrain.batches import NoiseClips, SeededItems, StepBatchSampler, collate_videos, step_generator
from endolib.pretrain.config import PretrainConfig
from endolib.pretrain.masking import make_mask
from endolib.pretrain.model import PretrainModel
from endolib.pretrain.teachers import build_backbone, build_teacher, save_encoder
from endolib.utils import atomic_save, get_rng_state, load_checkpoint_file, seed_everything, set_rng_state

log = logging.getLogger(__name__)
METRIC_KEYS = ("step", "lr", "loss", "loss_rec", "loss_align", "grad_norm")


def setup_distributed(device: str = "auto"):
    """(rank, world_size, device); initialises the process group when torchrun set WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)                   # before NCCL init: one GPU per process
        device = f"cuda:{local}"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return rank, world, torch.device(device)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at `step`: linear warmup, then half-cosine down to min_ratio."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list:
    """No weight decay on biases, norms, embeddings and tokens (every parameter with < 2 dims)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "pos_embed" in name or "token" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_dataset(cfg: PretrainConfig):
    """PretrainClips over the configured domain ('pretrain_corpus', 'generic', or {name: root} sources);
    domain 'noise' gives fixed random clips (tests, throughput) without any video file."""
    d = dict(cfg.data)
    if d.get("domain") == "noise":
        return NoiseClips(d.get("length", 64), d.get("num_frames", 16), d.get("img_size", 224), cfg.seed)
    from endolib.data.pretrain_clips import PretrainClips
    from endolib.data.synthetic import ensure
    sources = d.pop("sources", None)
    if sources is None:
        domain, root = d.pop("domain", "pretrain_corpus"), d.pop("root", None)
        folder = ensure(domain) if root is None else ensure(domain, Path(root))
        subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        sources = {p.name: p for p in subdirs} if subdirs else {domain: folder}   # one source per subfolder
    else:
        d.pop("domain", None), d.pop("root", None)
    return PretrainClips(sources, num_frames=d.get("num_frames", 16), sampling_rate=d.get("sampling_rate", 4),
                         img_size=d.get("img_size", 224))


def amp_dtype(cfg: PretrainConfig, device: torch.device):
    mode = cfg.amp if cfg.amp != "auto" else ("bf16" if device.type == "cuda" else "off")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[mode]


class MetricsLog:
    """metrics.csv (rows after the resume step are dropped on resume) and TensorBoard when installed."""

    def __init__(self, out_dir: Path, start_step: int, enabled: bool):
        self.path, self.enabled, self.tb = out_dir / "metrics.csv", enabled, None
        if not enabled:
            return
        rows = []
        if start_step > 0 and self.path.is_file():
            with open(self.path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, METRIC_KEYS)
            w.writeheader()
            w.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=start_step)
        except Exception:  # tensorboard not installed: CSV only
            self.tb = None

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, METRIC_KEYS).writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and v != "":
                    self.tb.add_scalar(f"pretrain/{k}", v, row["step"])


class SimulatedKill(RuntimeError):
    """Raised by `train(..., stop_after=k)` right after step k, as if the process had been killed."""


def _reduce_mean(values: dict, world: int, device) -> dict:
    # values: name -> float; average over processes so every rank logs the global numbers
    keys = [k for k, v in values.items() if v is not None]
    if world > 1 and keys:
        t = torch.tensor([values[k] for k in keys], device=device, dtype=torch.float64)
        dist.all_reduce(t)
        values.update({k: float(v) / world for k, v in zip(keys, t.tolist())})
    return values


def _checkpoint(run, step: int) -> dict:
    return {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(), "scaler": run.scaler.state_dict(), "rng": get_rng_state(),
            "step": step, "config": run.cfg.to_dict()}


class Run:
    """Everything one pretraining run holds: model, optimiser, schedule, data, teacher, logs."""

    def __init__(self, cfg: PretrainConfig, dataset=None, teacher=None, resume: bool = False):
        self.cfg = cfg
        self.rank, self.world, self.device = setup_distributed(cfg.device)
        self.out = Path(cfg.out_dir) if Path(cfg.out_dir).is_absolute() else REPO_ROOT / cfg.out_dir
        self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)                          # identical initial weights on every rank
        self.encoder = build_backbone(cfg.model, **cfg.model_kwargs)
        if teacher is None:
            teacher = build_teacher(student=self.encoder, **cfg.teacher)
        self.teacher = teacher.to(self.device) if teacher is not None else None
        self.model = PretrainModel(self.encoder, cfg.decoder, teacher.embed_dim if teacher else None,
                                   cfg.align_weight, cfg.margin, cfg.normalize_target,
                                   max_frames=max(64, cfg.data.get("num_frames", 16))).to(self.device)
        self.opt = torch.optim.AdamW(param_groups(self.model, cfg.weight_decay), lr=cfg.lr(), betas=cfg.betas)
        f = lambda s: lr_factor(s, cfg.warmup_steps, cfg.total_steps, cfg.min_lr / cfg.lr())  # noqa: E731
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, f)
        self.dtype = amp_dtype(cfg, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.step = self._resume() if resume else 0
        self.ddp = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.dataset = dataset if dataset is not None else build_dataset(cfg)
        self.metrics = MetricsLog(self.out, self.step, self.rank == 0)

    def _resume(self) -> int:
        path = self.out / "checkpoint.pth"
        if not path.is_file():
            log.info("no checkpoint at %s: starting from step 0", path)
            return 0
        ck = load_checkpoint_file(path, map_location=self.device)
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        log.info("resumed %s at step %d", path, ck["step"])
        return int(ck["step"])

    def loader(self) -> DataLoader:
        sampler = StepBatchSampler(len(self.dataset), self.cfg.batch_size, self.cfg.seed, self.step,
                                   self.cfg.total_steps, self.rank, self.world)
        return DataLoader(SeededItems(self.dataset, self.cfg.seed), batch_sampler=sampler,
                          num_workers=self.cfg.num_workers, collate_fn=collate_videos,
                          pin_memory=self.device.type == "cuda")

    def masks(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """(B_rank, T, N) this rank's slice of the global batch's masks for `step`."""
        per = self.cfg.batch_size // self.world
        m = make_mask(self.cfg.mask_kind, self.cfg.batch_size, x.shape[2], self.encoder.num_patches,
                      self.cfg.mask_ratio, generator=step_generator(self.cfg.seed, step))
        return m[self.rank * per:(self.rank + 1) * per].to(self.device)

    def train_step(self, x: torch.Tensor, step: int) -> dict:
        x = x.to(self.device, non_blocking=True)
        mask = self.masks(x, step)
        amp = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else nullcontext()
        with amp:
            t_tok = self.teacher(x) if self.teacher is not None else None
            out = self.ddp(x, mask, t_tok)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(out["loss"]).backward()
        self.scaler.unscale_(self.opt)
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad or float("inf"))
        self.scaler.step(self.opt)
        self.scaler.update()
        lr = self.opt.param_groups[0]["lr"]
        self.sched.step()
        vals = {"loss": out["loss"].item(), "loss_rec": out["loss_rec"].item(),
                "loss_align": None if out["loss_align"] is None else out["loss_align"].item(),
                "grad_norm": float(gn)}
        vals = _reduce_mean(vals, self.world, self.device)
        return {"step": step + 1, "lr": lr, **{k: ("" if v is None else v) for k, v in vals.items()}}

    def save(self, step: int, final: bool = False) -> None:
        if self.rank == 0:
            atomic_save(_checkpoint(self, step), self.out / "checkpoint.pth")
            if final:
                save_encoder(self.encoder, self.out / "encoder.pth", self.cfg.model, self.cfg.model_kwargs)
        if self.world > 1:
            dist.barrier()


def train(cfg: PretrainConfig, dataset=None, teacher=None, resume: bool = False, stop_after: int | None = None,
          return_run: bool = False):
    """Run (or resume) pretraining to cfg.total_steps. Returns the list of logged metric rows (or the Run)."""
    run = Run(cfg, dataset, teacher, resume)
    run.model.train()
    rows, t0 = [], time.time()
    bar = tqdm(total=cfg.total_steps, initial=run.step, disable=not cfg.progress or run.rank != 0,
               desc="pretrain")
    for step, x in zip(range(run.step, cfg.total_steps), run.loader()):
        row = run.train_step(x, step)
        rows.append(row)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.total_steps:
            run.metrics.write(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.total_steps:
            run.save(step + 1, final=step + 1 == cfg.total_steps)
        if stop_after is not None and step + 1 == stop_after:
            bar.close()
            raise SimulatedKill(f"stopped after step {step + 1}")
    bar.close()
    log.info("pretraining: %d steps in %.1f s -> %s", len(rows), time.time() - t0, run.out)
    return run if return_run else rows
