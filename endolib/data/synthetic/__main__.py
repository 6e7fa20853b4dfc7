"""Command line: write synthetic datasets in their official layouts.

    python -m endolib.data.synthetic all --root data --seed 0
    python -m endolib.data.synthetic cholec80 polypdiag --root /tmp/synth
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from endolib.data.synthetic import WRITERS, generate
from endolib.paths import DATA_ROOT


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help=f"'all' or any of: {', '.join(WRITERS)}")
    ap.add_argument("--root", type=Path, default=DATA_ROOT, help="folder to write into (default: ENDOLIB_DATA)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = list(WRITERS) if args.names == ["all"] else args.names
    for name in names:
        t = time.time()
        path = generate(name, args.root, seed=args.seed)
        logging.info("%-20s %6.1f s  %s", name, time.time() - t, path)


if __name__ == "__main__":
    main()
