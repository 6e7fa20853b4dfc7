"""Pretraining configuration: one dataclass, YAML in and out, reference and CPU-tiny presets in configs/."""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class PretrainConfig:
    # student backbone (endolib.models.create_model name + kwargs) and decoder size ('tiny' | 'small' | dict)
    model: str = "endomamba_nano"
    model_kwargs: dict = field(default_factory=lambda: {"img_size": 64})
    decoder: object = "tiny"
    # data: PretrainClips over synthetic/real sources; `sources` maps source name -> root (None: synthetic)
    data: dict = field(default_factory=lambda: {"domain": "pretrain_corpus", "root": None, "num_frames": 4,
                                                 "sampling_rate": 2, "img_size": 64})
    mask_kind: str = "tube"
    mask_ratio: float = 0.75
    normalize_target: bool = True
    # teacher: kind 'none' | 'endomamba' | 'videomamba' | 'videomae', path, model_name (videomamba size)
    teacher: dict = field(default_factory=lambda: {"kind": "none", "path": None})
    align_weight: float = 0.25
    margin: float = 0.15
    # optimisation: lr = base_lr * global_batch / 256; cosine with linear warmup, per step
    batch_size: int = 4                     # global batch (all processes together)
    base_lr: float = 1.5e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.95)
    total_steps: int = 40
    warmup_steps: int = 4
    clip_grad: float = 1.0
    amp: str = "auto"                       # 'auto' (bf16 on GPU, off on CPU) | 'bf16' | 'fp16' | 'off'
    # bookkeeping
    seed: int = 0
    out_dir: str = "outputs/runs/pretrain/run"
    ckpt_every: int = 20
    log_every: int = 1
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True

    def lr(self) -> float:
        return self.base_lr * self.batch_size / 256

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown pretraining config keys {sorted(unknown)}; valid keys: {sorted(names)}.")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    @classmethod
    def from_yaml(cls, path) -> "PretrainConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found; see {CONFIG_DIR} for examples.")
        return cls.from_dict(yaml.safe_load(path.read_text()) or {})

    def replace(self, **kw) -> "PretrainConfig":
        return dataclasses.replace(self, **kw)
