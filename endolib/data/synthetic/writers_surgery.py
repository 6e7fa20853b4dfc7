"""Write synthetic surgical videos in the official layouts of Cholec80, M2CAI16, AutoLaparo, OphNet2024, CholecT50.

Video ids follow each dataset's official split rules, so the loaders' split logic applies unchanged
(e.g. Cholec80 train videos are numbered within 1-32, val within 33-40, test within 41-80).
Videos are written at a low ``fps`` (default 1) in the official container; annotation frame
numbers refer to the written video's frames, exactly as the real files refer to their 25 fps frames.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from endolib.data.datasets import classes as C
from endolib.data.synthetic import scripts as S
from endolib.data.synthetic.surgery import render_surgery
from endolib.data.synthetic.worlds import WORLDS

T50_TOOLS = C.CHOLECT50_INSTRUMENTS


def _ids(pools, counts):
    """Video numbers: the first ``counts[i]`` numbers of each official id pool."""
    return [k for pool, n in zip(pools, counts) for k in list(pool)[:n]]


def chole_video(rng, seconds: int, fps: int, size, trocar: bool = False) -> tuple[dict, dict]:
    """A cholecystectomy (Cholec80 script; M2CAI16 adds trocar placement first) -> (render, schedule)."""
    script, cues, moves = list(S.CHOLE_PHASES), dict(S.CHOLE_CUES), dict(S.CHOLE_MOVES)
    framing = list(S.CHOLE_FRAMING)
    order = list(range(7))
    if rng.uniform() < 0.25:  # as in the real data, cleaning sometimes comes after the retraction
        order = [0, 1, 2, 3, 4, 6, 5]
    if trocar:
        script = [S.TROCAR_PHASE] + script
        cues = {k: [v[0]] + v for k, v in cues.items()}
        cues["wall"] = [(1, 1)] + [(0, 0)] * 7
        moves = {k: [((0, 0), (0, 0))] + v for k, v in moves.items()}
        framing = [S.TROCAR_FRAMING] + framing
        order = [0] + [p + 1 for p in order]
    sched = S.build_schedule(rng, script, cues, moves, seconds * fps, T50_TOOLS, order=order, framing=framing)
    return render_surgery(rng, WORLDS["chole"], sched, size), sched


def write_cholec80(root: Path, rng, videos=(6, 2, 4), seconds=(120, 200), fps: int = 1, size=(64, 64)) -> Path:
    """Cholec80 layout: videos/videoNN.mp4, phase_annotations/videoNN-phase.txt, tool_annotations/videoNN-tool.txt."""
    from endolib.data.io import write_video
    out = Path(root) / "cholec80"
    for sub in ("videos", "phase_annotations", "tool_annotations"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for k in tqdm(_ids((range(1, 33), range(33, 41), range(41, 81)), videos), desc="Cholec80", leave=False):
        video, sched = chole_video(rng, int(rng.integers(*seconds)), fps, size)
        name = f"video{k:02d}"
        write_video(out / "videos" / f"{name}.mp4", video["frames"], fps=fps)
        rows = [f"{t}\t{C.CHOLEC80_PHASES[p]}" for t, p in enumerate(sched["phase"])]
        (out / "phase_annotations" / f"{name}-phase.txt").write_text("Frame\tPhase\n" + "\n".join(rows) + "\n")
        tools = np.zeros((sched["n"], 7), int)
        tools[:, :6] = video["tools_visible"]
        tools[:, 6] = video["cues_visible"]["bag"]
        rows = ["\t".join(map(str, [t, *tools[t]])) for t in range(0, sched["n"], fps)]
        (out / "tool_annotations" / f"{name}-tool.txt").write_text(
            "Frame\t" + "\t".join(C.CHOLEC80_TOOLS) + "\n" + "\n".join(rows) + "\n")
    return out


def write_m2cai16(root: Path, rng, videos=(6, 4), seconds=(120, 200), fps: int = 1, size=(64, 64)) -> Path:
    """M2CAI16 workflow: train_dataset/workflow_video_NN.{mp4,txt}, test_dataset/test_workflow_video_NN.{mp4,txt}."""
    from endolib.data.io import write_video
    out = Path(root) / "m2cai16-workflow"
    for sub, prefix, n in (("train_dataset", "workflow_video", videos[0]), ("test_dataset", "test_workflow_video",
                                                                             videos[1])):
        for k in tqdm(range(1, n + 1), desc=f"M2CAI16 {sub}", leave=False):
            video, sched = chole_video(rng, int(rng.integers(*seconds)), fps, size, trocar=True)
            write_video(out / sub / f"{prefix}_{k:02d}.mp4", video["frames"], fps=fps)
            rows = [f"{t}\t{C.M2CAI16_PHASES[p]}" for t, p in enumerate(sched["phase"])]
            (out / sub / f"{prefix}_{k:02d}.txt").write_text("Frame\tPhase\n" + "\n".join(rows) + "\n")
    return out


def write_autolaparo(root: Path, rng, videos=(6, 2, 4), seconds=(120, 200), fps: int = 1, size=(64, 64)) -> Path:
    """AutoLaparo Task 1: videos/NN.mp4, labels/label_NN.txt (header, then 1-based second and phase 1..7)."""
    from endolib.data.io import write_video
    out = Path(root) / "AutoLaparo_Task1"
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for k in tqdm(_ids((range(1, 11), range(11, 15), range(15, 22)), videos), desc="AutoLaparo", leave=False):
        sec = int(rng.integers(*seconds))
        sched = S.build_schedule(rng, S.HYSTER_PHASES, S.HYSTER_CUES, S.HYSTER_MOVES, sec * fps, T50_TOOLS,
                                 framing=S.HYSTER_FRAMING)
        video = render_surgery(rng, WORLDS["hyster"], sched, size)
        write_video(out / "videos" / f"{k:02d}.mp4", video["frames"], fps=fps)
        rows = [f"{s + 1}\t{sched['phase'][s * fps] + 1}" for s in range(sec)]
        (out / "labels" / f"label_{k:02d}.txt").write_text("Frame\tPhase\n" + "\n".join(rows) + "\n")
    return out


def eye_video(rng, seconds: int, fps: int, size) -> tuple[dict, dict, list]:
    """A cataract operation; returns (render, schedule, phase ids of the OphNet list per frame)."""
    script, cues = [], {k: [] for k in S.EYE_CUES}
    for p, spec in enumerate(S.EYE_PHASES):
        if p and rng.uniform() < 0.35:  # an idle "Step Interval" between two steps
            script.append(S.EYE_GAP)
            for k, v in S.EYE_CUES.items():
                cues[k].append((v[p - 1][1], v[p - 1][1]))
        script.append(spec)
        for k, v in S.EYE_CUES.items():
            cues[k].append(v[p])
    sched = S.build_schedule(rng, script, cues, {}, seconds * fps, [])
    ids = [script[p]["id"] for p in sched["phase"]]
    return render_surgery(rng, WORLDS["eye"], sched, size), sched, ids


def write_ophnet(root: Path, rng, videos=(6, 2, 4), seconds=(80, 140), fps: int = 1, size=(64, 64)) -> Path:
    """OphNet2024: videos/<video_id>.mp4 + OphNet2024_loca_challenge_phase.csv (video_id,start,end,phase_id,split)."""
    from endolib.data.io import write_video
    out = Path(root) / "OphNet2024"
    rows = ["video_id,start,end,phase_id,split"]
    splits = ["train"] * videos[0] + ["val"] * videos[1] + ["test"] * videos[2]
    for i, split in enumerate(tqdm(splits, desc="OphNet", leave=False)):
        sec = int(rng.integers(*seconds))
        video, sched, ids = eye_video(rng, sec, fps, size)
        vid = f"case_{i + 1:04d}"
        write_video(out / "videos" / f"{vid}.mp4", video["frames"], fps=fps)
        per_sec = np.asarray(ids)[::fps][:sec]
        change = np.flatnonzero(np.diff(per_sec)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, len(per_sec)]):
            rows.append(f"{vid},{a:.2f},{b:.2f},{per_sec[a]},{split}")
    (out / "OphNet2024_loca_challenge_phase.csv").write_text("\n".join(rows) + "\n")
    return out


def write_cholect50(root: Path, rng, videos=(5, 2, 3), seconds=(100, 160), size=(64, 64)) -> Path:
    """CholecT50 layout: videos/VIDxx/000000.png (1 fps), labels/VIDxx.json (v2 json), label_mapping.txt."""
    from PIL import Image
    out = Path(root) / "CholecT50"
    split = C.CHOLECT50_SPLITS["cholect50"]
    ids = split["train"][:videos[0]] + split["val"][:videos[1]] + split["test"][:videos[2]]
    cats = {"instrument": C.CHOLECT50_INSTRUMENTS, "verb": C.CHOLECT50_VERBS, "target": C.CHOLECT50_TARGETS,
            "triplet": C.CHOLECT50_TRIPLETS, "phase": C.CHOLECT50_PHASES}
    for k in tqdm(ids, desc="CholecT50", leave=False):
        video, sched = chole_video(rng, int(rng.integers(*seconds)), 1, size)
        vid = f"VID{k:02d}"
        (out / "videos" / vid).mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(video["frames"]):
            Image.fromarray(frame).save(out / "videos" / vid / f"{t:06d}.png", compress_level=1)
        ann = {}
        for t, trips in enumerate(S.frame_triplets(sched)):
            ph = int(sched["phase"][t])
            inst = [_t50_instance(*tr, ph) for tr in trips if f"{tr[0]},{tr[1]},{tr[2]}" in C.CHOLECT50_TRIPLETS]
            ann[str(t)] = inst or [[-1] * 14 + [ph]]
        doc = {"video": k, "fps": 1, "num_frames": sched["n"],
               "categories": {key: {str(i): v for i, v in enumerate(vals)} for key, vals in cats.items()},
               "annotations": ann, "info": "synthetic CholecT50-format labels (endolib)", "licenses": "CC0"}
        (out / "labels").mkdir(parents=True, exist_ok=True)
        (out / "labels" / f"{vid}.json").write_text(json.dumps(doc))
    mapping = ["# IVT, I, V, T, IV, IT"] + [f"{j},{','.join(map(str, C.triplet_components(j)))},-1,-1"
                                              for j in range(100)]
    (out / "label_mapping.txt").write_text("\n".join(mapping) + "\n")
    return out


def _t50_instance(tool, verb, target, phase) -> list:
    """One CholecT50 triplet instance: [ivt, i, SC, BX, BY, BW, BH, v, t, SC, BX, BY, BW, BH, phase] (no boxes: -1)."""
    ivt = C.CHOLECT50_TRIPLETS.index(f"{tool},{verb},{target}")
    i, v, t = C.triplet_components(ivt)
    return [ivt, i, 1, -1, -1, -1, -1, v, t, 1, -1, -1, -1, -1, phase]


# SurgicalActions160: action -> (hand actions "tool,verb,target", cue objects shown, cue moved in/out)
SA160_ACTIONS = {
    "01_abdominal_access": (["trocar,retract,wall"], ["wall"], None),
    "02_injection": (["cannula,grasp,uterus", "grasper,grasp,uterus"], ["uterus"], None),
    "03_cutting": (["scissors,cut,ligament", "grasper,retract,ligament"], ["ligament"], None),
    "04_blunt_dissection": (["grasper,dissect,ligament", "grasper,dissect,uterus"], ["ligament", "uterus"], None),
    "05_dissection_thermal": (["hook,dissect,ligament", "grasper,retract,ligament"], ["ligament"], None),
    "06_irrigation": (["irrigator,irrigate,cuff"], ["cuff"], None),
    "07_coagulation": (["bipolar,coagulate,vessel", "grasper,grasp,vessel"], ["vessel"], None),
    "08_suction": (["irrigator,aspirate,fluid"], ["fluid"], None),
    "09_needle_positioning": (["needle_holder,grasp,null_target", "grasper,grasp,null_target"], ["thread"], None),
    "10_needle_puncture": (["needle_holder,retract,cuff", "grasper,grasp,cuff"], ["cuff", "suture"], None),
    "11_knot_pushing": (["cannula,retract,cuff"], ["cuff", "thread"], None),
    "12_knotting": (["needle_holder,dissect,cuff", "grasper,dissect,cuff"], ["cuff", "thread"], None),
    "13_thread_cut": (["scissors,cut,cuff", "grasper,grasp,cuff"], ["cuff", "thread"], None),
    "14_sling-in": (["grasper,retract,ligament"], ["ligament"], "in"),
    "15_endobag-in": (["grasper,retract,fluid"], ["bag"], "in"),
    "16_endobag-out": (["grasper,grasp,fluid"], ["bag"], "out"),
}


def action_clip(rng, action: str, n: int, size) -> np.ndarray:
    """Render one short SurgicalActions160-like clip of ``action``: uint8 (n, H, W, 3)."""
    hands_spec, shown, slide = SA160_ACTIONS[action]
    cues = {k: np.zeros(n, np.float32) for k in WORLDS["hyster"]["cues"]}
    for k in shown:
        cues[k][:] = 1.0
    for k in ("uterus", "vessel", "ligament"):  # background anatomy, faint when not the subject
        cues[k] = np.maximum(cues[k], rng.uniform(0, 0.5))
    moves = {}
    if slide:
        ramp = np.linspace(1, 0, n) if slide == "in" else np.linspace(0, 1, n)
        moves[shown[0]] = (ramp[:, None] * np.array([0.45, -0.5])[None]).astype(np.float32)
    hands = []
    for j, spec in enumerate(hands_spec + (["grasper,null_verb,null_target"] if rng.uniform() < 0.3 else [])):
        tool, verb, target = spec.split(",")
        port = rng.uniform(-0.6, 0.6) + (np.pi if j % 2 else 0.0)
        hands.append(dict(port=port, segments=[(0, n, tool, verb, target)]))
    smoke = np.full(n, 0.4 if any(s.split(",")[1] in ("coagulate",) or s.startswith("hook") for s in hands_spec)
                    else 0.0, np.float32)
    focus = hands_spec[0].split(",")[2]  # the camera looks at the action's subject
    sched = dict(n=n, phase=np.zeros(n, int), tool_names=[], cues=cues, moves=moves, hands=hands, smoke=smoke,
                 focus=[focus if focus != "null_target" else "__center__"] * n,
                 zoom=np.full(n, rng.uniform(0.75, 1.0), np.float32))
    return render_surgery(rng, WORLDS["hyster"], sched, size)["frames"]


def write_surgicalactions160(root: Path, rng, clips_per_class: int = 10, num_frames: int = 12, fps: int = 8,
                             size=(64, 64)) -> Path:
    """SurgicalActions160: <NN_action>/<NN>_<MM>.mp4, ``clips_per_class`` clips in each of the 16 class folders
    (10 by default: the release's 160 clips)."""
    from endolib.data.io import write_video
    out = Path(root) / "SurgicalActions160"
    for action in tqdm(C.SURGICALACTIONS160_CLASSES, desc="SurgicalActions160", leave=False):
        for m in range(1, clips_per_class + 1):
            n = int(rng.integers(num_frames, num_frames + 7))
            write_video(out / action / f"{action[:2]}_{m:02d}.mp4", action_clip(rng, action, n, size), fps=fps)
    return out
