"""Read and write endoscopy videos and frame folders as uint8 arrays, and crop away the black field-of-view border.

Why PyAV and not OpenCV: PyAV binds FFmpeg's libav* directly and ships wheels with the codecs built in
(H.264 encode through libx264 included), so writing an mp4 that every player opens and reading any
mp4/avi/mov/mkv behaves the same on every machine. It gives the stream's real time base, frame rate
and frame count, and it raises typed errors (``av.error.InvalidDataError``) for corrupt files where
``cv2.VideoCapture`` silently returns ``False``/empty frames and reports ``CAP_PROP_FRAME_COUNT``
estimates that are wrong for many avi/mkv files. A corrupt file must be *detected* (see
``endolib.data.index``), so typed errors matter more here than OpenCV's speed.

All frames are RGB ``np.uint8`` arrays shaped ``(T, H, W, 3)``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class VideoReadError(ValueError):
    """A video (or frame folder) exists but cannot be decoded: corrupt, truncated, or not a video."""


def _fix_hint(path: Path) -> str:
    return (f"Re-download or re-encode {path.name} (e.g. `ffmpeg -i {path.name} -c:v libx264 fixed.mp4`), "
            "or remove it from the dataset root; `endolib.data.index.build_index` lists every such file.")


def _open(path):
    import av  # imported lazily: the GPU machine has no PyAV and must still import endolib.data

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}. Expected a video file ({', '.join(VIDEO_EXTS)}); "
                                "check the dataset root (ENDOLIB_DATA) and the file name.")
    if path.stat().st_size == 0:
        raise VideoReadError(f"cannot read video {path}: the file is empty (0 bytes). {_fix_hint(path)}")
    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.* (InvalidDataError, ...) differ by FFmpeg version; name them alike
        raise VideoReadError(f"cannot open video {path} ({type(e).__name__}: {e}): the file is corrupt, "
                             f"truncated, or not a video. {_fix_hint(path)}") from e
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"cannot read video {path}: it has no video stream. {_fix_hint(path)}")
    return container


def probe_video(path, count_frames: bool = False) -> dict:
    """Frames, fps, height, width and duration (s) of a video, from its header.

    Containers that do not store a frame count (many avi/mkv/webm) are counted by demuxing packets (no
    decoding); ``count_frames=True`` always counts that way, which also catches some truncated files.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        fps = float(rate)
        frames = int(stream.frames or 0)
        if count_frames or frames <= 0:
            frames = sum(1 for pkt in container.demux(stream) if pkt.size > 0)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = frames / fps if fps > 0 else float("nan")
        info = dict(frames=frames, fps=fps, height=int(stream.codec_context.height),
                    width=int(stream.codec_context.width), duration_s=duration)
    except VideoReadError:
        raise
    except Exception as e:
        raise VideoReadError(f"cannot probe video {path} ({type(e).__name__}: {e}). {_fix_hint(path)}") from e
    finally:
        container.close()
    if info["frames"] <= 0:
        raise VideoReadError(f"video {path} contains no frames. {_fix_hint(path)}")
    return info


def _check_range(start: int, num, step: int) -> None:
    if start < 0 or step < 1 or (num is not None and num < 0):
        raise ValueError(f"expected start >= 0, step >= 1, num >= 0 or None; got start={start}, "
                         f"step={step}, num={num}.")


SEEK_MIN_FRAMES = 120  # below this start index, decoding from the first frame is cheap enough
SEEKABLE = (".mp4", ".mov", ".m4v", ".mkv", ".webm")  # containers with reliable timestamps (not avi/mpg)


class _SeekMiss(Exception):
    """The keyframe seek cannot be trusted for this file (no timestamps, or it landed past ``start``)."""


def _indexed_frames(container, stream, start: int, seek: bool):
    """Yield ``(frame index, frame)`` from the first frame, or from the keyframe before ``start`` when seeking.

    After a seek, indices come from presentation timestamps (``round((pts - pts of frame 0) * fps)``),
    exact for constant-frame-rate video; anything odd raises _SeekMiss so the caller decodes sequentially.
    """
    if not seek:
        yield from enumerate(container.decode(stream))
        return
    fps, tb = float(stream.average_rate), stream.time_base
    pts0 = next(iter(container.decode(stream))).pts  # frame 0's timestamp (containers differ: 0, 1, start_time)
    if pts0 is None:
        raise _SeekMiss()
    t0 = float(pts0 * tb)
    container.seek(int((t0 + (start - 0.5) / fps) / tb), stream=stream, backward=True, any_frame=False)
    last = None
    for frame in container.decode(stream):
        if frame.pts is None:
            raise _SeekMiss()
        idx = int(round((float(frame.pts * tb) - t0) * fps))
        if (last is None and idx > start) or (last is not None and idx != last + 1):
            raise _SeekMiss()  # landed past start, or timestamps not one frame apart: do not trust them
        last = idx
        yield idx, frame


def read_video(path, start: int = 0, num: int | None = None, step: int = 1, seek: bool = True) -> np.ndarray:
    """Decode frames ``start, start+step, ...`` (``num`` of them, or to the end) as uint8 ``(T, H, W, 3)`` RGB.

    For ``start >= SEEK_MIN_FRAMES`` in mp4/mov/mkv/webm the decoder first seeks to the keyframe before
    ``start`` and numbers frames by timestamp (constant frame rate assumed). Files whose timestamps
    are not one frame apart, avi/mpg (whose timestamps are guessed), and ``seek=False`` decode from
    the first frame. Decoding stops as soon as the
    requested frames are in hand. Raises VideoReadError when nothing decodes or the file is corrupt,
    ValueError when ``start`` is past the end.
    """
    _check_range(start, num, step)
    if num == 0:
        return np.zeros((0, 0, 0, 3), np.uint8)
    path = Path(path)
    container = _open(path)
    out, idx = [], -1
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        use_seek = (seek and start >= SEEK_MIN_FRAMES and path.suffix.lower() in SEEKABLE
                    and bool(stream.average_rate) and stream.time_base is not None)
        for idx, frame in _indexed_frames(container, stream, start, use_seek):
            if idx >= start and (idx - start) % step == 0:
                out.append(frame.to_ndarray(format="rgb24"))
                if num is not None and len(out) >= num:
                    break
    except _SeekMiss:
        container.close()
        return read_video(path, start, num, step, seek=False)
    except Exception as e:
        if not out:
            raise VideoReadError(f"cannot decode video {path} ({type(e).__name__}: {e}). {_fix_hint(path)}") from e
        log.warning("video %s: decoding stopped after frame %d (%s: %s); returning %d frames",
                    path, idx, type(e).__name__, e, len(out))
    finally:
        container.close()
    if not out:
        if idx < 0:
            raise VideoReadError(f"video {path} decoded to no frames (corrupt or truncated). {_fix_hint(path)}")
        raise ValueError(f"start={start} is past the end of {path}, which has {idx + 1} frames; "
                         f"pass start < {idx + 1}.")
    return np.stack(out)


def write_video(path, frames: np.ndarray, fps: float = 25, crf: int = 18, keyint: int | None = None) -> Path:
    """Write uint8 ``(T, H, W, 3)`` RGB frames as H.264 (libx264) in the container the suffix names (mp4 etc.).

    Even sizes use yuv420p (plays everywhere); odd sizes use yuv444p, which H.264 allows at any size.
    ``crf`` is x264's quality (0 = lossless luma/chroma, 18 = visually lossless, 23 = default);
    ``keyint`` the maximum distance between keyframes (x264's default 250 when None).
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_video expects a non-empty uint8 array (T, H, W, 3); got dtype {frames.dtype}, "
                         f"shape {frames.shape}. Convert with (x * 255).clip(0, 255).astype(np.uint8).")
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTS:
        raise ValueError(f"write_video: unknown video suffix {path.suffix!r} in {path}; use one of {VIDEO_EXTS}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    _, h, w, _ = frames.shape
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p" if (h % 2 == 0 and w % 2 == 0) else "yuv444p"
        # mbtree=0: with x264's macroblock-tree rate control the same frames encoded to different bytes from run
        # to run (here: about half of the runs, up to 36 grey levels apart after decoding; it depends on memory
        # reuse, as if uninitialised memory were read), which broke "same seed, same frames" for synthetic data
        stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0",
                          **({"g": str(keyint)} if keyint else {})}
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder's delayed frames
            container.mux(packet)
    return path


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def list_frames(folder) -> list[Path]:
    """Image files of a frame folder in natural order (frame_2 before frame_10)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder not found: {folder}. Expected a folder of "
                                f"{'/'.join(IMAGE_EXTS)} images, one per frame.")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)
    if not files:
        raise VideoReadError(f"frame folder {folder} holds no images ({', '.join(IMAGE_EXTS)}); "
                             "point at the folder that directly contains the frames.")
    return files


def read_frames_folder(folder, start: int = 0, num: int | None = None, step: int = 1) -> np.ndarray:
    """Read a folder of frame images (natural filename order) as uint8 ``(T, H, W, 3)`` RGB."""
    from PIL import Image  # Pillow ships with matplotlib, a dependency

    _check_range(start, num, step)
    files = list_frames(folder)[start::step]
    files = files if num is None else files[:num]
    if not files:
        raise ValueError(f"start={start} is past the end of frame folder {folder}.")
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                out.append(np.asarray(im.convert("RGB")))
        except Exception as e:
            raise VideoReadError(f"cannot read frame {f} ({type(e).__name__}: {e}): corrupt or not an image. "
                                 "Re-extract the frames or delete that file.") from e
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise VideoReadError(f"frame folder {folder} mixes frame sizes {sorted(shapes)}; all frames of one "
                             "video must share one size. Re-extract the frames.")
    return np.stack(out)


@dataclass(frozen=True)
class FieldOfView:
    """The lit region of an endoscope image: its bounding box and the circle fitted to it."""
    y0: int
    y1: int
    x0: int
    x1: int
    cy: float
    cx: float
    radius: float
    circular: bool  # True when the lit region is a disc (corners dark), False for a rectangle


def detect_fov(frames: np.ndarray, threshold: int = 12, min_fraction: float = 0.05) -> FieldOfView:
    """Find the field of view from the frames: pixels whose brightest channel exceeds ``threshold`` in most frames.

    frames: (T, H, W, 3) or (H, W, 3) uint8. A row/column belongs to the view when at least
    ``min_fraction`` of the widest row's/column's lit pixel count is lit (robust to specks and text overlays outside the view).
    """
    frames = np.asarray(frames)
    frames = frames[None] if frames.ndim == 3 else frames
    lit = (frames.max(axis=-1) > threshold).mean(axis=0) > 0.5  # (H, W) lit in most frames
    if lit.sum() == 0:
        h, w = frames.shape[1:3]
        return FieldOfView(0, h, 0, w, h / 2, w / 2, min(h, w) / 2, False)
    rows, cols = lit.sum(axis=1), lit.sum(axis=0)
    ys = np.flatnonzero(rows >= min_fraction * rows.max())
    xs = np.flatnonzero(cols >= min_fraction * cols.max())
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    box_area = (y1 - y0) * (x1 - x0)
    area = float(lit[y0:y1, x0:x1].sum())
    yy, xx = np.nonzero(lit)
    cy, cx = float(yy.mean()), float(xx.mean())
    radius = float(np.sqrt(area / np.pi))
    # a disc fills pi/4 ~ 0.785 of its box (a clipped disc more); a rectangle fills ~1
    circular = area / box_area < 0.93
    return FieldOfView(y0, y1, x0, x1, cy, cx, radius, circular)


def fov_crop(frames: np.ndarray, mode: str = "bbox", threshold: int = 12, fov: FieldOfView | None = None,
             return_fov: bool = False):
    """Crop black borders: to the bounding box of the field of view, or (``mode='inscribed'``) to the
    largest square inside a circular view so no dark corner remains.

    frames: (T, H, W, 3) uint8 -> (T, h, w, 3). The view is detected once for the whole clip (a
    stable crop, no per-frame jitter) unless ``fov`` is given.
    """
    if mode not in ("bbox", "inscribed"):
        raise ValueError(f"fov_crop mode must be 'bbox' or 'inscribed'; got {mode!r}.")
    frames = np.asarray(frames)
    fov = fov or detect_fov(frames, threshold)
    y0, y1, x0, x1 = fov.y0, fov.y1, fov.x0, fov.x1
    if mode == "inscribed" and fov.circular:
        half = fov.radius / np.sqrt(2)
        y0, y1 = max(y0, int(np.ceil(fov.cy - half))), min(y1, int(np.floor(fov.cy + half)) + 1)
        x0, x1 = max(x0, int(np.ceil(fov.cx - half))), min(x1, int(np.floor(fov.cx + half)) + 1)
    out = frames[..., y0:y1, x0:x1, :]
    return (out, fov) if return_fov else out
