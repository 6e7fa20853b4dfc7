"""The hierarchical recipe on the embedded default, and its ablation.

Stage 1 (general domain): MVM-only pretraining on the 'generic' synthetic videos -> general/encoder.pth.
Stage 2 (endoscopy): MVM on the 'pretrain_corpus' synthetic endoscopy videos, aligned to the frozen stage-1
model ('endomamba' teacher) -> endo_teacher/encoder.pth; the same without the teacher -> endo_mvm/.
Ablation: held-out reconstruction loss and a PolypDiag linear probe for random init, MVM only, MVM + teacher.

    python -m endolib.pretrain.recipe --out-dir outputs/runs/pretrain/ablation --seeds 0 1 2 \
        --general-steps 300 --endo-steps 300 --csv outputs/results/pretraining_ablation.csv
"""
import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from endolib.paths import OUTPUTS
from endolib.pretrain.config import CONFIG_DIR, PretrainConfig
from endolib.pretrain.loop import build_dataset, train
from endolib.pretrain.model import PretrainModel
from endolib.pretrain.probe import heldout_reconstruction, linear_probe
from endolib.pretrain.teachers import build_backbone, load_encoder
from endolib.utils import seed_everything

log = logging.getLogger(__name__)
VARIANTS = ("random_init", "mvm", "mvm+teacher")


def stage_configs(base: PretrainConfig, out_root, general_steps: int, endo_steps: int) -> dict:
    """{'general', 'endo_mvm', 'endo_teacher'} configs derived from `base` (same model, data shape, seed)."""
    out_root = Path(out_root)
    data = dict(base.data)
    general = base.replace(data={**data, "domain": "generic"}, teacher={"kind": "none", "path": None},
                           total_steps=general_steps, out_dir=str(out_root / "general"))
    endo = dict(data={**data, "domain": "pretrain_corpus"}, total_steps=endo_steps)
    mvm = base.replace(teacher={"kind": "none", "path": None}, out_dir=str(out_root / "endo_mvm"), **endo)
    teach = base.replace(teacher={"kind": "endomamba", "path": str(out_root / "general" / "encoder.pth")},
                         out_dir=str(out_root / "endo_teacher"), **endo)
    return {"general": general, "endo_mvm": mvm, "endo_teacher": teach}


def run_hierarchy(base: PretrainConfig, out_root, general_steps: int, endo_steps: int, resume: bool = True) -> dict:
    """Train the three stages (each resumes/skips when its encoder.pth exists); returns their configs."""
    cfgs = stage_configs(base, out_root, general_steps, endo_steps)
    for name in ("general", "endo_mvm", "endo_teacher"):
        out = Path(cfgs[name].out_dir)
        if (out / "encoder.pth").is_file():
            log.info("stage %s: %s exists, skipping", name, out / "encoder.pth")
            continue
        log.info("stage %s: %d steps -> %s", name, cfgs[name].total_steps, out)
        train(cfgs[name], resume=resume)
    return cfgs


def _heldout_clips(cfg: PretrainConfig, num: int = 16) -> torch.Tensor:
    ds = build_dataset(cfg.replace(seed=cfg.seed + 9999))
    return torch.stack([ds[i % len(ds)]["video"] for i in range(num)])


def _encoder_for(variant: str, cfgs: dict, base: PretrainConfig):
    if variant == "random_init":
        seed_everything(base.seed)                      # the very weights the pretraining runs start from
        return build_backbone(base.model, **base.model_kwargs)
    return load_encoder(Path(cfgs["endo_mvm" if variant == "mvm" else "endo_teacher"].out_dir) / "encoder.pth")


def _decoder_for(variant: str, cfgs: dict, base: PretrainConfig, encoder) -> PretrainModel:
    seed_everything(base.seed)
    model = PretrainModel(encoder, base.decoder)
    if variant != "random_init":
        ck = torch.load(Path(cfgs["endo_mvm" if variant == "mvm" else "endo_teacher"].out_dir) / "checkpoint.pth",
                        map_location="cpu", weights_only=False)["model"]
        model.decoder.load_state_dict({k[len("decoder."):]: v for k, v in ck.items() if k.startswith("decoder.")})
    return model


def probe_data(out_root, num_videos: int = 160, task: str = "polypdiag") -> Path:
    """A larger synthetic PolypDiag for the probe (the notebook default has only 12 val videos), made once."""
    from endolib.data.synthetic import ensure
    return ensure(task, Path(out_root) / f"probe_data_{num_videos}", seed=1000, num_videos=num_videos)


def evaluate(cfgs: dict, base: PretrainConfig, probe_root, probe_task: str = "polypdiag") -> list:
    """One row per variant: held-out reconstruction loss and linear-probe accuracy / F1 on `probe_task`
    (one uniformly sampled clip per video; train videos to fit, val videos to score)."""
    from endolib.data.datasets import load_dataset
    root = Path(probe_root)
    shape = dict(num_frames=base.data.get("num_frames", 4), img_size=base.data.get("img_size", 64))
    train_ds = load_dataset(probe_task, root, "train", train=False, augment=False, **shape)
    val_ds = load_dataset(probe_task, root, "val", train=False, augment=False, **shape)
    clips = _heldout_clips(cfgs["endo_mvm"])
    rows = []
    for variant in VARIANTS:
        enc = _encoder_for(variant, cfgs, base)
        rec = heldout_reconstruction(_decoder_for(variant, cfgs, base, enc), clips, base.mask_kind, base.mask_ratio)
        probe = linear_probe(enc, train_ds, val_ds)
        rows.append(dict(seed=base.seed, variant=variant, heldout_rec_loss=rec, probe_task=probe_task,
                         probe_acc=probe["acc"], probe_f1=probe["f1"], n_train=probe["n_train"],
                         n_val=probe["n_val"], model=base.model, img_size=base.data.get("img_size"),
                         frames=base.data.get("num_frames"), general_steps=cfgs["general"].total_steps,
                         endo_steps=cfgs["endo_mvm"].total_steps))
        log.info("%s", rows[-1])
    return rows


def ablation(base: PretrainConfig, out_root, seeds, general_steps: int, endo_steps: int, csv_path=None,
             probe_root=None, probe_videos: int = 160) -> pd.DataFrame:
    """Run the hierarchy and the evaluation for each seed; write (and return) the tidy table."""
    rows, probe_root = [], probe_root or probe_data(out_root, probe_videos)
    for seed in seeds:
        s = base.replace(seed=seed)
        cfgs = run_hierarchy(s, Path(out_root) / f"seed{seed}", general_steps, endo_steps)
        rows += evaluate(cfgs, s, probe_root)
        df = pd.DataFrame(rows)
        if csv_path:
            Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(csv_path, index=False)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(CONFIG_DIR / "tiny.yaml"))
    ap.add_argument("--out-dir", default=str(OUTPUTS / "runs" / "pretrain" / "ablation"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--general-steps", type=int, default=150)
    ap.add_argument("--endo-steps", type=int, default=150)
    ap.add_argument("--csv", default=str(OUTPUTS / "results" / "pretraining_ablation.csv"))
    ap.add_argument("--probe-root", default=None, help="PolypDiag folder (default: a synthetic one generated "
                    "under the out-dir; point it at the real data root to probe on real videos)")
    ap.add_argument("--probe-videos", type=int, default=160, help="videos in the generated probe set (70%% train)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    base = PretrainConfig.from_yaml(args.config).replace(progress=False)
    df = ablation(base, args.out_dir, args.seeds, args.general_steps, args.endo_steps, args.csv, args.probe_root,
                  args.probe_videos)
    print(df.groupby("variant")[["heldout_rec_loss", "probe_acc", "probe_f1"]].agg(["mean", "std"]).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def teacher_spec(kind: str, path=None, model_name: str = "videomamba_small", img_size: int = 64,
                 num_frames: int = 4, general_encoder=None) -> dict:
    """Config `teacher` entry for a notebook parameter: 'embedded' (the stage-1 general model trained here),
    'endomamba' (an encoder.pth), 'videomamba' (official checkpoint or random), 'videomae' (HF dir), 'none'."""
    if kind == "embedded":
        return {"kind": "endomamba", "path": str(general_encoder)}
    if kind == "videomamba":
        return {"kind": "videomamba", "path": path, "model_name": model_name, "img_size": img_size,
                "num_frames": num_frames}
    return {"kind": kind, "path": path}
