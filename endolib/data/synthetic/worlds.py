"""The synthetic surgical worlds: tissue palette, static anatomy, dynamic ("cue") anatomy and target anchors.

Positions are offsets from the scene centre in units of the frame's short side (at zoom 1): y down, x right.
Cue objects are drawn in order (later ones on top); their per-frame visibility and motion come from
the schedule (``scripts.build_schedule``), so anatomy changes with the phase: fat cleared during
dissection, clips appearing, the gallbladder detaching and going into the bag, fluid pooling.
"""
from __future__ import annotations

import numpy as np

from endolib.data.synthetic import render as R

CHOLE = dict(  # laparoscopic cholecystectomy (Cholec80, M2CAI16, CholecT50)
    base=(0.86, 0.56, 0.46), vessel=(0.62, 0.16, 0.16), vessels=0.45, mottling=0.2,
    static=[dict(offset=(-0.34, -0.05), radius=0.55, rgb=(0.42, 0.12, 0.10), squash=0.55, dome=0.45,
                 lobes=[(2, 0.1, 0.5)]),  # liver
            dict(offset=(0.38, 0.34), radius=0.3, rgb=(0.93, 0.82, 0.42), dome=0.3, lobes=[(5, 0.15, 1.0)]),  # omentum
            dict(offset=(0.45, -0.2), radius=0.25, rgb=(0.86, 0.52, 0.50), squash=0.45, dome=0.6)],  # gut
    anchors={"liver": (-0.3, -0.15), "gallbladder": (-0.08, 0.06), "cystic_plate": (0.0, 0.14),
             "cystic_duct": (0.16, 0.06), "cystic_artery": (0.19, -0.08), "cystic_pedicle": (0.22, -0.01),
             "blood_vessel": (0.3, 0.22), "fluid": (0.12, -0.26), "abdominal_wall_cavity": (-0.4, 0.42),
             "adhesion": (0.02, 0.3), "omentum": (0.36, 0.3), "peritoneum": (0.3, -0.32), "gut": (0.42, -0.2),
             "specimen_bag": (0.02, -0.18), "null_target": (0.0, 0.0)},
    cues={
        "wall": dict(anchor="__center__", radius=0.9, rgb=(0.93, 0.80, 0.76), dome=0.3, lobes=[(3, 0.05, 0)]),
        "liver_bed": dict(anchor="cystic_plate", radius=0.13, rgb=(0.80, 0.45, 0.42), squash=0.6, dome=0.1),
        "duct": dict(anchor="cystic_duct", radius=0.14, rgb=(0.92, 0.90, 0.78), squash=0.22, angle=1.2, dome=0.6),
        "artery": dict(anchor="cystic_artery", radius=0.12, rgb=(0.75, 0.18, 0.18), squash=0.2, angle=1.0, dome=0.6),
        "clips": dict(anchor="cystic_duct", radius=0.045, rgb=(0.62, 0.45, 0.85), squash=0.4, angle=0.2, dome=0.8),
        "calot_fat": dict(anchor="cystic_duct", radius=0.17, rgb=(0.96, 0.86, 0.45), lobes=[(4, 0.2, 0.3)], dome=0.35),
        "gallbladder": dict(anchor="gallbladder", radius=0.21, rgb=(0.52, 0.66, 0.28), squash=0.55, angle=0.35,
                            dome=0.75),
        "fluid": dict(anchor="fluid", radius=0.12, rgb=(0.40, 0.04, 0.05), squash=0.7, dome=0.1,
                      lobes=[(3, 0.15, 0.7)]),
        "bag": dict(anchor="specimen_bag", radius=0.17, rgb=(0.90, 0.90, 0.86), dome=0.35, lobes=[(3, 0.1, 1.0)]),
    })

HYSTER = dict(  # laparoscopic hysterectomy (AutoLaparo) and gynaecologic actions (SurgicalActions160)
    base=(0.88, 0.62, 0.58), vessel=(0.58, 0.14, 0.2), vessels=0.5, mottling=0.18,
    static=[dict(offset=(0.42, 0.0), radius=0.45, rgb=(0.80, 0.50, 0.50), squash=0.35, dome=0.5)],  # bowel/pelvis
    anchors={"uterus": (-0.05, 0.0), "ligament": (0.05, -0.3), "vessel": (0.18, 0.26), "cuff": (0.2, 0.0),
             "fluid": (0.25, -0.18), "wall": (-0.4, 0.4), "null_target": (0.0, 0.0)},
    cues={
        "wall": dict(anchor="__center__", radius=0.9, rgb=(0.95, 0.85, 0.80), dome=0.25, lobes=[(3, 0.05, 0)]),
        "cuff": dict(anchor="cuff", radius=0.14, rgb=(0.72, 0.30, 0.35), squash=0.5, dome=0.2),
        "ligament": dict(anchor="ligament", radius=0.2, rgb=(0.96, 0.92, 0.88), squash=0.25, angle=0.4, dome=0.5),
        "vessel": dict(anchor="vessel", radius=0.14, rgb=(0.45, 0.10, 0.25), squash=0.2, angle=-0.5, dome=0.6),
        "uterus": dict(anchor="uterus", radius=0.28, rgb=(0.94, 0.68, 0.70), squash=0.8, dome=0.8),
        "suture": dict(anchor="cuff", radius=0.1, rgb=(0.20, 0.15, 0.40), squash=0.12, angle=1.4, dome=0.0),
        "fluid": dict(anchor="fluid", radius=0.11, rgb=(0.45, 0.05, 0.06), squash=0.7, dome=0.1, lobes=[(3, 0.15, 0)]),
        "thread": dict(anchor="cuff", radius=0.22, rgb=(0.15, 0.12, 0.35), squash=0.06, angle=0.7, dome=0.0),
        "bag": dict(anchor="fluid", radius=0.16, rgb=(0.90, 0.90, 0.86), dome=0.35, lobes=[(3, 0.1, 1.0)]),
    })

EYE = dict(  # cataract surgery under the microscope (OphNet-like)
    base=(0.93, 0.90, 0.88), vessel=(0.75, 0.25, 0.25), vessels=0.35, mottling=0.06, fov=2.0, vignette=0.25,
    camera=dict(travel=0.015, zoom=(0.95, 1.1), rot=0.05, shake=0.2),
    static=[],
    anchors={"incision": (-0.05, 0.33), "pupil": (0.0, 0.0), "lens": (0.03, -0.02), "null_target": (0.0, 0.0)},
    cues={
        "iris": dict(anchor="pupil", radius=0.36, rgb=(0.42, 0.30, 0.20), dome=0.15, lobes=[(7, 0.02, 0)]),
        "pupil": dict(anchor="pupil", radius=0.2, rgb=(0.85, 0.35, 0.12), dome=0.3),
        "rhexis": dict(anchor="pupil", radius=0.13, rgb=(0.95, 0.55, 0.25), dome=0.0),
        "nucleus": dict(anchor="lens", radius=0.12, rgb=(0.92, 0.86, 0.62), dome=0.6),
        "cortex": dict(anchor="lens", radius=0.17, rgb=(0.96, 0.94, 0.86), dome=0.1, lobes=[(5, 0.2, 0)]),
        "gel": dict(anchor="pupil", radius=0.22, rgb=(0.70, 0.85, 1.0), dome=0.0),
        "iol": dict(anchor="lens", radius=0.11, rgb=(0.80, 0.95, 1.0), dome=0.9),
        "wound": dict(anchor="incision", radius=0.05, rgb=(0.70, 0.25, 0.25), squash=0.3, angle=0.3, dome=0.0),
    })

WORLDS = {"chole": CHOLE, "hyster": HYSTER, "eye": EYE}


def build_texture(rng, world: dict, tex_size: int, px: float) -> tuple[np.ndarray, dict]:
    """The world's tiling tissue texture with static anatomy painted in, and its anchors in texture pixels."""
    jitter = rng.uniform(-0.05, 0.05, 3)
    tex = R.tissue_texture(rng, tex_size, np.clip(np.asarray(world["base"]) + jitter, 0, 1), world["vessel"],
                           vessels=world["vessels"], mottling=world["mottling"])
    center = rng.uniform(0.3, 0.7, 2) * tex_size
    unit = 128.0  # texture pixels per unit offset (one short side of the frame at zoom 1)
    yy, xx = R.screen_grid(tex_size, tex_size)
    img = tex[None].copy()
    for obj in world["static"]:
        pos = (center + np.asarray(obj["offset"]) * unit)[None].astype(np.float32)
        R.draw_blob(img, yy, xx, pos, np.array([obj["radius"] * unit], np.float32), np.asarray(obj["rgb"]),
                    lobes=obj.get("lobes", ()), squash=obj.get("squash", 1.0), angle=obj.get("angle", 0.0),
                    dome=obj.get("dome", 0.5))
    anchors = {k: (center + (np.asarray(v) + rng.uniform(-0.02, 0.02, 2)) * unit).astype(np.float32)
               for k, v in world["anchors"].items()}
    anchors["__center__"] = center.astype(np.float32)
    return img[0], anchors


def cue_positions(world: dict, schedule: dict, scr: dict, s: float) -> dict:
    """Screen position (T, 2) of every cue object: its anchor plus the schedule's motion for it (units of s)."""
    out = {}
    for obj, spec in world["cues"].items():
        if obj not in schedule["cues"]:
            continue
        pos = scr[spec["anchor"]]
        move = schedule.get("moves", {}).get(obj)
        out[obj] = pos if move is None else pos + move * s
    return out
