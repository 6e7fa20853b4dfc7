"""The one fine-tuning / evaluation loop every downstream task uses (linear probe or full fine-tune).

    result = fit(model, train_set, loss_fn, FitConfig(mode="finetune", epochs=3, out_dir=run_dir),
                 evaluate=lambda m: {"f1": ...})

`model` is a task model with a `backbone` attribute (see `endolib.tasks.common.TaskModel`); anything
else in it (the head) is always trained. `loss_fn(model, batch) -> loss` or `(loss, {name: float})`
gets the batch already on the device. `evaluate(model) -> {metric: float}` is called in eval mode,
without gradients, after every `eval_every` epochs and at the end. `make_step` gives one training
step of the same recipe on a fixed batch (GPU throughput benchmarks).

Conventions shared with pretraining: AdamW with linear warmup then cosine decay (per step); a
backbone lr multiplier and optional layer-wise lr decay; bf16 autocast on CUDA; gradient clipping;
tqdm progress; a tidy metrics CSV (`step, epoch, split, metric, value`); an atomic checkpoint
`last.pth` every `ckpt_every` steps and at the end; exact resume from it (model, optimizer,
scheduler, RNG states and the position inside the epoch: the data order is a seeded permutation
per epoch and every sample's own randomness is seeded from (seed, epoch, position), so a resumed
run sees exactly the batches the uninterrupted run would have seen, with any number of workers).
"""
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

try:  # optional: the GPU benchmark machine has no tqdm
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

from endolib.utils import (atomic_save, atomic_write_text, get_rng_state, load_checkpoint_file, seed_everything,
                           set_rng_state)

log = logging.getLogger(__name__)

MODES = ("linear", "finetune")


@dataclass
class FitConfig:
    """Everything that decides a fine-tuning run (saved in the checkpoint)."""
    mode: str = "finetune"            # 'linear': frozen backbone, train the head only | 'finetune': all
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3                  # head lr; the backbone gets lr * backbone_lr_mult
    backbone_lr_mult: float = 0.1     # finetune mode only
    layer_decay: Optional[float] = None  # e.g. 0.75: backbone layer i gets decay**(depth+1-i) on top
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.999)
    warmup_steps: int = 0             # linear warmup from 0, then cosine to min_lr_ratio * lr
    min_lr_ratio: float = 0.01
    grad_clip: Optional[float] = 1.0  # max global grad norm; None = off
    amp: Optional[bool] = None        # None: bf16 autocast on CUDA, off on CPU
    device: str = "auto"              # 'auto' | 'cpu' | 'cuda' | 'cuda:1' ...
    seed: int = 0
    num_workers: int = 0
    eval_every: int = 1               # epochs; 0 = only at the end
    log_every: int = 10               # steps between train-loss rows in the CSV
    ckpt_every: int = 0               # steps between checkpoints; 0 = only at the end
    out_dir: Optional[str] = None     # checkpoints + metrics.csv; None = keep nothing on disk
    resume: bool = True               # continue from out_dir/last.pth when it exists
    max_steps: Optional[int] = None   # stop early (tests, benchmarks); None = epochs * steps/epoch
    progress: bool = True


@dataclass
class FitResult:
    metrics: dict                     # last evaluation ({} without an evaluate hook)
    history: list = field(default_factory=list)  # rows of the metrics CSV
    steps: int = 0
    checkpoint: Optional[Path] = None


# ---------------------------------------------------------------- data order
class EpochSampler(Sampler):
    """Seeded permutation of the dataset for one epoch, from position `start`; yields (epoch, pos, index)."""

    def __init__(self, n: int, seed: int, epoch: int, start: int = 0, shuffle: bool = True):
        self.n, self.seed, self.epoch, self.start, self.shuffle = n, seed, epoch, start, shuffle

    def order(self) -> list:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self):
        order = self.order()
        return iter((self.epoch, p, order[p]) for p in range(self.start, self.n))

    def __len__(self):
        return self.n - self.start


class SeededItems(Dataset):
    """Wraps a dataset so item (epoch, pos, index) draws its random numbers from its own seed.

    The global RNG states are restored afterwards, so loading data never perturbs the model's
    random numbers (dropout, drop-path) in the main process."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, pos, index = key
        s = (self.seed * 1_000_003 + epoch) * 10_000_019 + pos
        states = get_rng_state(cuda=False)
        seed_everything(s % 2**63)
        try:
            return self.dataset[index]
        finally:
            set_rng_state(states)


def to_device(batch, device):
    """Move every tensor inside nested dicts / lists / tuples to `device`."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


# ---------------------------------------------------------------- optimizer
def _layer_id(name: str, depth: int) -> int:
    """0 for embeddings, i+1 for backbone block i, depth+1 for the final norm."""
    m = re.search(r"(?:^|\.)layers\.(\d+)\.", name)
    if m:
        return int(m.group(1)) + 1
    if any(k in name for k in ("patch_embed", "cls_token", "pos_embed")):
        return 0
    return depth + 1


def _no_decay(name: str, p: torch.Tensor, skip: set) -> bool:
    return p.ndim <= 1 or name in skip or getattr(p, "_no_weight_decay", False) or \
        name.split(".")[-1] in ("pos_embed", "cls_token", "A_log", "A_b_log", "D", "D_b")


def param_groups(model: nn.Module, cfg: FitConfig) -> list:
    """AdamW groups: head at lr; backbone at lr*mult (*layer decay); no weight decay on norms/biases/SSM A, D."""
    backbone = getattr(model, "backbone", None)
    bb_ids = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    depth = getattr(backbone, "depth", None) or 1 + max(
        [_layer_id(n, 0) - 1 for n, _ in model.named_parameters()] + [0])
    skip = set()
    if backbone is not None and hasattr(backbone, "no_weight_decay"):
        skip = {f"backbone.{n}" for n in backbone.no_weight_decay()}
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = 1.0
        if id(p) in bb_ids:
            scale = cfg.backbone_lr_mult
            if cfg.layer_decay is not None:
                scale *= cfg.layer_decay ** (depth + 1 - _layer_id(name, depth))
        wd = 0.0 if _no_decay(name, p, skip) else cfg.weight_decay
        g = groups.setdefault((scale, wd), {"params": [], "lr_scale": scale, "weight_decay": wd})
        g["params"].append(p)
    return list(groups.values())


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """lr factor: linear 0→1 over `warmup` steps, then cosine 1→min_ratio at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def build_optimizer(model, cfg: FitConfig, total_steps: int):
    groups = param_groups(model, cfg)
    if not groups:
        raise ValueError("no trainable parameters: the model has nothing with requires_grad=True. In linear "
                         "mode the head must hold parameters outside `model.backbone`.")
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, total_steps, cfg.warmup_steps, cfg.min_lr_ratio))
    return opt, sched


# ---------------------------------------------------------------- the loop
def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={spec!r} was asked for but CUDA is not available; pass device='cpu' or 'auto'.")
    return dev


def set_trainable(model: nn.Module, mode: str) -> None:
    """linear: freeze `model.backbone` (and keep it in eval mode); finetune: everything trains."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise ValueError(f"{type(model).__name__} has no `backbone` attribute; wrap backbone and head in "
                         "endolib.tasks.common.TaskModel (or give your model a .backbone).")
    model.requires_grad_(True)
    if mode == "linear":
        backbone.requires_grad_(False)


def _train_mode(model: nn.Module, mode: str) -> None:
    model.train()
    if mode == "linear":
        model.backbone.eval()  # a frozen backbone behaves as at inference (no drop-path)


def run_evaluate(model, evaluate: Callable, amp: bool, device) -> dict:
    """Call the evaluation hook in eval mode, without gradients, leaving the training RNG untouched."""
    states = get_rng_state()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = evaluate(model)
    finally:
        set_rng_state(states)
        model.train(was_training)
    return {k: float(v) for k, v in out.items()}


def _loader(train_set, cfg: FitConfig, epoch: int, start: int, collate_fn, device) -> DataLoader:
    sampler = EpochSampler(len(train_set), cfg.seed, epoch, start)
    return DataLoader(SeededItems(train_set, cfg.seed), batch_size=cfg.batch_size, sampler=sampler,
                      collate_fn=collate_fn, num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                      persistent_workers=False,
                      # its own generator: making an iterator must not draw from the global RNG (exact resume)
                      generator=torch.Generator().manual_seed(cfg.seed + epoch))


def write_history_csv(history: list, path: Path) -> None:
    lines = ["step,epoch,split,metric,value"]
    lines += [f"{r['step']},{r['epoch']},{r['split']},{r['metric']},{r['value']:.8g}" for r in history]
    atomic_write_text("\n".join(lines) + "\n", path)


_RESUME_MUST_MATCH = ("mode", "batch_size", "seed")


def _restore(ckpt_path: Path, model, opt, sched, cfg: FitConfig) -> dict:
    ck = load_checkpoint_file(ckpt_path)
    for k in _RESUME_MUST_MATCH:
        if ck["config"].get(k) != getattr(cfg, k):
            raise ValueError(f"cannot resume {ckpt_path}: it was trained with {k}={ck['config'].get(k)!r}, "
                             f"this run asks for {getattr(cfg, k)!r}. Use another out_dir or resume=False.")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"])
    log.info("resumed %s at step %d (epoch %d, position %d)", ckpt_path, ck["state"]["step"],
             ck["state"]["epoch"], ck["state"]["pos"])
    return ck["state"]


def _save(path: Path, model, opt, sched, cfg: FitConfig, state: dict) -> None:
    atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "rng": get_rng_state(), "config": asdict(cfg), "state": state}, path)


def _train_step(model, batch, loss_fn, opt, sched, cfg: FitConfig, amp: bool, device) -> tuple:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        out = loss_fn(model, batch)
    loss, logs = out if isinstance(out, tuple) else (out, {})
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} (not finite); lower lr (now {cfg.lr}) or enable "
                                 "grad_clip, and check the labels of this batch.")
    opt.zero_grad(set_to_none=True)
    loss.float().backward()
    if cfg.grad_clip:
        nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
    opt.step()
    sched.step()
    return float(loss.detach()), {k: float(torch.as_tensor(v).detach()) for k, v in logs.items()}


def _log_train(state: dict, lr: float) -> None:
    acc = state["acc"]
    for k, v in acc["sums"].items():
        state["history"].append({"step": state["step"], "epoch": state["epoch"], "split": "train",
                                 "metric": k, "value": v / acc["n"]})
    state["history"].append({"step": state["step"], "epoch": state["epoch"], "split": "train",
                             "metric": "lr", "value": lr})
    state["acc"] = {"sums": {}, "n": 0}


def _advance(state: dict, n: int, batch_size: int, values: dict) -> None:
    """One step done: move the step counter and the position in the epoch; accumulate the train logs."""
    state["step"] += 1
    state["pos"] = min(n, state["pos"] + batch_size)
    acc = state["acc"]
    for k, v in values.items():
        acc["sums"][k] = acc["sums"].get(k, 0.0) + v
    acc["n"] += 1


def _log_eval(state: dict, metrics: dict) -> None:
    for k, v in metrics.items():
        state["history"].append({"step": state["step"], "epoch": state["epoch"], "split": "val",
                                 "metric": k, "value": v})


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def _progress(total: int, initial: int, cfg: FitConfig):
    if tqdm is None or not cfg.progress:
        return _NoBar()
    return tqdm(total=total, initial=initial, desc=f"fit[{cfg.mode}]")


def fit(model: nn.Module, train_set, loss_fn: Callable, cfg: FitConfig, *, evaluate: Optional[Callable] = None,
        collate_fn: Optional[Callable] = None) -> FitResult:
    """Train `model` on `train_set` with `loss_fn`; evaluate with `evaluate`; checkpoint and resume in out_dir."""
    device = resolve_device(cfg.device)
    amp = device.type == "cuda" if cfg.amp is None else bool(cfg.amp)
    seed_everything(cfg.seed)
    set_trainable(model, cfg.mode)
    model.to(device)
    n = len(train_set)
    if n == 0:
        raise ValueError("train_set is empty: check the dataset root and split.")
    per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * per_epoch)
    opt, sched = build_optimizer(model, cfg, total)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    ckpt = out_dir / "last.pth" if out_dir else None
    state = {"step": 0, "epoch": 0, "pos": 0, "history": [], "acc": {"sums": {}, "n": 0}, "metrics": {}}
    if ckpt is not None and cfg.resume and ckpt.is_file():
        state = _restore(ckpt, model, opt, sched, cfg)
    pbar = _progress(total, state["step"], cfg)
    while state["step"] < total:
        _train_mode(model, cfg.mode)
        for batch in _loader(train_set, cfg, state["epoch"], state["pos"], collate_fn, device):
            loss, logs = _train_step(model, to_device(batch, device), loss_fn, opt, sched, cfg, amp, device)
            _advance(state, n, cfg.batch_size, {"loss": loss, **logs})
            pbar.update(1)
            pbar.set_postfix(loss=f"{loss:.4f}", epoch=state["epoch"])
            if state["step"] % max(1, cfg.log_every) == 0 or state["step"] == total:
                _log_train(state, sched.get_last_lr()[0] / opt.param_groups[0]["lr_scale"])
            if state["pos"] >= n:  # epoch done
                state["epoch"], state["pos"] = state["epoch"] + 1, 0
                if evaluate and cfg.eval_every and state["epoch"] % cfg.eval_every == 0 and state["step"] < total:
                    state["metrics"] = run_evaluate(model, evaluate, amp, device)
                    _log_eval(state, state["metrics"])
                    _train_mode(model, cfg.mode)
            if ckpt is not None and cfg.ckpt_every and state["step"] % cfg.ckpt_every == 0:
                _save(ckpt, model, opt, sched, cfg, state)
                write_history_csv(state["history"], out_dir / "metrics.csv")
            if state["step"] >= total or state["pos"] == 0:
                break
    pbar.close()
    if evaluate is not None:
        state["metrics"] = run_evaluate(model, evaluate, amp, device)
        if not state["history"] or state["history"][-1]["split"] != "val" or \
                state["history"][-1]["step"] != state["step"]:
            _log_eval(state, state["metrics"])
    if ckpt is not None:
        _save(ckpt, model, opt, sched, cfg, state)
        write_history_csv(state["history"], out_dir / "metrics.csv")
    return FitResult(metrics=state["metrics"], history=state["history"], steps=state["step"], checkpoint=ckpt)


def make_step(model: nn.Module, loss_fn: Callable, batch, cfg: FitConfig, total_steps: int = 1000) -> Callable:
    """A closure running one training step of `fit` (same optimizer, schedule, autocast, clipping) on a
    fixed `batch`, for throughput measurements. Returns the loss as a float."""
    device = resolve_device(cfg.device)
    amp = device.type == "cuda" if cfg.amp is None else bool(cfg.amp)
    set_trainable(model, cfg.mode)
    model.to(device)
    _train_mode(model, cfg.mode)
    opt, sched = build_optimizer(model, cfg, total_steps)
    batch = to_device(batch, device)
    return lambda: _train_step(model, batch, loss_fn, opt, sched, cfg, amp, device)[0]
