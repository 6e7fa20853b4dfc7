"""Render a surgical video (laparoscopic or microscope view) from a per-second schedule of tools, verbs and targets.

A *world* (``endolib.data.synthetic.worlds``) gives the tissue palette, static anatomy painted into
the texture, dynamic anatomy ("cue" objects whose visibility follows the phase script) and the
target anchors instruments work on. A *schedule* (``endolib.data.synthetic.scripts``) says, per
frame, what each hand holds and does (tool, verb, target) and how visible each cue object is.
Instruments are shaded rods entering from a port outside the view; their tip shape and colour tell
the tool, their motion tells the verb (grasp: still, retract: pulling away, dissect: jitter,
coagulate: glow + smoke, clip/cut: jaws opening and closing, irrigate: a jet, aspirate: at the fluid).
"""
from __future__ import annotations

import numpy as np

from endolib.data.synthetic import render as R

TEX = 256
# tool look: tip colour, jaws kind, shaft colour, shaft width (fraction of the frame's short side)
TOOLS = {
    "grasper": dict(tip=(0.78, 0.78, 0.80), jaws="jaws", shaft=(0.12, 0.12, 0.13), width=0.085),
    "bipolar": dict(tip=(0.20, 0.40, 0.95), jaws="jaws", shaft=(0.12, 0.12, 0.13), width=0.08),
    "hook": dict(tip=(0.88, 0.88, 0.90), jaws="hook", shaft=(0.12, 0.12, 0.13), width=0.07),
    "scissors": dict(tip=(0.85, 0.68, 0.25), jaws="blades", shaft=(0.12, 0.12, 0.13), width=0.08),
    "clipper": dict(tip=(0.70, 0.70, 0.74), jaws="clip", shaft=(0.30, 0.30, 0.33), width=0.11),
    "irrigator": dict(tip=(0.15, 0.15, 0.15), jaws=None, shaft=(0.88, 0.88, 0.84), width=0.065),
    "needle_holder": dict(tip=(0.80, 0.80, 0.55), jaws="jaws", shaft=(0.12, 0.12, 0.13), width=0.075),
    "trocar": dict(tip=(0.55, 0.55, 0.6), jaws=None, shaft=(0.45, 0.45, 0.5), width=0.16),
    "knife": dict(tip=(0.92, 0.92, 0.95), jaws="blade", shaft=(0.70, 0.70, 0.72), width=0.04),
    "cannula": dict(tip=(0.85, 0.85, 0.60), jaws=None, shaft=(0.75, 0.75, 0.78), width=0.035),
    "phaco": dict(tip=(0.95, 0.80, 0.30), jaws=None, shaft=(0.80, 0.80, 0.82), width=0.06),
    "injector": dict(tip=(0.55, 0.75, 0.95), jaws=None, shaft=(0.90, 0.90, 0.92), width=0.07),
    "forceps": dict(tip=(0.85, 0.85, 0.88), jaws="jaws", shaft=(0.75, 0.75, 0.78), width=0.04),
}
VERB_MOTION = {  # (jitter amplitude, pull amplitude, jaw opening pattern) in frame units
    "grasp": (0.01, 0.0, "closed"), "retract": (0.01, 0.14, "closed"), "dissect": (0.035, 0.0, "flutter"),
    "coagulate": (0.02, 0.0, "closed"), "clip": (0.015, 0.0, "snap"), "cut": (0.015, 0.0, "snap"),
    "aspirate": (0.02, 0.0, "closed"), "irrigate": (0.01, 0.0, "closed"), "pack": (0.02, 0.08, "open"),
    "null_verb": (0.03, 0.0, "closed"), "": (0.03, 0.0, "closed"),
}


def _rot(v: np.ndarray, ang) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]], 1)


def _jaw_open(pattern: str, n: int, rng) -> np.ndarray:
    t = np.arange(n)
    if pattern == "flutter":
        return 0.3 + 0.3 * (rng.uniform(size=n) > 0.5)
    if pattern == "snap":
        return np.where((t + rng.integers(2)) % 2 == 0, 0.75, 0.05)
    return np.full(n, {"open": 0.6, "closed": 0.08}.get(pattern, 0.1))


def draw_tool(frames, yy, xx, tool: str, entry, tip, jaw_open, s: float) -> None:
    """Draw one instrument in place on frames (T', H, W, 3): shaft from ``entry`` (2,) to tip ``(T', 2)``."""
    look = TOOLS[tool]
    d = tip - entry[None]
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-3)
    w = look["width"] * s
    neck = tip - d * 0.12 * s
    start = np.broadcast_to(entry, tip.shape).astype(np.float32)
    R.draw_rod(frames, yy, xx, start, neck, np.full(len(tip), w), look["shaft"], shine=0.4)
    R.draw_rod(frames, yy, xx, neck, tip, np.full(len(tip), 0.8 * w), look["tip"], shine=0.5)
    jaws, jl, jw = look["jaws"], 0.13 * s, np.full(len(tip), max(0.32 * w, 1.2))
    if jaws in ("jaws", "blades", "clip"):
        spread = 0.5 * jaw_open if jaws != "clip" else 0.35 * jaw_open + 0.15
        for sign in (-1, 1):
            end = tip + _rot(d, sign * spread) * jl
            R.draw_rod(frames, yy, xx, tip, end, jw * (1.6 if jaws == "clip" else 1), look["tip"], shine=0.6)
        if jaws == "clip":  # the loaded clip between the jaws
            R.draw_rod(frames, yy, xx, tip, tip + d * 0.7 * jl, jw, (0.55, 0.35, 0.75), shine=0.6)
    elif jaws == "hook":
        bend = tip + d * 0.5 * jl
        R.draw_rod(frames, yy, xx, tip, bend, jw, look["tip"], shine=0.6)
        R.draw_rod(frames, yy, xx, bend, bend + _rot(d, np.pi / 2) * 0.45 * jl, jw, look["tip"], shine=0.6)
    elif jaws == "blade":
        R.draw_rod(frames, yy, xx, tip, tip + d * 1.2 * jl, jw * 2.2, look["tip"], shine=0.8)


def _tip_path(rng, anchor_scr, verb, n, s, h, w) -> np.ndarray:
    """Tip positions (n, 2) for a verb acting at a target's screen position (n, 2)."""
    jit, pull, _ = VERB_MOTION.get(verb, VERB_MOTION[""])
    base = anchor_scr + rng.uniform(-0.04, 0.04, 2) * s
    if verb in ("null_verb", ""):  # idle tool: hovering away from the anatomy
        base = np.array([h, w]) * rng.uniform(0.2, 0.8, 2) + 0.1 * s * np.stack(
            [R.smooth_curve(rng, n, max(2, n // 6)), R.smooth_curve(rng, n, max(2, n // 6))], 1)
    ramp = np.linspace(0, 1, n)[:, None] * rng.uniform(0.5, 1.0)
    away = rng.normal(size=2)
    away /= np.linalg.norm(away) + 1e-6
    tip = base + pull * s * ramp * away + jit * s * rng.standard_normal((n, 2))
    return np.clip(tip, [0.12 * h, 0.12 * w], [0.88 * h, 0.88 * w]).astype(np.float32)


def render_surgery(rng: np.random.Generator, world: dict, schedule: dict, size=(64, 64), noise: float = 0.01) -> dict:
    """Render ``schedule['n']`` frames of ``world``; returns dict(frames uint8 (T, H, W, 3), tools_visible (T, K) bool,
    cues_visible {object: (T,) bool}).

    ``tools_visible[t, k]`` is True when the k-th entry of ``schedule['tool_names']`` was drawn in frame t;
    a cue object is visible when mostly opaque with its centre inside the frame.
    """
    from endolib.data.synthetic.worlds import build_texture, cue_positions
    n, (h, w) = schedule["n"], size
    s, px = float(min(h, w)), 128.0 / min(h, w)
    tex, anchors = build_texture(rng, world, TEX, px)
    cam_kw = world.get("camera", {})
    cam = R.camera_path(rng, n, TEX, travel=cam_kw.get("travel", 0.06), zoom=cam_kw.get("zoom", (0.85, 1.15)),
                        rot=cam_kw.get("rot", 0.15), shake=cam_kw.get("shake", 0.4))
    cam["center"] += anchors["__center__"] - cam["center"].mean(0)  # keep the operative field in view
    if "focus" in schedule:  # follow the working area of each phase, smoothly
        target = np.stack([anchors[a] for a in schedule["focus"]])
        cam["center"] = _smooth(target, 9) + 0.5 * (cam["center"] - cam["center"].mean(0))
        cam["scale"] = cam["scale"] * _smooth(schedule["zoom"][:, None], 9)[:, 0]
    frames = R.sample_texture(tex, cam, h, w, px)
    yy, xx = R.screen_grid(h, w)
    scr = {k: R.to_screen(cam, v, TEX, h, w, px) for k, v in anchors.items()}
    positions = cue_positions(world, schedule, scr, s)
    _draw_cues(frames, yy, xx, world, schedule, positions, cam["scale"], s)
    cues_visible = {k: (schedule["cues"][k] > 0.5) & (pos >= 0).all(1) & (pos < [h, w]).all(1)
                    for k, pos in positions.items()}  # centre in view and mostly opaque
    names = schedule["tool_names"]
    visible = np.zeros((n, len(names)), bool)
    for hand in schedule["hands"]:
        port = np.array([h / 2, w / 2]) + 0.95 * s * np.array([np.sin(hand["port"]), np.cos(hand["port"])])
        for seg in hand["segments"]:  # (start, stop, tool, verb, target)
            a, b, tool, verb, target = seg
            if not tool:
                continue
            idx = np.arange(a, b)
            tip = _tip_path(rng, scr.get(target, scr["__center__"])[idx], verb, len(idx), s, h, w)
            sub = frames[idx]
            jaws = _jaw_open(VERB_MOTION.get(verb, VERB_MOTION[""])[2], len(idx), rng)
            draw_tool(sub, yy, xx, tool, port, tip, jaws, s)
            _verb_effects(sub, yy, xx, verb, tool, port, tip, s, rng)
            frames[idx] = sub
            if tool in names:
                visible[idx, names.index(tool)] = True
    smoke = schedule.get("smoke")
    if smoke is not None:  # surgical smoke: a grey veil
        frames[:] = frames * (1 - 0.35 * smoke[:, None, None, None]) + 0.35 * smoke[:, None, None, None] * 0.8
    R.optics(frames, fov=world.get("fov", 1.35), vignette=world.get("vignette", 0.45), gain=1.1)
    return dict(frames=R.to_uint8(frames, rng, noise), tools_visible=visible, cues_visible=cues_visible)


def _draw_cues(frames, yy, xx, world, schedule, positions, scale, s) -> None:
    """Draw the dynamic anatomy in place, each object only in the frames where it is visible."""
    for obj, pos in positions.items():
        spec, alpha = world["cues"][obj], schedule["cues"][obj]
        on = np.flatnonzero(alpha > 0.01)
        if len(on):
            sub = frames[on]
            rad = np.full(len(on), spec["radius"] * s, np.float32) / scale[on]
            R.draw_blob(sub, yy, xx, pos[on], rad, np.asarray(spec["rgb"]), lobes=spec.get("lobes", ()),
                        squash=spec.get("squash", 1.0), angle=spec.get("angle", 0.0), dome=spec.get("dome", 0.5),
                        alpha=alpha[on])
            frames[on] = sub


def _smooth(x: np.ndarray, win: int) -> np.ndarray:
    """Moving average over time of x (T, D) with edge padding (same length)."""
    pad = np.concatenate([np.repeat(x[:1], win // 2, 0), x, np.repeat(x[-1:], win // 2, 0)])
    k = np.ones(win, np.float32) / win
    return np.stack([np.convolve(pad[:, d], k, mode="valid") for d in range(x.shape[1])], 1).astype(np.float32)


def _verb_effects(sub, yy, xx, verb, tool, port, tip, s, rng) -> None:
    """Visible consequences of a verb near the tip: glow and smoke (coagulate), a jet (irrigate)."""
    n = len(tip)
    if verb == "coagulate" or (verb == "dissect" and tool == "hook"):
        glow = rng.uniform(0.3, 1.0, n).astype(np.float32)
        R.draw_blob(sub, yy, xx, tip, np.full(n, 0.05 * s, np.float32), np.array([1.0, 0.85, 0.55]), dome=0.0,
                    alpha=0.7 * glow)
        puff = tip + np.array([-0.08, 0.03]) * s
        R.draw_blob(sub, yy, xx, puff, np.full(n, 0.12 * s, np.float32), np.array([0.85, 0.85, 0.85]), dome=0.0,
                    alpha=0.35 * glow)
    elif verb == "irrigate":
        d = tip - port[None]
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-3)
        R.draw_rod(sub, yy, xx, tip, tip + d * 0.3 * s, np.full(n, 0.05 * s), (0.75, 0.85, 1.0), shine=0.8)
