"""A deterministic synthetic endoscopy world written in each downstream dataset's official on-disk layout.

``generate(name, root, seed=0, **size)`` renders dataset ``name`` under ``root/<OfficialFolderName>``
and returns that folder; ``ensure(name)`` does it once under ``DATA_ROOT`` (skipped when present).
The same seed gives the same bytes of every annotation file and the same decoded frames.

Names and folders: polypdiag → PolypDiag, cvc12k → CVC-12k, kumc → KUMC, cholec80 → cholec80,
autolaparo → AutoLaparo_Task1, m2cai16 → m2cai16-workflow, ophnet → OphNet2024, cholect50 → CholecT50,
surgicalactions160 → SurgicalActions160, pretrain_corpus → pretrain_corpus (several endoscopy
"sources", one video folder each), generic → generic (non-endoscopic moving textured shapes).
Size keywords are those of the writer (e.g. ``num_videos``, ``size=(64, 64)``); see ``WRITERS``.
"""
from __future__ import annotations

import importlib
import logging
import shutil
from pathlib import Path

import numpy as np

from endolib.paths import DATA_ROOT

log = logging.getLogger(__name__)

# name -> (official folder name, "module:function")
WRITERS = {
    "polypdiag": ("PolypDiag", "writers_polyp:write_polypdiag"),
    "cvc12k": ("CVC-12k", "writers_polyp:write_cvc12k"),
    "kumc": ("KUMC", "writers_polyp:write_kumc"),
    "cholec80": ("cholec80", "writers_surgery:write_cholec80"),
    "autolaparo": ("AutoLaparo_Task1", "writers_surgery:write_autolaparo"),
    "m2cai16": ("m2cai16-workflow", "writers_surgery:write_m2cai16"),
    "ophnet": ("OphNet2024", "writers_surgery:write_ophnet"),
    "cholect50": ("CholecT50", "writers_surgery:write_cholect50"),
    "surgicalactions160": ("SurgicalActions160", "writers_surgery:write_surgicalactions160"),
    "pretrain_corpus": ("pretrain_corpus", "writers_corpus:write_pretrain_corpus"),
    "generic": ("generic", "writers_corpus:write_generic"),
}
DONE_MARKER = ".endolib_synthetic_complete"
PARTIAL_MARKER = ".endolib_synthetic_partial"


def _writer(name: str):
    if name not in WRITERS:
        raise ValueError(f"unknown synthetic dataset {name!r}; expected one of {sorted(WRITERS)}.")
    module, func = WRITERS[name][1].split(":")
    return getattr(importlib.import_module(f"endolib.data.synthetic.{module}"), func)


def folder_name(name: str) -> str:
    """The official folder name dataset ``name`` lives in (``root/<folder>``)."""
    if name not in WRITERS:
        raise ValueError(f"unknown synthetic dataset {name!r}; expected one of {sorted(WRITERS)}.")
    return WRITERS[name][0]


def generate(name: str, root=DATA_ROOT, seed: int = 0, **size) -> Path:
    """Render dataset ``name`` in its official layout under ``root/<folder>``; returns that folder.

    An existing synthetic copy is replaced (a folder not written here raises FileExistsError). ``size`` goes to the writer (number of videos, frames, frame size).
    """
    write = _writer(name)
    out = Path(root) / folder_name(name)
    if out.exists():
        ours = (out / DONE_MARKER).exists() or (out / PARTIAL_MARKER).exists() or not any(out.iterdir())
        if not ours:  # never delete a real download
            raise FileExistsError(f"{out} exists and was not written by endolib.data.synthetic (no {DONE_MARKER}); "
                                  "refusing to replace it. Pass another root, or delete that folder yourself.")
        shutil.rmtree(out)
    rng = np.random.default_rng([seed, sorted(WRITERS).index(name)])
    log.info("generating synthetic %s under %s (seed %d)", name, out, seed)
    path = write(Path(root), rng, **size)
    (path / DONE_MARKER).write_text(f"seed={seed} size={size}\n")
    return path


def ensure(name: str, root=DATA_ROOT, seed: int = 0, **size) -> Path:
    """Generate dataset ``name`` under ``root`` once (skipped when a complete copy is there); returns its folder.

    A folder without the completion marker (an interrupted run) is regenerated. A real dataset put
    there by the user (no marker but annotation files present) is never overwritten.
    """
    out = Path(root) / folder_name(name)
    if (out / DONE_MARKER).is_file():
        return out
    if out.exists() and any(out.iterdir()) and not (out / PARTIAL_MARKER).exists():
        log.info("%s exists and is not synthetic: using it as is", out)
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / PARTIAL_MARKER).write_text("generation in progress\n")
    return generate(name, root, seed, **size)


__all__ = ["WRITERS", "ensure", "folder_name", "generate"]
