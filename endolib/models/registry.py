"""One name -> one EndoMamba configuration (sizes are entries, not copied classes)."""
from dataclasses import fields

from endolib.models.endomamba import EndoMamba, EndoMambaConfig

MODEL_SIZES = {
    # nano is ours: small enough to train inside a CPU notebook (use 64x64 frames)
    "endomamba_nano": dict(embed_dim=96, depth=4),
    "endomamba_tiny": dict(embed_dim=192, depth=24),
    "endomamba_small": dict(embed_dim=384, depth=24),
    "endomamba_middle": dict(embed_dim=576, depth=32),
}


def list_models() -> list:
    return sorted(MODEL_SIZES)


def create_model(name: str, **overrides) -> EndoMamba:
    """create_model('endomamba_small', num_classes=7, img_size=224, drop_path_rate=0.1, ...)."""
    if name not in MODEL_SIZES:
        raise ValueError(f"unknown model {name!r}; available: {list_models()}")
    known = {f.name for f in fields(EndoMambaConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown option(s) {bad} for {name}; valid options: {sorted(known)}")
    return EndoMamba(EndoMambaConfig(**{**MODEL_SIZES[name], **overrides}))


def model_from_config(config: dict) -> EndoMamba:
    return EndoMamba(EndoMambaConfig(**config))
