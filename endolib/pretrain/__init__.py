"""Hierarchical pretraining: masked video reconstruction plus alignment to a frozen general-domain teacher.

Modules: `masking` (tube / random), `targets` (per-patch normalised pixels), `decoder` (light MVM decoder),
`losses` (reconstruction, cosine-embedding alignment), `teachers` (frozen teachers, one interface),
`model` (student + decoder + projection), `loop` (training loop: AMP, exact resume, DDP), `recipe`
(general -> endoscopy hierarchy and its ablation), `probe` (linear probe, held-out reconstruction),
`plots`, `gpu_bench`. Command line: `python -m endolib.pretrain --config FILE [--resume]`.
"""
from endolib.pretrain.config import PretrainConfig
from endolib.pretrain.masking import make_mask, random_mask, tube_mask
from endolib.pretrain.model import PretrainModel
from endolib.pretrain.targets import pixel_targets

__all__ = ["PretrainConfig", "PretrainModel", "make_mask", "pixel_targets", "random_mask", "tube_mask"]
