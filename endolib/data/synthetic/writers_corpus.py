"""Write the unlabelled video corpora: the endoscopy pretraining corpus and the generic (non-endoscopic) domain.

- ``pretrain_corpus/<source>/<source>_NNN.mp4``: several endoscopy "sources" (colonoscopy, capsule-like,
  laparoscopic cholecystectomy, gynaecologic laparoscopy, ophthalmic microscope), one folder each,
  as a pretraining root of per-dataset folders looks.
- ``generic/shapes_NNN.mp4``: moving, rotating textured shapes on textured backgrounds (no tissue, no
  instruments), the stand-in for a general-domain video teacher's data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from endolib.data.synthetic import render as R
from endolib.data.synthetic import scripts as S
from endolib.data.synthetic.colon import POLYP_KINDS, render_colonoscopy
from endolib.data.synthetic.surgery import render_surgery
from endolib.data.synthetic.worlds import WORLDS

SOURCES = ("colonoscopy", "capsule", "cholecystectomy", "gyn_laparoscopy", "ophthalmic")


def _source_video(rng, source: str, n: int, size) -> np.ndarray:
    if source == "colonoscopy":
        kind = rng.choice([None, *POLYP_KINDS])
        return render_colonoscopy(rng, n, size, polyp=None if kind is None else str(kind), travel=0.5)["frames"]
    if source == "capsule":  # slow, dim, strongly vignetted, wide-angle
        v = render_colonoscopy(rng, n, size, polyp=None, travel=0.15, noise=0.02)["frames"]
        return (v.astype(np.float32) * 0.8).astype(np.uint8)
    if source == "cholecystectomy":
        sched = S.build_schedule(rng, S.CHOLE_PHASES, S.CHOLE_CUES, S.CHOLE_MOVES, n, [])
        return render_surgery(rng, WORLDS["chole"], sched, size)["frames"]
    if source == "gyn_laparoscopy":
        sched = S.build_schedule(rng, S.HYSTER_PHASES, S.HYSTER_CUES, S.HYSTER_MOVES, n, [])
        return render_surgery(rng, WORLDS["hyster"], sched, size)["frames"]
    if source == "ophthalmic":
        cues = {k: v for k, v in S.EYE_CUES.items()}
        sched = S.build_schedule(rng, S.EYE_PHASES, cues, {}, n, [])
        return render_surgery(rng, WORLDS["eye"], sched, size)["frames"]
    raise ValueError(f"unknown pretraining source {source!r}; expected one of {SOURCES}.")


def write_pretrain_corpus(root: Path, rng, sources=SOURCES, videos_per_source: int = 5, num_frames: int = 64,
                          size=(64, 64), fps: int = 8) -> Path:
    """Unlabelled endoscopy videos, one folder per source."""
    from endolib.data.io import write_video
    out = Path(root) / "pretrain_corpus"
    for source in sources:
        for i in tqdm(range(videos_per_source), desc=f"corpus {source}", leave=False):
            frames = _source_video(rng, source, num_frames, size)
            write_video(out / source / f"{source}_{i + 1:03d}.mp4", frames, fps=fps)
    return out


def shapes_video(rng, n: int, size=(64, 64)) -> np.ndarray:
    """Moving, rotating, textured geometric shapes over a drifting textured background: uint8 (n, H, W, 3)."""
    h, w = size
    tex = R.fbm(rng, 128, 3, 3)[..., None] * rng.uniform(0.1, 0.25, 3) + rng.uniform(0.2, 0.8, 3)
    cam = R.camera_path(rng, n, 128, travel=1.0, zoom=(0.9, 1.1), rot=0.3)
    frames = R.sample_texture(np.clip(tex, 0, 1).astype(np.float32), cam, h, w, 64.0 / min(h, w))
    yy, xx = R.screen_grid(h, w)
    t = np.arange(n, dtype=np.float32)
    for _ in range(rng.integers(2, 5)):
        p0, vel = rng.uniform(0.2, 0.8, 2) * [h, w], rng.normal(0, 0.02, 2) * min(h, w)
        pos = p0[None] + t[:, None] * vel[None]
        pos = np.abs((pos + [h, w]) % (2 * np.array([h, w])) - [h, w])  # bounce off the borders
        r, spin, ang0 = rng.uniform(0.08, 0.2) * min(h, w), rng.normal(0, 0.08), rng.uniform(0, np.pi)
        dy, dx = yy[None] - pos[:, 0, None, None], xx[None] - pos[:, 1, None, None]
        ang = (ang0 + spin * t)[:, None, None]
        u, v = np.cos(ang) * dx + np.sin(ang) * dy, -np.sin(ang) * dx + np.cos(ang) * dy
        kind = rng.integers(3)
        inside = (np.hypot(u, v) < r) if kind == 0 else (np.maximum(abs(u), abs(v)) < r * 0.8) if kind == 1 \
            else ((v > -r * 0.5) & (v < r * 0.9 - 1.7 * abs(u)))
        stripes = 0.5 + 0.5 * np.sign(np.sin(u * rng.uniform(0.4, 1.2)))
        c1, c2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        col = c1 * stripes[..., None] + c2 * (1 - stripes[..., None])
        R.paint(frames, inside.astype(np.float32), col.astype(np.float32))
    return R.to_uint8(frames, rng, 0.01)


def write_generic(root: Path, rng, num_videos: int = 16, num_frames: int = 64, size=(64, 64), fps: int = 8) -> Path:
    """The generic (non-endoscopic) video domain: ``generic/shapes_NNN.mp4``."""
    from endolib.data.io import write_video
    out = Path(root) / "generic"
    for i in tqdm(range(num_videos), desc="generic", leave=False):
        write_video(out / f"shapes_{i + 1:03d}.mp4", shapes_video(rng, num_frames, size), fps=fps)
    return out
