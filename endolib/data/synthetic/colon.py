"""Synthetic colonoscopy videos: mucosa with vessels and folds, a dark lumen, speculars, polyps with pixel masks.

Two polyp kinds, told apart by colour, outline and surface (as KUMC's two classes are):
- ``adenomatous``: red, lobulated outline, pitted (textured) surface, raised dome;
- ``hyperplastic``: pale pink-white, smooth round outline, flat, slightly translucent.
Videos without a polyp carry distractors instead (bubbles, mucus, reddened patches), so "is there a
polyp" cannot be answered from colour statistics alone.
"""
from __future__ import annotations

import numpy as np

from endolib.data.synthetic import render as R

POLYP_KINDS = ("adenomatous", "hyperplastic")
TEX = 256  # texture side (texture pixels); one 128-px frame shows about half of it


def _palette(rng):
    base = np.array([0.80, 0.45, 0.38]) + rng.uniform(-0.07, 0.07, 3)
    vessel = np.array([0.55, 0.12, 0.14]) + rng.uniform(-0.05, 0.05, 3)
    return np.clip(base, 0, 1), np.clip(vessel, 0, 1)


def _polyp_look(rng, kind: str) -> dict:
    if kind == "adenomatous":
        rgb = np.array([0.78, 0.25, 0.22]) + rng.uniform(-0.06, 0.06, 3)
        lobes = [(k, rng.uniform(0.08, 0.16), rng.uniform(0, 2 * np.pi)) for k in (3, 5)]
        return dict(rgb=rgb, lobes=lobes, dome=0.75, squash=rng.uniform(0.8, 1.0), alpha=1.0, pits=0.35)
    if kind == "hyperplastic":
        rgb = np.array([0.95, 0.78, 0.72]) + rng.uniform(-0.04, 0.04, 3)
        lobes = [(2, rng.uniform(0.0, 0.05), rng.uniform(0, 2 * np.pi))]
        return dict(rgb=rgb, lobes=lobes, dome=0.35, squash=rng.uniform(0.6, 0.85), alpha=0.85, pits=0.0)
    raise ValueError(f"unknown polyp kind {kind!r}; expected one of {POLYP_KINDS}.")


def _draw_polyp(frames, yy, xx, center, radius, look, rng) -> np.ndarray:
    """Draw one polyp per frame in place; returns its mask (T, H, W) bool."""
    rgb = look["rgb"].astype(np.float32)
    if look["pits"] > 0:  # pit pattern fixed to the polyp (moves with it)
        k = 2 * np.pi / np.maximum(radius[:, None, None] * 0.35, 1.0)
        u, v = (yy[None] - center[:, 0, None, None]) * k, (xx[None] - center[:, 1, None, None]) * k
        pits = (np.sin(u + 1.3) * np.sin(v + 0.4) > 0.35).astype(np.float32)
        rgb = rgb * (1 - look["pits"] * pits)[..., None]
    return R.draw_blob(frames, yy, xx, center, radius, rgb, lobes=look["lobes"], squash=look["squash"],
                       angle=float(rng.uniform(0, np.pi)), dome=look["dome"], alpha=look["alpha"])


def _distractors(frames, yy, xx, cam, rng, h, w, px):
    """Bubbles, mucus flecks and reddened patches fixed to the mucosa."""
    n = len(frames)
    for _ in range(rng.integers(2, 6)):
        c = R.to_screen(cam, rng.uniform(0, TEX, 2), TEX, h, w, px)
        r = np.full(n, rng.uniform(0.02, 0.05) * min(h, w), np.float32) / cam["scale"]
        kind = rng.integers(3)
        if kind == 0:  # bubble: faint bright disc with a rim
            R.draw_blob(frames, yy, xx, c, r, np.array([1.0, 0.97, 0.95]), dome=0.0, alpha=0.35)
        elif kind == 1:  # mucus fleck
            R.draw_blob(frames, yy, xx, c, r * 0.7, np.array([0.95, 0.9, 0.6]), dome=0.2, alpha=0.6,
                        lobes=[(4, 0.3, rng.uniform(0, 6))])
        else:  # erythema: flat darker-red patch, no dome
            R.draw_blob(frames, yy, xx, c, r * 2.5, np.array([0.62, 0.18, 0.18]), dome=0.0, alpha=0.35)


def render_colonoscopy(rng: np.random.Generator, n_frames: int, size=(64, 64), polyp: str | None = None,
                       distractors: bool = True, travel: float = 0.25, noise: float = 0.01) -> dict:
    """Render one colonoscopy video.

    Returns dict(frames uint8 (T, H, W, 3), mask bool (T, H, W) (the polyp's visible pixels, all False
    without one), kind (str or None)). The polyp sits on the mucosa where the camera looks at mid-video
    and moves with it; it may leave the view briefly when the camera wanders (``travel``).
    """
    h, w = size
    px = 128.0 / min(h, w)  # keep the look independent of the output size
    base, vessel = _palette(rng)
    tex = R.tissue_texture(rng, TEX, base, vessel, vessels=rng.uniform(0.4, 0.9), folds=rng.uniform(0.15, 0.45))
    spots = np.clip((R.periodic_noise(rng, TEX, 40) - 2.0) * 2.5, 0, 1)[..., None]
    cam = R.camera_path(rng, n_frames, TEX, travel=travel, zoom=(0.75, 1.3), rot=0.5, shake=0.3)
    both = R.sample_texture(np.concatenate([tex, spots], -1), cam, h, w, px)
    frames, spec = both[..., :3].copy(), both[..., 3]
    yy, xx = R.screen_grid(h, w)
    lumen = R.smooth_curve(rng, n_frames, 3)[:, None] * 0.3 * np.array([h, w]) + np.array([h, w]) / 2
    lumen = lumen + rng.uniform(-0.25, 0.25, 2) * np.array([h, w])
    d2 = (yy[None] - lumen[:, 0, None, None]) ** 2 + (xx[None] - lumen[:, 1, None, None]) ** 2
    d2 = d2 / (0.2 * min(h, w)) ** 2
    frames *= (1 - 0.85 * np.exp(-d2))[..., None]  # dark lumen
    if distractors:
        _distractors(frames, yy, xx, cam, rng, h, w, px)
    mask = np.zeros((n_frames, h, w), bool)
    if polyp is not None:
        look = _polyp_look(rng, polyp)
        anchor = cam["center"][n_frames // 2] + rng.uniform(-0.15, 0.15, 2) * min(h, w) * px
        center = R.to_screen(cam, anchor, TEX, h, w, px)
        radius = rng.uniform(0.13, 0.22) * min(h, w) / cam["scale"]
        mask = _draw_polyp(frames, yy, xx, center, radius, look, rng)
    R.specular(frames, spec * (0.75 + 0.25 * np.sin(np.arange(n_frames) * 0.7))[:, None, None])
    R.optics(frames, fov=rng.uniform(1.05, 1.3), vignette=0.5)
    fov = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)
    return dict(frames=R.to_uint8(frames, rng, noise), mask=mask & (fov < 1.0)[None], kind=polyp)


def mask_to_boxes(mask: np.ndarray) -> list[np.ndarray]:
    """Per-frame xyxy boxes (pixel edges: x1 = last column + 1) of a mask (T, H, W); (0, 4) where empty."""
    out = []
    for m in mask:
        ys, xs = np.nonzero(m)
        out.append(np.zeros((0, 4), np.float32) if len(ys) == 0 else
                   np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32))
    return out
