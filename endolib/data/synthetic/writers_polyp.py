"""Write synthetic colonoscopy data in the on-disk layouts of PolypDiag, CVC-12k and KUMC.

Layouts (what the loaders in ``endolib.data.datasets.polyp`` read):
- PolypDiag, as Endo-FM distributes it (``scripts/eval_finetune_polypdiag.sh``: DATA.PATH_TO_DATA_DIR
  = ``PolypDiag/splits``, DATA.PATH_PREFIX = ``PolypDiag/videos``): ``videos/<name>.mp4`` and
  ``splits/{train,val}.txt`` with one ``<name>.mp4 <label>`` line per video (0 normal, 1 abnormal).
- CVC-12k, as Endo-FM's segmentation code reads it (``TransUNet/dataset.py``):
  ``CVC-ClinicDB/Original/<i>.tif`` frames, ``CVC-ClinicDB/Ground Truth/<i>.tif`` masks (255 polyp) and
  ``videolist.txt`` with ``<video> <first frame i> <number of frames>`` per video; the first 20 videos
  train, the rest test.
- KUMC (PolypsSet, as Endo-FM's STFT code reads it): ``{train,val,test}2019/Image/<video>/<n>.jpg`` and
  ``{train,val,test}2019/Annotation/<video>/<n>.xml`` (Pascal VOC, classes adenomatous/hyperplastic),
  plus ``ImageSets/{train,val,test}.txt`` lines ``<video> 0 <n> <frames in video>``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from endolib.data.synthetic.colon import POLYP_KINDS, mask_to_boxes, render_colonoscopy

log = logging.getLogger(__name__)


def _save_image(path: Path, arr: np.ndarray, **kw) -> None:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


def write_polypdiag(root: Path, rng, num_videos: int = 40, num_frames: int = 32, size=(64, 64),
                    val_fraction: float = 0.3, fps: float = 10) -> Path:
    """PolypDiag: balanced normal/abnormal videos; abnormal ones show a polyp of either kind."""
    from endolib.data.io import write_video
    out = Path(root) / "PolypDiag"
    labels = np.arange(num_videos) % 2
    rng.shuffle(labels)
    n_val = max(2, int(round(val_fraction * num_videos)))
    val = set(np.flatnonzero(labels == 0)[:n_val // 2]) | set(np.flatnonzero(labels == 1)[:n_val - n_val // 2])
    lines = {"train": [], "val": []}
    for i in tqdm(range(num_videos), desc="PolypDiag", leave=False):
        kind = str(rng.choice(POLYP_KINDS)) if labels[i] else None
        video = render_colonoscopy(rng, num_frames, size, polyp=kind, travel=0.15)
        name = f"polypdiag_{i + 1:03d}.mp4"
        write_video(out / "videos" / name, video["frames"], fps=fps)
        lines["val" if i in val else "train"].append(f"{name} {labels[i]}")
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for split, rows in lines.items():  # val is class-balanced
        (out / "splits" / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return out


def write_cvc12k(root: Path, rng, num_videos: int = 26, frames_per_video=(8, 16), size=(64, 64)) -> Path:
    """CVC-12k: every frame shows a polyp (either kind) and has its mask; 20 train videos, the rest test."""
    out = Path(root) / "CVC-12k"
    lines, i = [], 1
    for v in tqdm(range(num_videos), desc="CVC-12k", leave=False):
        n = int(rng.integers(frames_per_video[0], frames_per_video[1] + 1))
        video = render_colonoscopy(rng, n, size, polyp=str(rng.choice(POLYP_KINDS)), travel=0.1)
        lines.append(f"{v + 1} {i} {n}")
        for t in range(n):
            _save_image(out / "CVC-ClinicDB" / "Original" / f"{i}.tif", video["frames"][t])
            _save_image(out / "CVC-ClinicDB" / "Ground Truth" / f"{i}.tif", video["mask"][t].astype(np.uint8) * 255)
            i += 1
    (out / "videolist.txt").write_text("\n".join(lines) + "\n")
    return out


def voc_xml(filename: str, folder: str, size, objects) -> str:
    """A Pascal VOC annotation: objects = [(name, (xmin, ymin, xmax, ymax) 1-based inclusive pixels), ...]."""
    h, w = size
    objs = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{b[0]}</xmin>\n\t\t\t<ymin>{b[1]}</ymin>\n"
        f"\t\t\t<xmax>{b[2]}</xmax>\n\t\t\t<ymax>{b[3]}</ymax>\n\t\t</bndbox>\n\t</object>\n" for name, b in objects)
    return (f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>\n\t<size>\n"
            f"\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
            f"\t<segmented>0</segmented>\n{objs}</annotation>\n")


def write_kumc(root: Path, rng, videos=(12, 4, 4), num_frames=(10, 16), size=(64, 64)) -> Path:
    """KUMC: one polyp per video (its kind is the class), a VOC box per frame where it is visible."""
    out = Path(root) / "KUMC"
    for split, n_videos in zip(("train", "val", "test"), videos):
        lines = []
        for v in tqdm(range(n_videos), desc=f"KUMC {split}", leave=False):
            n = int(rng.integers(num_frames[0], num_frames[1] + 1))
            kind = POLYP_KINDS[v % 2]
            video = render_colonoscopy(rng, n, size, polyp=kind, travel=0.15)
            boxes = mask_to_boxes(video["mask"])
            vid = str(v + 1)
            for t in range(n):
                base = out / f"{split}2019"
                _save_image(base / "Image" / vid / f"{t + 1}.jpg", video["frames"][t], quality=95)
                objs = [(kind, (int(b[0]) + 1, int(b[1]) + 1, int(b[2]), int(b[3]))) for b in boxes[t]]
                xml = voc_xml(f"{t + 1}.jpg", vid, size, objs)
                (base / "Annotation" / vid).mkdir(parents=True, exist_ok=True)
                (base / "Annotation" / vid / f"{t + 1}.xml").write_text(xml)
                lines.append(f"{vid} 0 {t + 1} {n}")
        (out / "ImageSets").mkdir(parents=True, exist_ok=True)
        (out / "ImageSets" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return out
