"""Phase scripts of the synthetic procedures and the per-frame schedule (tools, verbs, targets, anatomy) they produce.

A script is a list of phases; each phase has a relative duration, what the left and right hands may
do (``"tool,verb,target"`` with a weight and an optional window of phase progress), how often a
hand is empty, and how each cue object's visibility (and position) evolves through it. Durations
vary per video (x0.55..1.6), actions last 2..10 s, hands rest at random: the phase is readable from
tools, their actions and the state of the anatomy, but never from one cue alone.
"""
from __future__ import annotations

import numpy as np

# (triplet, weight[, (progress_from, progress_to)])
CHOLE_PHASES = [
    dict(w=0.9, idle=(0.35, 0.55), left=[("grasper,grasp,omentum", 2), ("grasper,retract,liver", 1),
                                         ("grasper,null_verb,null_target", 2)],
         right=[("hook,dissect,omentum", 1), ("hook,null_verb,null_target", 1), ("bipolar,null_verb,null_target", .3)]),
    dict(w=1.4, idle=(0.1, 0.15), left=[("grasper,retract,gallbladder", 4), ("grasper,grasp,gallbladder", 1),
                                        ("grasper,retract,cystic_duct", 1)],
         right=[("hook,dissect,cystic_duct", 2), ("hook,dissect,cystic_artery", 2), ("hook,dissect,cystic_plate", 1),
                ("hook,coagulate,cystic_pedicle", 1), ("bipolar,coagulate,blood_vessel", .3),
                ("irrigator,aspirate,fluid", .3)]),
    dict(w=0.9, idle=(0.1, 0.15), left=[("grasper,retract,gallbladder", 3), ("grasper,grasp,cystic_duct", 1)],
         right=[("clipper,clip,cystic_duct", 2, (0, .6)), ("clipper,clip,cystic_artery", 2, (0, .6)),
                ("scissors,cut,cystic_duct", 2, (.5, 1)), ("scissors,cut,cystic_artery", 2, (.5, 1))]),
    dict(w=1.4, idle=(0.1, 0.15), left=[("grasper,retract,gallbladder", 4), ("grasper,grasp,gallbladder", 1)],
         right=[("hook,dissect,gallbladder", 3), ("hook,coagulate,liver", 1), ("hook,dissect,cystic_plate", 1),
                ("bipolar,coagulate,liver", .4)]),
    dict(w=0.8, idle=(0.1, 0.6), left=[("grasper,pack,gallbladder", 3), ("grasper,grasp,specimen_bag", 2)],
         right=[("grasper,grasp,specimen_bag", 1), ("grasper,null_verb,null_target", .5)]),
    dict(w=1.0, idle=(0.4, 0.1), left=[("grasper,retract,liver", 2), ("grasper,null_verb,null_target", 1)],
         right=[("irrigator,irrigate,liver", 2), ("irrigator,aspirate,fluid", 2), ("bipolar,coagulate,liver", 2),
                ("bipolar,coagulate,blood_vessel", 1), ("irrigator,irrigate,abdominal_wall_cavity", .5)]),
    dict(w=0.8, idle=(0.1, 0.7), left=[("grasper,grasp,specimen_bag", 4)],
         right=[("bipolar,grasp,specimen_bag", .5), ("grasper,null_verb,null_target", .5)]),
]
# camera framing per phase: (anchor the camera centres on, zoom: > 1 wider view)
CHOLE_FRAMING = [("__center__", 1.35), ("cystic_duct", 0.8), ("cystic_duct", 0.72), ("gallbladder", 0.9),
                 ("specimen_bag", 1.0), ("fluid", 1.1), ("__center__", 1.3)]
# cue object -> per phase (alpha at phase start, alpha at phase end)
CHOLE_CUES = {
    "liver_bed": [(0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 1)],
    "duct": [(.2, .2), (.2, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1)],
    "artery": [(.2, .2), (.2, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1)],
    "clips": [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 1), (1, 1)],
    "calot_fat": [(1, 1), (1, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)],
    "gallbladder": [(1, 1), (1, 1), (1, 1), (1, 1), (1, 0), (0, 0), (0, 0)],
    "fluid": [(0, 0), (0, .3), (0, 0), (0, 0), (0, 0), (1, .15), (0, 0)],
    "bag": [(0, 0), (0, 0), (0, 0), (0, 0), (1, 1), (0, 0), (1, 1)],
}
# cue object -> per phase (offset at start, offset at end), (dy, dx) in units of the frame's short side
CHOLE_MOVES = {
    "gallbladder": [((0, 0), (0, 0))] * 3 + [((0, 0), (-.12, -.05)), ((-.12, -.05), (-.05, -.2))]
    + [((0, 0), (0, 0))] * 2,
    "bag": [((0, 0), (0, 0))] * 6 + [((0, 0), (-.45, .4))],
}
TROCAR_PHASE = dict(w=0.5, idle=(0.2, 1.0), left=[("trocar,null_verb,abdominal_wall_cavity", 1)], right=[])
TROCAR_FRAMING = ("abdominal_wall_cavity", 1.4)

HYSTER_PHASES = [
    dict(w=0.6, idle=(0.3, 0.6), left=[("grasper,grasp,uterus", 2), ("grasper,null_verb,null_target", 1)],
         right=[("bipolar,null_verb,null_target", 1)]),
    dict(w=1.5, idle=(0.1, 0.1), left=[("grasper,retract,ligament", 2), ("grasper,retract,uterus", 1)],
         right=[("bipolar,coagulate,ligament", 2), ("scissors,cut,ligament", 2)]),
    dict(w=1.2, idle=(0.1, 0.1), left=[("grasper,retract,uterus", 2)],
         right=[("bipolar,coagulate,vessel", 3), ("scissors,cut,vessel", 1)]),
    dict(w=1.0, idle=(0.1, 0.1), left=[("grasper,retract,uterus", 2)], right=[("hook,coagulate,cuff", 3)]),
    dict(w=0.6, idle=(0.1, 0.7), left=[("grasper,retract,uterus", 3)], right=[("grasper,grasp,uterus", 1)]),
    dict(w=1.4, idle=(0.2, 0.05), left=[("grasper,grasp,cuff", 2)], right=[("needle_holder,grasp,cuff", 3)]),
    dict(w=0.6, idle=(0.4, 0.05), left=[("grasper,null_verb,null_target", 1)],
         right=[("irrigator,irrigate,cuff", 2), ("irrigator,aspirate,fluid", 2)]),
]
HYSTER_FRAMING = [("__center__", 1.3), ("ligament", 0.85), ("vessel", 0.85), ("cuff", 0.8), ("uterus", 1.2),
                  ("cuff", 0.7), ("fluid", 1.0)]
HYSTER_CUES = {
    "cuff": [(0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 1)],
    "ligament": [(1, 1), (1, .2), (.2, .2), (.2, .2), (.2, .2), (.2, .2), (.2, .2)],
    "vessel": [(1, 1), (1, 1), (1, .3), (.3, .3), (.3, .3), (.3, .3), (.3, .3)],
    "uterus": [(1, 1), (1, 1), (1, 1), (1, 1), (1, 0), (0, 0), (0, 0)],
    "suture": [(0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 1), (1, 1)],
    "fluid": [(0, 0), (0, 0), (0, .4), (0, 0), (0, 0), (0, 0), (1, .1)],
}
HYSTER_MOVES = {"uterus": [((0, 0), (0, 0))] * 4 + [((0, 0), (-.1, .45))] + [((0, 0), (0, 0))] * 2}

# OphNet: (phase id in OPHNET_PHASES, weight, tool,verb,target choices for the working hand)
EYE_PHASES = [
    dict(id=6, w=0.7, idle=(0.6, 0.1), left=[("forceps,grasp,incision", 1)], right=[("knife,cut,incision", 1)]),
    dict(id=0, w=0.6, idle=(1.0, 0.1), left=[], right=[("cannula,irrigate,pupil", 1)]),
    dict(id=7, w=1.2, idle=(0.6, 0.05), left=[("cannula,null_verb,null_target", 1)],
         right=[("forceps,grasp,pupil", 1)]),
    dict(id=1, w=1.6, idle=(0.3, 0.05), left=[("cannula,dissect,lens", 1)], right=[("phaco,aspirate,lens", 1)]),
    dict(id=8, w=1.0, idle=(0.7, 0.05), left=[], right=[("cannula,aspirate,lens", 1)]),
    dict(id=4, w=0.8, idle=(0.5, 0.05), left=[("cannula,retract,pupil", 1)], right=[("injector,pack,lens", 1)]),
    dict(id=11, w=0.6, idle=(0.8, 0.05), left=[], right=[("phaco,aspirate,pupil", 1)]),
    dict(id=5, w=0.5, idle=(0.6, 0.1), left=[("forceps,grasp,incision", 1)], right=[("cannula,irrigate,incision", 1)]),
]
EYE_GAP = dict(id=2, w=0.15, idle=(1.0, 1.0), left=[], right=[])  # "Step Interval": no instrument
EYE_CUES = {  # per phase of EYE_PHASES (a gap keeps the state it follows)
    "iris": [(1, 1)] * 8, "pupil": [(1, 1)] * 8,
    "rhexis": [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1)],
    "nucleus": [(1, 1), (1, 1), (1, 1), (1, 0), (0, 0), (0, 0), (0, 0), (0, 0)],
    "cortex": [(.6, .6), (.6, .6), (.6, .6), (.6, .6), (.6, 0), (0, 0), (0, 0), (0, 0)],
    "gel": [(0, 0), (0, .5), (.5, .5), (.2, .2), (0, 0), (.5, .5), (.5, 0), (0, 0)],
    "iol": [(0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 1)],
    "wound": [(0, 1)] + [(1, 1)] * 7,
}


def phase_lengths(rng, weights, total: int, min_len: int = 3) -> np.ndarray:
    """Random phase durations (frames) summing to ``total``: weight x U(0.55, 1.6), at least ``min_len`` each."""
    w = np.asarray(weights, float) * rng.uniform(0.55, 1.6, len(weights))
    if total < len(w):
        raise ValueError(f"a video of {total} frames cannot hold {len(w)} phases; ask for at least {len(w)} frames.")
    min_len = min(min_len, total // len(w))
    lens = min_len + np.floor(w / w.sum() * (total - min_len * len(w))).astype(int)
    lens[np.argmax(w)] += total - lens.sum()
    return lens


def _curve(spec, phase, prog):
    """Per-frame values of a (start, end) per-phase spec, interpolated by progress in the phase."""
    a = np.array([np.asarray(spec[p][0], float) for p in phase])
    b = np.array([np.asarray(spec[p][1], float) for p in phase])
    prog = prog.reshape(-1, *([1] * (a.ndim - 1)))
    return (a + (b - a) * prog).astype(np.float32)


def _hand_segments(rng, phases, lens, script, side: int) -> list:
    """(start, stop, tool, verb, target) action segments of one hand across all phases."""
    segs, t = [], 0
    for p, n in zip(phases, lens):
        spec = script[p]
        choices = spec["left" if side == 0 else "right"]
        end, pos = t + n, t
        while pos < end:
            d = int(min(rng.integers(2, 11), end - pos))
            prog = (pos - t + d / 2) / n
            ok = [c for c in choices if len(c) < 3 or c[2][0] <= prog <= c[2][1]] or choices
            if not ok or rng.uniform() < spec["idle"][side]:
                segs.append((pos, pos + d, "", "", ""))
            else:
                w = np.array([c[1] for c in ok], float)
                tool, verb, target = ok[rng.choice(len(ok), p=w / w.sum())][0].split(",")
                segs.append((pos, pos + d, tool, verb, target))
            pos += d
        t = end
    return segs


def build_schedule(rng, script, cues, moves, n: int, tool_names, order=None, framing=None) -> dict:
    """Per-frame schedule of a video of ``n`` frames following ``script`` (phases in ``order``, default 0..P-1).

    ``framing`` (per phase: anchor name, zoom) makes the camera move to the phase's working area, as a
    surgeon's assistant does; without it the camera wanders around the scene centre.
    """
    order = list(range(len(script))) if order is None else list(order)
    lens = phase_lengths(rng, [script[p]["w"] for p in order], n)
    phase = np.repeat(order, lens)
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    prog = (np.arange(n) - starts + 0.5) / np.repeat(lens, lens)
    sched = dict(n=n, phase=phase, tool_names=list(tool_names),
                 cues={k: np.clip(_curve(v, phase, prog), 0, 1) for k, v in cues.items()},
                 moves={k: _curve(v, phase, prog) for k, v in moves.items()})
    ports = (rng.uniform(2.4, 3.6), rng.uniform(-0.6, 0.6))  # left hand from the left, right hand from the right
    sched["hands"] = [dict(port=ports[s], segments=_hand_segments(rng, order, lens, script, s)) for s in (0, 1)]
    smoke = np.zeros(n, np.float32)
    for hand in sched["hands"]:
        for a, b, tool, verb, _ in hand["segments"]:
            if verb == "coagulate" or (tool == "hook" and verb == "dissect"):
                smoke[a:b] = np.maximum(smoke[a:b], rng.uniform(0.2, 0.6))
    sched["smoke"] = smoke
    if framing is not None:
        sched["focus"] = [framing[p][0] for p in phase]
        sched["zoom"] = np.array([framing[p][1] for p in phase], np.float32) * rng.uniform(0.9, 1.1)
    return sched


def frame_triplets(sched: dict) -> list[list[tuple[str, str, str]]]:
    """Per frame, the (tool, verb, target) of every hand that holds an instrument."""
    out = [[] for _ in range(sched["n"])]
    for hand in sched["hands"]:
        for a, b, tool, verb, target in hand["segments"]:
            if tool:
                for t in range(a, b):
                    out[t].append((tool, verb, target))
    return out
