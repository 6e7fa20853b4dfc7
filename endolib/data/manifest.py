"""Validate the dataset manifests in ``data_manifests/*.yaml`` against one schema and tabulate or chart them.

A manifest describes one public dataset as published: where it comes from, its licence and access,
modality, counts, frame rate, resolution, classes, the official on-disk layout, and its citation.
Counts that the public description does not give are written ``unknown`` (never guessed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from endolib.paths import MANIFESTS

UNKNOWN = "unknown"
ROLES = ("pretrain", "downstream", "both")
ACCESS = ("open", "registration", "request", "challenge", "private", "unknown")
MODALITIES = ("colonoscopy", "gastroscopy", "capsule", "laparoscopy", "robotic-surgery", "ophthalmic-surgery",
              "mixed", "unknown")


class ManifestError(ValueError):
    """A manifest file breaks the schema; the message names the file and the field."""


@dataclass
class DatasetManifest:
    """One dataset. Numeric fields hold a number or ``"unknown"``."""
    name: str
    role: str  # pretrain | downstream | both
    task: str
    modality: list  # one or more of MODALITIES
    source_url: str
    access: str  # open | registration | request | challenge | private | unknown
    licence: str
    videos: object  # int | "unknown"
    frames: object  # int | "unknown"
    hours: object  # float | "unknown"
    fps: object  # float | "unknown"
    resolution: str  # e.g. "1920x1080", "various", "unknown"
    classes: object  # list of names | int count | "n/a" | "unknown"
    folder: str  # folder under the data root that holds the dataset in its official layout
    layout: str  # the official files and folders, as a small tree
    citation: str
    numbers_from: str  # where the counts were read (URL / paper section)
    used_by: list = field(default_factory=list)  # e.g. [EndoMamba, Endo-FM]
    synthetic: str = ""  # endolib.data.synthetic.generate name that writes this layout, if any
    notes: str = ""


def _fail(path, fld, msg):
    raise ManifestError(f"{path}: field {fld!r}: {msg}")


def _check_number(path, name, v, kind):
    if v == UNKNOWN:
        return v
    ok = isinstance(v, int) if kind is int else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or v < 0 or (isinstance(v, float) and math.isnan(v)):
        _fail(path, name, f"expected a non-negative {kind.__name__} or '{UNKNOWN}'; got {v!r}. "
                          "Write the number as published, or 'unknown'.")
    return v


def _check_text(path, name, v, allowed=None, allow_empty=False):
    if not isinstance(v, str) or (not allow_empty and not v.strip()):
        _fail(path, name, f"expected a non-empty string; got {v!r}.")
    if allowed is not None and v not in allowed:
        _fail(path, name, f"expected one of {allowed}; got {v!r}.")
    return v


def validate(data, path="<manifest>") -> DatasetManifest:
    """Check one manifest's mapping and return it as a ``DatasetManifest``; ``ManifestError`` names file and field."""
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a YAML mapping of fields; got {type(data).__name__}.")
    names = [f.name for f in fields(DatasetManifest)]
    extra = sorted(set(data) - set(names))
    if extra:
        _fail(path, extra[0], f"unknown field (allowed: {names}). Fix the spelling or remove it.")
    required = [f.name for f in fields(DatasetManifest) if f.name not in ("used_by", "synthetic", "notes")]
    for name in required:
        if name not in data:
            _fail(path, name, f"missing. Every manifest needs {required} (numbers may be '{UNKNOWN}').")
    d = dict(data)
    for name in ("name", "task", "source_url", "licence", "folder", "layout", "citation", "numbers_from",
                 "resolution"):
        _check_text(path, name, d[name])
    _check_text(path, "role", d["role"], ROLES)
    _check_text(path, "access", d["access"], ACCESS)
    if not d["source_url"].startswith(("http://", "https://")):
        _fail(path, "source_url", f"expected an http(s) URL; got {d['source_url']!r}.")
    mods = d["modality"] if isinstance(d["modality"], list) else [d["modality"]]
    if not mods:
        _fail(path, "modality", f"expected one or more of {MODALITIES}; got an empty list.")
    for m in mods:
        _check_text(path, "modality", m, MODALITIES)
    d["modality"] = mods
    for name, kind in (("videos", int), ("frames", int), ("hours", float), ("fps", float)):
        d[name] = _check_number(path, name, d[name], kind)
    c = d["classes"]
    if not (c in (UNKNOWN, "n/a") or (isinstance(c, int) and not isinstance(c, bool) and c > 0)
            or (isinstance(c, list) and c and all(isinstance(x, str) and x for x in c))):
        _fail(path, "classes", f"expected a list of class names, a positive count, 'n/a' or '{UNKNOWN}'; got {c!r}.")
    for name in ("used_by",):
        if not isinstance(d.get(name, []), list):
            _fail(path, name, f"expected a list; got {d[name]!r}.")
    for name in ("synthetic", "notes"):
        _check_text(path, name, d.get(name, ""), allow_empty=True)
    return DatasetManifest(**d)


def load_manifest(path) -> DatasetManifest:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not valid YAML ({e}).") from e
    return validate(data, path)


def _num(v):
    return float("nan") if v == UNKNOWN else float(v)


def load_manifests(folder=MANIFESTS) -> pd.DataFrame:
    """Every ``*.yaml`` manifest under ``folder`` validated, one row each (``unknown`` numbers become NaN)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no manifests (*.yaml) in {folder}; expected the repository's data_manifests/.")
    rows = []
    for f in files:
        m = load_manifest(f)
        row = {k: getattr(m, k) for k in (x.name for x in fields(DatasetManifest))}
        row.update({k: _num(row[k]) for k in ("videos", "frames", "hours", "fps")})
        row["modality"] = ", ".join(m.modality)
        row["num_classes"] = len(m.classes) if isinstance(m.classes, list) else (
            m.classes if isinstance(m.classes, int) else float("nan"))
        row["file"] = f.name
        rows.append(row)
    df = pd.DataFrame(rows)
    names = df.name[df.name.duplicated()].tolist()
    if names:
        raise ManifestError(f"{folder}: dataset names {names} appear in more than one manifest; names must be unique.")
    return df


def manifest_table(df: pd.DataFrame) -> pd.DataFrame:
    """The columns worth reading at a glance, sorted by role then name."""
    cols = ["name", "role", "modality", "task", "videos", "frames", "hours", "fps", "resolution", "access", "folder"]
    return df.sort_values(["role", "name"])[cols].reset_index(drop=True)


def plot_corpus(df: pd.DataFrame, roles=("pretrain", "both")):
    """Hours, frames and videos per pretraining source and the modality mix; unknown counts are labelled
    ``unknown`` in red, never drawn as zero."""
    import matplotlib.pyplot as plt

    corpus = df[df.role.isin(roles)].sort_values("name")
    panels = (("hours", "hours of video"), ("frames", "frames"), ("videos", "videos"))
    fig, axes = plt.subplots(1, 4, figsize=(18, 0.35 * len(corpus) + 2.5))
    for ax, (col, label) in zip(axes, panels):
        vals = corpus[col]
        ax.barh(corpus.name, vals.fillna(0), color="tab:blue")
        for y, v in enumerate(vals):
            if math.isnan(v):
                ax.text(0.02, y, "unknown", va="center", color="tab:red", fontsize=8,
                        transform=ax.get_yaxis_transform())  # x in axes fraction: visible at any scale
        ax.set_xlim(0, max(float(vals.max()) * 1.05, 1.0) if vals.notna().any() else 1.0)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        ax.set_xlabel(label)
        ax.set_title(f"{col} per source (as published)")
        ax.invert_yaxis()
        if ax is not axes[0]:
            ax.set_yticklabels([])
    mods = corpus.modality.str.split(", ").explode().value_counts()
    axes[3].pie(mods.to_numpy(), labels=mods.index, autopct="%d%%", startangle=90)
    axes[3].set_title("modality mix (share of sources)")
    fig.tight_layout()
    return fig
