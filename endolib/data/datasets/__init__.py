"""Loaders of the downstream datasets in their official layouts: ``load_dataset(name, root, split, ...)``.

Every item is a dict with ``"video"``: float ``(3, T, S, S)`` (ImageNet-normalised) and the labels of
its task (see each loader). ``ds.classes`` names the classes; phase and triplet datasets also offer
``ds.videos()`` (whole videos at 1 fps for online, streaming evaluation). The same loader reads a real
download and the synthetic copy that ``endolib.data.synthetic.generate`` writes.

Real data: put each dataset under one root in its official folder (PolypDiag/, CVC-12k/, KUMC/,
cholec80/, AutoLaparo_Task1/, m2cai16-workflow/, OphNet2024/, CholecT50/, SurgicalActions160/) and
either pass that root (or the dataset folder) as ``root``, or set ``ENDOLIB_DATA`` to it so the
workbook's default ``DATA_ROOT`` finds it (``synthetic.ensure`` never overwrites a folder it did not
write). ``layout(name)`` prints the layout a loader expects.
"""
from __future__ import annotations

import importlib

# name -> "module:Class"
LOADERS = {
    "polypdiag": "polyp:PolypDiag",
    "cvc12k": "polyp:CVC12k",
    "kumc": "polyp:KUMC",
    "cholec80": "phase:Cholec80",
    "autolaparo": "phase:AutoLaparo",
    "m2cai16": "phase:M2CAI16",
    "ophnet": "phase:OphNet",
    "cholect50": "cholect50:CholecT50",
    "surgicalactions160": "actions:SurgicalActions160",
}


def loader_class(name: str):
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(LOADERS)}.")
    module, cls = LOADERS[name].split(":")
    return getattr(importlib.import_module(f"endolib.data.datasets.{module}"), cls)


def layout(name: str) -> str:
    """The on-disk layout the loader of ``name`` reads (folder tree with file formats)."""
    return loader_class(name).layout


def load_dataset(name: str, root, split: str, num_frames: int = 8, img_size: int = 64, sampling_rate: int = 1,
                 **kw):
    """The ``split`` ('train' | 'val' | 'test') of dataset ``name`` read from ``root`` (its folder or the one above).

    kw: ``train`` (random clips; default split == 'train'), ``augment`` (default = train), ``seed``,
    ``stride`` (evaluation window stride) and loader-specific options (see the loader's docstring).
    """
    return loader_class(name)(root, split, num_frames=num_frames, img_size=img_size, sampling_rate=sampling_rate,
                              **kw)


__all__ = ["LOADERS", "layout", "load_dataset", "loader_class"]
