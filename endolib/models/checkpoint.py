"""Loading released EndoMamba checkpoints and ours, with an explicit key mapping and a full report.

Official layouts handled (DESIGN.md §1): the state dict nested under 'model' / 'module' / 'state_dict';
keys prefixed by 'module.' (DDP) or 'encoder.' (pretraining checkpoints: the backbone of the MVM model);
a 2-D patch-embedding weight (C, 3, 16, 16) inflated to the Conv3d's (C, 3, 1, 16, 16); a longer pos_embed
trimmed, one for another square grid interpolated. Nothing is dropped silently: see LoadReport.
"""
import logging
import math
from dataclasses import dataclass, field
from typing import Mapping

import torch
import torch.nn.functional as F

from endolib.utils.io import atomic_save, load_checkpoint_file

log = logging.getLogger(__name__)
_NESTING_KEYS = ("model", "module", "state_dict", "model_state")
_PREFIXES = ("module.", "encoder.", "backbone.")


@dataclass
class LoadReport:
    missing: list = field(default_factory=list)      # model keys the checkpoint did not provide
    unexpected: list = field(default_factory=list)   # checkpoint keys the model has no place for
    skipped: list = field(default_factory=list)      # keys present in both but left out (head of another size)
    adapted: list = field(default_factory=list)      # keys reshaped to fit (inflated, trimmed, interpolated)


def _unwrap(obj, source) -> dict:
    while isinstance(obj, Mapping) and not any(torch.is_tensor(v) for v in obj.values()):
        inner = next((obj[k] for k in _NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise ValueError(f"{source} holds no tensors under {_NESTING_KEYS} (top-level keys: "
                             f"{list(obj)[:10]}); it is not a model checkpoint.")
        obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source} is a {type(obj).__name__}, not a state dict; save model.state_dict().")
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def _strip_prefixes(sd: dict) -> dict:
    for prefix in _PREFIXES:
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
    return sd


def _fit_pos_embed(v, target_shape, report):
    """v: (1, M+1, C) -> (1, N+1, C): interpolate another square grid, or trim extra tokens."""
    n_ck, n_new = v.shape[1] - 1, target_shape[1] - 1
    g_ck, g_new = math.isqrt(n_ck), math.isqrt(n_new)
    if g_ck * g_ck == n_ck and g_new * g_new == n_new and g_ck != g_new:
        grid = v[:, 1:].reshape(1, g_ck, g_ck, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(g_new, g_new), mode="bicubic", align_corners=False)
        report.adapted.append(f"pos_embed interpolated {g_ck}x{g_ck} -> {g_new}x{g_new}")
        return torch.cat([v[:, :1], grid.permute(0, 2, 3, 1).reshape(1, n_new, -1).to(v.dtype)], dim=1)
    if v.shape[1] > target_shape[1]:
        report.adapted.append(f"pos_embed trimmed {v.shape[1]} -> {target_shape[1]} tokens")
        return v[:, : target_shape[1]]
    return v


def _adapt(sd: dict, own: dict, report: LoadReport) -> dict:
    w = sd.get("patch_embed.proj.weight")
    if w is not None and w.dim() == 4 and "patch_embed.proj.weight" in own:
        sd["patch_embed.proj.weight"] = w.unsqueeze(2)
        report.adapted.append("patch_embed.proj.weight inflated 2-D -> 3-D")
    if "pos_embed" in sd and "pos_embed" in own and sd["pos_embed"].shape != own["pos_embed"].shape:
        sd["pos_embed"] = _fit_pos_embed(sd["pos_embed"], own["pos_embed"].shape, report)
    return sd


def load_pretrained(model: torch.nn.Module, source, strict: bool = False) -> LoadReport:
    """Load a checkpoint path or state dict into `model`; returns what was missing/unexpected/skipped."""
    name = str(source) if not isinstance(source, Mapping) else "the given state dict"
    raw = source if isinstance(source, Mapping) else load_checkpoint_file(source)
    report = LoadReport()
    own = model.state_dict()
    sd = _adapt(_strip_prefixes(_unwrap(raw, name)), own, report)
    mismatched = []
    for k in [k for k in sd if k in own and sd[k].shape != own[k].shape]:
        if k.startswith("head."):  # fine-tuning to another class count: start that head fresh
            report.skipped.append(k)
            del sd[k]
        else:
            mismatched.append(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}")
    if mismatched:
        raise ValueError(f"{name} does not fit this model ({len(mismatched)} shape mismatches: "
                         + "; ".join(mismatched[:5]) + "). Is it for another model size or patch size? "
                         "Create the matching model (see endolib.models.list_models()).")
    result = model.load_state_dict(sd, strict=False)
    report.missing = [k for k in result.missing_keys if k not in report.skipped] + report.skipped
    report.unexpected = list(result.unexpected_keys)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise ValueError(f"{name}: strict load failed; missing {report.missing[:10]}, unexpected "
                         f"{report.unexpected[:10]}")
    log.info("loaded %s: %d tensors, %d missing, %d unexpected, %d skipped, adapted: %s", name, len(sd),
             len(report.missing), len(report.unexpected), len(report.skipped), report.adapted or "none")
    return report


def save_checkpoint(model: torch.nn.Module, path, **extra) -> None:
    """Our format: {'model': state_dict, 'config': model.config, **extra}, written atomically."""
    atomic_save({"model": model.state_dict(), "config": getattr(model, "config", None), **extra}, path)


def load_model(path, **overrides):
    """Rebuild an EndoMamba from one of our checkpoints (its saved config) and load its weights."""
    from endolib.models.registry import model_from_config
    ckpt = load_checkpoint_file(path)
    if not isinstance(ckpt, Mapping) or not ckpt.get("config"):
        raise ValueError(f"{path} has no 'config' entry: it is not an endolib checkpoint; create the model with "
                         "create_model(...) and call load_pretrained(model, path) instead.")
    model = model_from_config({**ckpt["config"], **overrides})
    load_pretrained(model, ckpt, strict=not overrides)
    return model
