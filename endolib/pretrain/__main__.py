"""Command line pretraining: `python -m endolib.pretrain --config FILE [--resume] [--set key=value ...]`.

Multi-GPU: `torchrun --nproc_per_node 8 -m endolib.pretrain --config endolib/pretrain/configs/reference.yaml`
(batch_size in the config is the global batch; lr = base_lr * batch_size / 256).
"""
import argparse
import logging
import sys

import yaml

from endolib.pretrain.config import CONFIG_DIR, PretrainConfig
from endolib.pretrain.loop import train


def parse_config(args) -> PretrainConfig:
    cfg = PretrainConfig.from_yaml(args.config) if args.config else PretrainConfig.from_yaml(CONFIG_DIR / "tiny.yaml")
    updates = {}
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects key=value (value parsed as YAML), got {item!r}.")
        key, value = item.split("=", 1)
        updates[key] = yaml.safe_load(value)
    return PretrainConfig.from_dict({**cfg.to_dict(), **updates}) if updates else cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help=f"YAML config (default: {CONFIG_DIR / 'tiny.yaml'})")
    ap.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint.pth if present")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config entries")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rows = train(parse_config(args), resume=args.resume)
    if rows:
        logging.getLogger("endolib.pretrain").info("last step %d: loss %.4f", rows[-1]["step"], rows[-1]["loss"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
