"""Phase-recognition loaders in their official layouts: Cholec80, M2CAI16 (workflow), AutoLaparo (Task 1), OphNet2024.

Every video becomes a 1 fps timeline (the usual protocol for all four); items carry ``"phase"``
``(T,)`` long (and Cholec80 also ``"tools"`` ``(T, 7)`` float). Frame numbers in the annotation files
refer to the video's own frames (25 fps in the real releases; the synthetic copies are written at a
low fps), so frame f of the annotation is second f / fps.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from endolib.data.datasets.base import check_label, require, resolve_root
from endolib.data.datasets.classes import (AUTOLAPARO_PHASES, CHOLEC80_PHASES, CHOLEC80_TOOLS, M2CAI16_PHASES,
                                           OPHNET_PHASES)
from endolib.data.datasets.videobase import TimelineDataset

log = logging.getLogger(__name__)


def _fps_step(path: Path) -> tuple[float, int, int]:
    """(fps, frames, step) of a video; step = frames per second of video (rounded), at least 1."""
    from endolib.data.io import probe_video
    info = probe_video(path)
    fps = info["fps"] if info["fps"] > 0 else 1.0
    return fps, int(info["frames"]), max(int(round(fps)), 1)


def read_frame_phase(path: Path, classes, name: str) -> pd.DataFrame:
    """A ``Frame<TAB>Phase`` file (header line, then frame index and phase name or id) -> DataFrame(frame, phase id)."""
    rows = []
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines, 1):
        parts = line.strip().split(None, 1)
        if not parts or (n == 1 and not parts[0].lstrip("-").isdigit()):
            continue  # header
        if len(parts) != 2:
            raise ValueError(f"{name}: {path} line {n} is {line!r}; expected '<frame> <phase>'.")
        rows.append((int(parts[0]), check_label(parts[1].strip(), classes, name, f"{path} line {n}")))
    if not rows:
        raise ValueError(f"{name}: {path} holds no annotation rows; expected 'Frame<TAB>Phase' lines.")
    return pd.DataFrame(rows, columns=["frame", "phase"])


def labels_at(table: pd.DataFrame, frames: np.ndarray, col) -> np.ndarray:
    """Value of ``col`` at each video frame: the row with the largest annotated frame <= it (step-wise hold)."""
    table = table.sort_values("frame")
    pos = np.searchsorted(table["frame"].to_numpy(), frames, side="right") - 1
    return table[col].to_numpy()[np.clip(pos, 0, len(table) - 1)]


class Cholec80(TimelineDataset):
    """Cholec80: ``videos/videoNN.mp4``, ``phase_annotations/videoNN-phase.txt``, ``tool_annotations/videoNN-tool.txt``.

    Splits by video number (the common protocol): train 1-32, val 33-40, test 41-80 (``splits`` overrides).
    """

    name, classes, tool_names = "cholec80", CHOLEC80_PHASES, CHOLEC80_TOOLS
    label_keys = ("phase", "tools")
    layout = ("cholec80/\n  videos/video01.mp4 ... video80.mp4   (25 fps)\n  phase_annotations/video01-phase.txt   "
              "header 'Frame\\tPhase', one row per video frame, phase NAMES\n  tool_annotations/video01-tool.txt    "
              "header 'Frame\\tGrasper\\tBipolar\\tHook\\tScissors\\tClipper\\tIrrigator\\tSpecimenBag', a row every "
              "second")
    SPLITS = {"train": range(1, 33), "val": range(33, 41), "test": range(41, 81)}

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, splits: dict | None = None, **kw):
        self.dir = resolve_root(root, "cholec80", "phase_annotations", self.name, self.layout)
        self.splits = splits or self.SPLITS
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)

    def _index(self):
        if self.split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {self.split!r}; expected one of {sorted(self.splits)}.")
        out = []
        for k in self.splits[self.split]:
            vid = f"video{k:02d}"
            video = self.dir / "videos" / f"{vid}.mp4"
            if not video.exists():
                continue
            ann = require(self.dir / "phase_annotations" / f"{vid}-phase.txt", self.name, "phase annotation",
                          self.layout)
            out.append(self._video(vid, video, ann, self.dir / "tool_annotations" / f"{vid}-tool.txt"))
        return out

    def _video(self, vid, video, ann, tool_file) -> dict:
        fps, n_frames, step = _fps_step(video)
        phases = read_frame_phase(ann, self.classes, self.name)
        n_frames = min(n_frames, int(phases["frame"].max()) + 1)
        frames = np.arange(0, n_frames, step)
        labels = {"phase": labels_at(phases, frames, "phase")}
        tools = require(tool_file, self.name, "tool annotation", self.layout)
        tt = pd.read_csv(tools, sep=r"\s+")
        missing = [t for t in self.tool_names if t not in tt.columns]
        if missing or "Frame" not in tt.columns:
            raise ValueError(f"{self.name}: {tools} lacks columns {missing or ['Frame']}; expected a tab-separated "
                             f"header Frame {' '.join(self.tool_names)}.")
        bad = ~tt[self.tool_names].isin([0, 1]).all(axis=1)
        if bad.any():
            raise ValueError(f"{self.name}: {tools} row {int(np.flatnonzero(bad)[0]) + 2} has a tool value "
                             "outside {0, 1}.")
        tt = tt.rename(columns={"Frame": "frame"})
        labels["tools"] = np.stack([labels_at(tt, frames, t) for t in self.tool_names], 1).astype(np.float32)
        return dict(id=vid, path=video, step=step, num=len(frames), labels=labels, fps=fps)


class M2CAI16(Cholec80):
    """M2CAI16 workflow: ``train_dataset/workflow_video_NN.{mp4,txt}``, ``test_dataset/test_workflow_video_NN.*``.

    The .txt has a header then '<frame> <phase name>' per video frame (25 fps). 'val' = 'test' unless ``val_videos``
    (number of training videos held out, taken from the end) is given.
    """

    name, classes = "m2cai16", M2CAI16_PHASES
    label_keys = ("phase",)
    layout = ("m2cai16-workflow/\n  train_dataset/workflow_video_01.mp4, workflow_video_01.txt ('Frame\\tPhase' "
              "header, phase names per frame)\n  test_dataset/test_workflow_video_01.mp4, test_workflow_video_01.txt")

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, val_videos: int = 0, **kw):
        self.dir = resolve_root(root, "m2cai16-workflow", "train_dataset", self.name, self.layout)
        self.val_videos = val_videos
        super(Cholec80, self).__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)

    def _index(self):
        sub = "train_dataset" if self.split == "train" or (self.split == "val" and self.val_videos) else "test_dataset"
        folder = require(self.dir / sub, self.name, f"{sub} folder", self.layout)
        videos = sorted((p for p in folder.glob("*.mp4")), key=lambda p: p.stem)
        if sub == "train_dataset" and self.val_videos:
            videos = videos[-self.val_videos:] if self.split == "val" else videos[:-self.val_videos]
        out = []
        for video in videos:
            ann = require(video.with_suffix(".txt"), self.name, "phase annotation", self.layout)
            fps, n_frames, step = _fps_step(video)
            phases = read_frame_phase(ann, self.classes, self.name)
            frames = np.arange(0, min(n_frames, int(phases["frame"].max()) + 1), step)
            out.append(dict(id=video.stem, path=video, step=step, num=len(frames), fps=fps,
                            labels={"phase": labels_at(phases, frames, "phase")}))
        return out


class AutoLaparo(TimelineDataset):
    """AutoLaparo Task 1: ``videos/NN.mp4`` and ``labels/label_NN.txt`` (header, then '<second, 1-based> <phase 1..7>').

    Official split: 01-10 train, 11-14 val, 15-21 test.
    """

    name, classes = "autolaparo", AUTOLAPARO_PHASES
    layout = ("AutoLaparo_Task1/\n  videos/01.mp4 ... 21.mp4\n  labels/label_01.txt ...   header line, then "
              "'<frame (1-based second)> <phase id 1..7>' at 1 fps")
    SPLITS = {"train": range(1, 11), "val": range(11, 15), "test": range(15, 22)}

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, splits: dict | None = None, **kw):
        self.dir = resolve_root(root, "AutoLaparo_Task1", "labels", self.name, self.layout)
        self.splits = splits or self.SPLITS
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)

    def _index(self):
        out = []
        for k in self.splits[self.split]:
            video = self.dir / "videos" / f"{k:02d}.mp4"
            if not video.exists():
                continue
            ann = require(self.dir / "labels" / f"label_{k:02d}.txt", self.name, "phase label file", self.layout)
            rows = [ln.split() for ln in ann.read_text().splitlines()[1:] if ln.strip()]
            try:
                sec = np.array([int(r[0]) for r in rows])
                ph = [check_label(int(r[1]) - 1, self.classes, self.name, f"{ann} (phase {r[1]})") for r in rows]
            except (ValueError, IndexError) as e:
                if "known classes" in str(e):
                    raise
                raise ValueError(f"{self.name}: {ann}: expected '<second> <phase id>' rows after a header "
                                 f"({e}).") from e
            fps, n_frames, step = _fps_step(video)
            num = min(len(sec), (n_frames + step - 1) // step)
            out.append(dict(id=f"{k:02d}", path=video, step=step, num=num, fps=fps,
                            labels={"phase": np.asarray(ph)[np.argsort(sec)][:num]}))
        return out


class OphNet(TimelineDataset):
    """OphNet2024 phase localisation: ``videos/<video_id>.mp4`` + ``OphNet2024_loca_challenge_phase.csv``.

    The csv has one row per phase segment: ``video_id, start, end, phase_id, split`` (start/end in
    seconds). Seconds no segment covers are labelled 'Non-functional Segment' (id 3).
    """

    name, classes = "ophnet", OPHNET_PHASES
    csv_name = "OphNet2024_loca_challenge_phase.csv"
    layout = ("OphNet2024/\n  OphNet2024_loca_challenge_phase.csv   columns video_id,start,end,phase_id,split "
              "(seconds; split train/val/test)\n  videos/<video_id>.mp4")
    FILL = 3

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, **kw):
        self.dir = resolve_root(root, "OphNet2024", self.csv_name, self.name, self.layout)
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)

    def _index(self):
        df = pd.read_csv(self.dir / self.csv_name)
        need = {"video_id", "start", "end", "phase_id", "split"}
        if need - set(df.columns):
            raise ValueError(f"{self.name}: {self.dir / self.csv_name} lacks columns {sorted(need - set(df.columns))}.")
        df = df[df["split"].astype(str).str.strip().str.lower() == self.split]
        out = []
        for vid, seg in df.groupby("video_id", sort=True):
            video = require(self.dir / "videos" / f"{vid}.mp4", self.name, f"video of {vid}", self.layout)
            fps, n_frames, step = _fps_step(video)
            num = (n_frames + step - 1) // step
            phase = np.full(num, self.FILL, np.int64)
            for r in seg.itertuples():
                pid = check_label(int(r.phase_id), self.classes, self.name, f"{self.csv_name} ({vid})")
                phase[int(np.floor(r.start)):int(np.ceil(r.end))] = pid
            out.append(dict(id=str(vid), path=video, step=step, num=num, fps=fps, labels={"phase": phase}))
        return out
