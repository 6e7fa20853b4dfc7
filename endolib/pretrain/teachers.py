"""Frozen general-domain teachers behind one interface: `teacher(x) -> (B, T, N, C_t)` on the student's grid.

Kinds: 'videomae' (VideoMAE / VideoMAE v2 weights in Hugging Face `VideoMAEModel` format, read from a LOCAL
directory through the optional `transformers` package), 'videomamba' (our VideoMamba-style model, reading
official VideoMamba checkpoint keys), 'endomamba' (the embedded default: an EndoMamba backbone that the
workbook first pretrains itself on the 'generic' synthetic domain, saved as an `encoder.pth` by the loop).
"""
import logging
from pathlib import Path

import torch
from einops import rearrange
from torch import nn

from endolib.pretrain.targets import IMAGENET_MEAN, IMAGENET_STD, unnormalize

log = logging.getLogger(__name__)
TEACHER_KINDS = ("none", "endomamba", "videomamba", "videomae")


class Teacher(nn.Module):
    """Base: frozen, always in eval mode; subclasses implement `tokens(x) -> (B, T, N, C_t)`."""

    embed_dim: int
    grid_size: tuple
    patch_size: int

    def freeze(self) -> "Teacher":
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True):  # a teacher never leaves eval mode (no dropout / drop-path)
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, T, H, W) ImageNet-normalised student input -> (B, T, N, C_t) float."""
        return self.tokens(x).float()

    def tokens(self, x):
        raise NotImplementedError


def check_fits(teacher: Teacher, student: nn.Module) -> None:
    """Raise ValueError unless the teacher's patch grid equals the student's (same positions, same N)."""
    if tuple(teacher.grid_size) != tuple(student.grid_size) or teacher.patch_size != student.patch_size:
        raise ValueError(
            f"teacher grid {tuple(teacher.grid_size)} with patch {teacher.patch_size} does not fit the student "
            f"grid {tuple(student.grid_size)} with patch {student.patch_size}: build the student with the "
            "teacher's img_size/patch_size (or pick a teacher trained at the student's resolution).")


class EncoderTeacher(Teacher):
    """Any EndoMamba-contract backbone (`forward_features` with cls first) as a teacher: 'endomamba'."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.embed_dim, self.grid_size = encoder.embed_dim, tuple(encoder.grid_size)
        self.patch_size = encoder.patch_size
        self.freeze()

    def tokens(self, x):
        return self.encoder.forward_features(x)[:, :, 1:]            # (B, T, N, C)


class VideoMambaTeacher(Teacher):
    """Our VideoMamba-style model (`endolib.models.videomamba`) as a teacher: 'videomamba'."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.embed_dim, self.grid_size = model.embed_dim, tuple(model.grid_size)
        self.patch_size = model.patch_size
        self.freeze()

    def tokens(self, x):
        return self.model.forward_tokens(x)                           # (B, T, N, C)


class VideoMAETeacher(Teacher):
    """Hugging Face `VideoMAEModel` from a local directory: 'videomae'.

    VideoMAE embeds tubelets of `tubelet_size` frames (2 in the released models), so its temporal grid is
    T / tubelet_size; each teacher token is repeated over the frames of its tubelet to land on the
    student's per-frame grid (B, T, N, C). The clip length must equal the config's `num_frames` (its
    position table is fixed to that length).
    """

    def __init__(self, path):
        super().__init__()
        try:
            from transformers import VideoMAEModel
        except ImportError as e:
            raise ImportError("the 'videomae' teacher needs the optional `transformers` package: "
                              "pip install 'endolib[teachers]'") from e
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no Hugging Face model directory at {path} (expected config.json and "
                                    "weights saved with save_pretrained); download it there first.")
        self.model = VideoMAEModel.from_pretrained(str(path), local_files_only=True)
        cfg = self.model.config
        self.embed_dim, self.patch_size = cfg.hidden_size, cfg.patch_size
        self.tubelet, self.num_frames = cfg.tubelet_size, cfg.num_frames
        g = cfg.image_size // cfg.patch_size
        self.grid_size = (g, g)
        mean, std = _processor_stats(path)
        self.register_buffer("in_mean", torch.tensor(mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("in_std", torch.tensor(std).view(1, 3, 1, 1, 1), persistent=False)
        self.freeze()

    def tokens(self, x):
        # the student's input is ImageNet-normalised; re-normalise to the teacher's own processor statistics
        x = (unnormalize(x) - self.in_mean.to(x.dtype)) / self.in_std.to(x.dtype)
        b, _, t, h, w = x.shape
        if t != self.num_frames or h != self.grid_size[0] * self.patch_size:
            raise ValueError(f"VideoMAE teacher expects clips of {self.num_frames} frames at "
                             f"{self.grid_size[0] * self.patch_size}px, got {t} frames at {h}x{w}: set the data "
                             "num_frames/img_size to the teacher's config.")
        out = self.model(pixel_values=rearrange(x, "b c t h w -> b t c h w")).last_hidden_state
        out = rearrange(out, "b (t n) c -> b t n c", t=t // self.tubelet)
        return out.repeat_interleave(self.tubelet, dim=1)             # (B, T, N, C)


def _processor_stats(path: Path):
    """(mean, std) from the folder's preprocessor_config.json (image_mean / image_std), ImageNet by default."""
    import json
    cfg_file = Path(path) / "preprocessor_config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    return tuple(cfg.get("image_mean", IMAGENET_MEAN)), tuple(cfg.get("image_std", IMAGENET_STD))


def save_encoder(encoder: nn.Module, path, name: str, kwargs: dict) -> None:
    """Write a backbone in endolib.models' checkpoint format ({'model', 'config'}) plus its registry name,
    so `endolib.models.load_pretrained` / `load_model` read it and `load_encoder` rebuilds it."""
    from endolib.models import save_checkpoint
    save_checkpoint(encoder, path, model_name=name, model_kwargs=dict(kwargs))


def load_encoder(path) -> nn.Module:
    """Rebuild a backbone written by `save_encoder` (endomamba_* or videomamba_* names)."""
    from endolib.utils import load_checkpoint_file
    ck = load_checkpoint_file(path)
    if not isinstance(ck, dict) or "model_name" not in ck:
        raise ValueError(f"{path} is not an encoder file written by endolib.pretrain (missing 'model_name'); "
                         "use the encoder.pth from a pretraining run's output directory.")
    model = build_backbone(ck["model_name"], **ck["model_kwargs"])
    model.load_state_dict(ck["model"])
    return model


def build_backbone(name: str, **kw) -> nn.Module:
    """endomamba_* through endolib.models.create_model; videomamba_* through endolib.models.videomamba."""
    if name.startswith("videomamba"):
        from endolib.models.videomamba import create_videomamba
        return create_videomamba(name, **kw)
    from endolib.models import create_model
    return create_model(name, **kw)


def build_teacher(kind: str, path=None, student: nn.Module | None = None, model_name: str = "videomamba_small",
                  **model_kw) -> Teacher | None:
    """Teacher by kind ('none' -> None). `path`: encoder.pth / official .pth / Hugging Face directory."""
    if kind in (None, "none"):
        return None
    if kind not in TEACHER_KINDS:
        raise ValueError(f"unknown teacher kind {kind!r}; expected one of {TEACHER_KINDS}.")
    if kind == "videomae":
        teacher = VideoMAETeacher(path)
    elif kind == "endomamba":
        if path is None:
            raise ValueError("the 'endomamba' teacher needs path= an encoder.pth from a general-domain run.")
        teacher = EncoderTeacher(load_encoder(path))
    else:
        from endolib.models.videomamba import create_videomamba, load_videomamba
        model = create_videomamba(model_name, **model_kw)
        if path is not None:
            log.info("videomamba teacher: %s", load_videomamba(model, path))
        teacher = VideoMambaTeacher(model)
    if student is not None:
        check_fits(teacher, student)
    return teacher
