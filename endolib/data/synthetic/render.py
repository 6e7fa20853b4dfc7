"""Vectorised numpy drawing primitives of the synthetic endoscopy world: noise, tissue textures, camera, shapes.

Everything works on float32 RGB in [0, 1] and on whole videos at once: frames are ``(T, H, W, 3)``,
per-frame object parameters are ``(T, ...)`` arrays, so a video renders without a Python loop per frame.
A texture is periodic (it tiles), so a camera can wander over it forever without reaching an edge.
"""
from __future__ import annotations

import numpy as np


def periodic_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise of unit std that tiles: ``(size, size)`` float32 from a ``cells``² random lattice."""
    g = rng.standard_normal((cells, cells)).astype(np.float32)
    x = np.arange(size, dtype=np.float32) * cells / size
    i0 = np.floor(x).astype(np.int64)
    f = x - i0
    f = f * f * (3 - 2 * f)  # smoothstep: no visible lattice creases
    i1 = (i0 + 1) % cells
    rows = g[i0] * (1 - f)[:, None] + g[i1] * f[:, None]  # (size, cells)
    out = rows[:, i0] * (1 - f)[None] + rows[:, i1] * f[None]
    return (out - out.mean()) / (out.std() + 1e-6)


def fbm(rng: np.random.Generator, size: int, base_cells: int = 4, octaves: int = 4, gain: float = 0.55) -> np.ndarray:
    """Fractal sum of periodic noise octaves, unit std: ``(size, size)`` float32."""
    out = np.zeros((size, size), np.float32)
    for o in range(octaves):
        cells = min(base_cells * 2 ** o, size)
        out += gain ** o * periodic_noise(rng, size, cells)
    return out / (out.std() + 1e-6)


def tissue_texture(rng: np.random.Generator, size: int, base_rgb, vessel_rgb, vessels: float = 0.7,
                   mottling: float = 0.18, folds: float = 0.0) -> np.ndarray:
    """Mucosa-like tiling texture ``(size, size, 3)``: mottled base colour, a network of vessels, optional folds.

    Vessels are the zero-crossings of band-limited noise (curvy, branching lines) at two scales.
    """
    base = np.asarray(base_rgb, np.float32)
    tex = base * (1 + mottling * fbm(rng, size, 4, 4))[..., None]
    if folds > 0:  # broad soft ridges, shaded like haustral folds
        ridge = np.abs(periodic_noise(rng, size, 3))
        tex *= (1 - folds * np.exp(-(ridge / 0.25) ** 2))[..., None]
    vcol = np.asarray(vessel_rgb, np.float32)
    for cells, width, strength in ((5, 0.06, vessels), (12, 0.045, 0.6 * vessels)):
        v = periodic_noise(rng, size, cells) + 0.35 * periodic_noise(rng, size, cells * 3)
        gate = np.clip(periodic_noise(rng, size, max(cells // 2, 2)) + 0.3, 0, 1)  # vessels fade in and out
        line = (np.exp(-(v / width) ** 2) * gate * strength)[..., None]
        tex = tex * (1 - line) + vcol * line
    return np.clip(tex, 0, 1).astype(np.float32)


def smooth_curve(rng: np.random.Generator, n: int, knots: int) -> np.ndarray:
    """A smooth random curve of ``n`` samples in about [-1, 1] through ``knots`` random values."""
    knots = max(int(knots), 2)
    vals = rng.uniform(-1, 1, knots + 1).astype(np.float32)
    x = np.linspace(0, knots, n, dtype=np.float32)
    i0 = np.minimum(np.floor(x).astype(np.int64), knots - 1)
    f = x - i0
    f = f * f * (3 - 2 * f)
    return vals[i0] * (1 - f) + vals[i0 + 1] * f


def camera_path(rng: np.random.Generator, n: int, tex_size: int, travel: float = 1.0, zoom=(0.8, 1.25),
                rot: float = 0.4, shake: float = 0.0) -> dict:
    """Smooth camera motion over a texture: centre ``(n, 2)`` (tex px, y/x), scale ``(n,)``, angle ``(n,)`` (rad).

    ``travel`` is the drift in texture sizes over the whole path; ``shake`` adds a small per-frame jitter.
    """
    knots = max(2, n // 12)
    start = rng.uniform(0, tex_size, 2)
    drift = np.stack([smooth_curve(rng, n, knots), smooth_curve(rng, n, knots)], 1) * travel * tex_size * 0.25
    center = start[None] + drift + shake * rng.standard_normal((n, 2))
    z0, z1 = zoom
    scale = np.exp(np.log(z0) + (np.log(z1) - np.log(z0)) * (smooth_curve(rng, n, knots) + 1) / 2)
    angle = rng.uniform(-np.pi, np.pi) + rot * smooth_curve(rng, n, knots)
    return dict(center=center.astype(np.float32), scale=scale.astype(np.float32), angle=angle.astype(np.float32))


def screen_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``yy, xx`` ``(h, w)`` float32."""
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32) + 0.5, np.arange(w, dtype=np.float32) + 0.5, indexing="ij")
    return yy, xx


def sample_texture(tex: np.ndarray, cam: dict, h: int, w: int, px_scale: float = 1.0) -> np.ndarray:
    """Render the camera's view of a tiling texture: ``(T, h, w, C)``, bilinear, wrapped.

    One screen pixel covers ``cam['scale'] * px_scale`` texture pixels (px_scale keeps the look the
    same at any output size).
    """
    size = tex.shape[0]
    yy, xx = screen_grid(h, w)
    ys, xs = (yy - h / 2)[None], (xx - w / 2)[None]
    s = (cam["scale"] * px_scale)[:, None, None]
    c, sn = np.cos(cam["angle"])[:, None, None], np.sin(cam["angle"])[:, None, None]
    tx = cam["center"][:, 1, None, None] + s * (c * xs - sn * ys)
    ty = cam["center"][:, 0, None, None] + s * (sn * xs + c * ys)
    x0, y0 = np.floor(tx), np.floor(ty)
    fx, fy = (tx - x0)[..., None], (ty - y0)[..., None]
    x0, y0 = x0.astype(np.int64) % size, y0.astype(np.int64) % size
    x1, y1 = (x0 + 1) % size, (y0 + 1) % size
    top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
    bot = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def to_screen(cam: dict, pt_tex, tex_size: int, h: int, w: int, px_scale: float = 1.0) -> np.ndarray:
    """Screen position ``(T, 2)`` (y, x) of a fixed texture point (nearest periodic copy)."""
    d = np.asarray(pt_tex, np.float32)[None] - cam["center"]
    d = (d + tex_size / 2) % tex_size - tex_size / 2
    s = (cam["scale"] * px_scale)[:, None]
    c, sn = np.cos(cam["angle"]), np.sin(cam["angle"])
    x = (c * d[:, 1] + sn * d[:, 0]) / s[:, 0]
    y = (-sn * d[:, 1] + c * d[:, 0]) / s[:, 0]
    return np.stack([y + h / 2, x + w / 2], 1).astype(np.float32)


def optics(frames: np.ndarray, fov: float = 1.0, vignette: float = 0.55, gain: float = 1.0) -> np.ndarray:
    """Apply endoscope optics in place: radial light fall-off and a circular field of view (black outside).

    ``fov`` is the circle radius in units of half the short side: 1.0 touches the edges, > 1.42 shows
    no black corners (a microscope-like full frame).
    """
    _, h, w, _ = frames.shape
    yy, xx = screen_grid(h, w)
    r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)
    light = gain * (1 - vignette * np.clip(r / max(fov, 1e-3), 0, 1.5) ** 2)
    edge = np.clip((fov - r) * min(h, w) / 2 + 0.5, 0, 1)  # 1-pixel soft rim
    frames *= (np.clip(light, 0, None) * edge)[None, ..., None]
    return frames


def paint(frames: np.ndarray, cover: np.ndarray, rgb) -> None:
    """Alpha-composite colour ``rgb`` ((3,) or (T, H, W, 3)) over frames in place with coverage ``(T, H, W)``."""
    a = cover[..., None]
    frames *= 1 - a
    frames += a * rgb


def segment_distance(yy, xx, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of every pixel to the segments a->b (a, b: ``(T, 2)`` y, x): (dist, position u in [0, 1]), (T, H, W)."""
    ab = (b - a)[:, :, None, None]
    py, px = yy[None] - a[:, 0, None, None], xx[None] - a[:, 1, None, None]
    l2 = np.maximum(ab[:, 0] ** 2 + ab[:, 1] ** 2, 1e-6)
    u = np.clip((py * ab[:, 0] + px * ab[:, 1]) / l2, 0, 1)
    return np.hypot(py - u * ab[:, 0], px - u * ab[:, 1]), u


def _window(frames, yy, xx, lo, hi):
    """Views of frames/yy/xx restricted to the pixel box [lo, hi) (y, x), clipped to the frame; None if empty."""
    h, w = yy.shape
    y0, x0 = max(int(np.floor(lo[0])), 0), max(int(np.floor(lo[1])), 0)
    y1, x1 = min(int(np.ceil(hi[0])) + 1, h), min(int(np.ceil(hi[1])) + 1, w)
    if y1 <= y0 or x1 <= x0:
        return None
    return frames[:, y0:y1, x0:x1], yy[y0:y1, x0:x1], xx[y0:y1, x0:x1], (slice(y0, y1), slice(x0, x1))


def draw_rod(frames, yy, xx, a, b, width, rgb, shine: float = 0.35) -> np.ndarray:
    """Draw a shaded cylinder from a to b (``(T, 2)`` each) of ``width`` px in place; returns its coverage (T, H, W)."""
    width = np.broadcast_to(np.asarray(width, np.float32).reshape(-1), (len(a),))
    pad = float(width.max()) / 2 + 1
    lo, hi = np.minimum(a.min(0), b.min(0)) - pad, np.maximum(a.max(0), b.max(0)) + pad
    full = np.zeros(frames.shape[:3], np.float32)
    win = _window(frames, yy, xx, lo, hi)
    if win is None:
        return full
    fr, wy, wx, (sy, sx) = win
    d, _ = segment_distance(wy, wx, a, b)
    half = width.reshape(-1, 1, 1) / 2
    cover = np.clip(half - d + 0.5, 0, 1)
    shade = np.sqrt(np.clip(1 - (d / np.maximum(half, 0.5)) ** 2, 0, 1))[..., None]
    col = np.asarray(rgb, np.float32) * (0.45 + 0.55 * shade) + shine * shade ** 8
    paint(fr, cover, col)
    full[:, sy, sx] = cover
    return full


def draw_blob(frames, yy, xx, center, radius, rgb, lobes=(), squash: float = 1.0, angle: float = 0.0,
              dome: float = 0.5, alpha: float = 1.0) -> np.ndarray:
    """Draw a shaded, lobed disc in place; returns its hard mask ``(T, H, W)`` bool (coverage > 0.5).

    center ``(T, 2)``, radius ``(T,)``; ``lobes`` = [(k, amplitude, phase), ...] perturbs the outline as
    r(θ) = r·(1 + Σ a·cos(kθ + φ)); ``squash`` < 1 flattens the disc along ``angle``.
    """
    reach = float(np.max(radius)) * (1 + sum(abs(a) for _, a, _ in lobes)) * max(1.0, 1.0 / squash) + 1
    mask = np.zeros(frames.shape[:3], bool)
    win = _window(frames, yy, xx, center.min(0) - reach, center.max(0) + reach)
    if win is None:
        return mask
    frames, yy, xx, (sy, sx) = win
    if np.ndim(rgb) > 1:
        rgb = rgb[:, sy, sx]
    dy = yy[None] - center[:, 0, None, None]
    dx = xx[None] - center[:, 1, None, None]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, (-s * dx + c * dy) / squash
    r = np.hypot(u, v)
    edge = np.ones_like(r)
    if lobes:
        theta = np.arctan2(v, u)
        for k, amp, ph in lobes:
            edge = edge + amp * np.cos(k * theta + ph)
    rad = radius[:, None, None] * edge
    cover = np.clip(rad - r + 0.5, 0, 1)
    h = np.sqrt(np.clip(1 - (r / np.maximum(rad, 0.5)) ** 2, 0, 1))  # dome height
    light = (1 - dome) + dome * h + 0.25 * dome * np.clip(-(u + v) / np.maximum(rad, 0.5), -1, 1) * h
    col = np.asarray(rgb, np.float32) * light[..., None] if np.ndim(rgb) == 1 else rgb * light[..., None]
    paint(frames, cover * np.asarray(alpha, np.float32).reshape(-1, 1, 1), col)
    mask[:, sy, sx] = cover > 0.5
    return mask


def specular(frames: np.ndarray, spots: np.ndarray, strength: float = 0.9) -> None:
    """Add white specular highlights in place; spots ``(T, H, W)`` in [0, 1]."""
    paint(frames, np.clip(spots * strength, 0, 1), np.ones(3, np.float32))


def to_uint8(frames: np.ndarray, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
    """Float [0, 1] frames -> uint8, with optional Gaussian sensor noise (std in [0, 1] units)."""
    if rng is not None and noise > 0:
        frames = frames + rng.normal(0, noise, frames.shape).astype(np.float32)
    return (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
