"""Index a folder of videos and frame folders into a table (frames, fps, size, duration, checksum, status).

Every candidate gets one row. A file that cannot be read is kept with ``status='error'`` and the
reason in ``error``: a corrupt file never stops the scan and is never silently dropped. Re-indexing
with the previous index reuses the rows of files whose size and modification time are unchanged.

    python -m endolib.data.index ROOT --out index.csv [--source NAME] [--check full] [--workers 8]
"""
from __future__ import annotations

import argparse
import builtins
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from endolib.data.io import IMAGE_EXTS, VIDEO_EXTS, list_frames, probe_video, read_frames_folder, read_video

log = logging.getLogger(__name__)

COLUMNS = ["source", "root", "path", "kind", "frames", "fps", "height", "width", "duration_s", "size_bytes",
           "mtime", "sha1", "status", "error"]
CHECKS = ("header", "first", "full")


def scan(root, frame_folders: bool = True) -> list[tuple[Path, str]]:
    """Candidates under ``root`` as ``(path, kind)``: video files (by suffix) and folders that directly hold images."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"index root not found: {root}. Pass an existing dataset folder "
                                "(or set ENDOLIB_DATA to your data root).")
    found = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
            found.append((p, "video"))
        elif frame_folders and p.is_dir() and any(c.suffix.lower() in IMAGE_EXTS for c in p.iterdir()
                                                  if c.is_file()):
            found.append((p, "frames"))
    return found


def _files_of(path: Path, kind: str) -> list[Path]:
    return [path] if kind == "video" else list_frames(path)


def sha1_of(files, chunk: int = 1 << 20) -> str:
    """SHA-1 over the bytes of ``files`` in order (one video file, or a frame folder's images)."""
    h = hashlib.sha1()
    for f in files:
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def _stat(path: Path, kind: str) -> tuple[int, float]:
    if kind == "video":
        st = path.stat()
        return st.st_size, st.st_mtime
    stats = [f.stat() for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTS]
    return sum(s.st_size for s in stats), max([s.st_mtime for s in stats], default=path.stat().st_mtime)


def _probe_video(path: Path, check: str) -> dict:
    info = probe_video(path, count_frames=(check == "full"))
    if check == "first":
        read_video(path, num=1)
    elif check == "full":
        decoded, err = _decode_count(path)
        if decoded != info["frames"] or err:
            raise ValueError(f"truncated or corrupt: the container lists {info['frames']} frames but decoding "
                             f"{'failed' if err else 'stopped'} after {decoded}{f' ({err})' if err else ''}. "
                             "Re-download or re-encode the file.")
    return info


def _decode_count(path: Path) -> tuple[int, str]:
    import av

    n = 0
    with av.open(str(path)) as c:
        try:
            for _ in c.decode(c.streams.video[0]):
                n += 1
        except Exception as e:  # FFmpeg decode errors: the count so far tells how much survived
            return n, f"{type(e).__name__}: {e}"
    return n, ""


def _probe_frames(path: Path, check: str, fps: float) -> dict:
    files = list_frames(path)
    first = read_frames_folder(path, num=1)
    if check == "full":
        read_frames_folder(path)  # decodes every image; raises on a corrupt one or mixed sizes
    n = len(files)
    return dict(frames=n, fps=fps, height=first.shape[1], width=first.shape[2],
                duration_s=n / fps if fps and fps > 0 else float("nan"))


def index_one(path: Path, kind: str, root: Path, source: str, checksum: bool = True, check: str = "first",
              frames_fps: float = float("nan")) -> dict:
    """One index row; errors of any kind are caught and written into ``status``/``error``."""
    row = dict(source=source, root=str(root), path=path.relative_to(root).as_posix(), kind=kind, frames=0,
               fps=float("nan"), height=0, width=0, duration_s=float("nan"), size_bytes=0, mtime=0.0, sha1="",
               status="ok", error="")
    try:
        row["size_bytes"], row["mtime"] = _stat(path, kind)
        info = _probe_video(path, check) if kind == "video" else _probe_frames(path, check, frames_fps)
        row.update(info)
        if checksum:
            row["sha1"] = sha1_of(_files_of(path, kind))
    except Exception as e:  # recorded, never raised: one bad file must not stop a scan of thousands
        row["status"], row["error"] = "error", f"{type(e).__name__}: {e}".replace("\n", " ")
        log.warning("index: %s unreadable: %s", path, row["error"])
    return row


def _reusable(previous: pd.DataFrame | None) -> dict:
    if previous is None or len(previous) == 0:
        return {}
    return {(r.path, r.kind): r._asdict() for r in previous[COLUMNS].itertuples(index=False)}


def _row_for(item, root: Path, source: str, cache: dict, checksum: bool, check: str, frames_fps: float):
    """(row, reused): the cached row of an unchanged file, else a fresh probe."""
    path, kind = item
    old = cache.get((path.relative_to(root).as_posix(), kind))
    if old is not None and (old["size_bytes"], old["mtime"]) == _stat(path, kind) and \
            (old["sha1"] or old["status"] != "ok" or not checksum):
        return {**old, "source": source, "root": str(root)}, True
    return index_one(path, kind, root, source, checksum, check, frames_fps), False


def build_index(root, out=None, source: str | None = None, checksum: bool = True, check: str = "first",
                previous=None, frame_folders: bool = True, frames_fps: float = float("nan"),
                progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """Scan ``root``, probe every video / frame folder, return (and write to ``out``) the index table.

    check: ``'header'`` reads the container header only; ``'first'`` also decodes the first frame;
    ``'full'`` decodes every frame and flags files whose decodable frames fall short of the header.
    previous: an index DataFrame or file (default: ``out`` if it exists) whose rows are reused for
    files with unchanged size and mtime (incremental re-index; unreadable files keep their recorded error
    until they change). workers > 1 probes and hashes files in threads (FFmpeg and hashlib release the
    GIL); rows keep the scan order either way.
    """
    if check not in CHECKS:
        raise ValueError(f"build_index check must be one of {CHECKS}; got {check!r}.")
    root = Path(root)
    source = source or root.name
    if previous is None and out is not None and Path(out).is_file():
        previous = out
    if previous is not None and not isinstance(previous, pd.DataFrame):
        previous = load_index(previous)
    items = scan(root, frame_folders)
    job = partial(_row_for, root=root, source=source, cache=_reusable(previous), checksum=checksum, check=check,
                  frames_fps=frames_fps)
    with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        results = list(tqdm((pool or builtins).map(job, items), total=len(items), desc=f"index {source}",
                            unit="video", disable=not progress))
    df = pd.DataFrame([row for row, _ in results], columns=COLUMNS)
    reused, n_bad = sum(r for _, r in results), int((df.status != "ok").sum())
    log.info("indexed %s: %d entries (%d reused, %d unreadable)", root, len(df), reused, n_bad)
    if out is not None:
        save_index(df, out)
    return df


def duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose SHA-1 appears more than once (the same video in two sources or two names), grouped by hash."""
    ok = df[(df.sha1 != "") & (df.status == "ok")]
    dup = ok[ok.sha1.duplicated(keep=False)]
    return dup.sort_values(["sha1", "source", "path"])[["sha1", "source", "path", "frames", "size_bytes"]]


def save_index(df: pd.DataFrame, path) -> Path:
    """Write an index as parquet (``.parquet``, needs pyarrow) or CSV (anything else), atomically."""
    from endolib.utils.io import atomic_write_text

    path = Path(path)
    if path.suffix == ".parquet":
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)  # raises ImportError naming pyarrow if it is missing
    else:
        atomic_write_text(df.to_csv(index=False), path)
    return path


def load_index(path, root=None) -> pd.DataFrame:
    """Read an index written by ``save_index``; ``root`` overrides the stored root (moved dataset)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index file not found: {path}. Build one with "
                                f"`python -m endolib.data.index ROOT --out {path}`.")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, keep_default_na=False,
                                                                           na_values={"fps": [""], "duration_s": [""]})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is not an endolib index: columns {missing} missing (has {list(df.columns)}). "
                         "Rebuild it with endolib.data.index.build_index.")
    df["error"] = df["error"].fillna("").astype(str)
    df["sha1"] = df["sha1"].fillna("").astype(str)
    if root is not None:
        df["root"] = str(root)
    return df


def full_paths(df: pd.DataFrame) -> list[Path]:
    """Absolute paths of the index rows (root / path)."""
    return [Path(r) / p for r, p in zip(df["root"], df["path"])]


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per-source totals: entries, readable, unreadable, frames, hours (where fps is known)."""
    ok = df.status == "ok"
    hours = np.where(ok & (df.fps > 0), df.frames / df.fps.where(df.fps > 0, 1) / 3600, 0.0)
    g = df.assign(ok=ok, bad=~ok, hours=hours, frames_ok=np.where(ok, df.frames, 0)).groupby("source")
    return g.agg(entries=("path", "size"), readable=("ok", "sum"), unreadable=("bad", "sum"),
                 frames=("frames_ok", "sum"), hours=("hours", "sum")).reset_index()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--out", required=True, help="index file (.csv, or .parquet with pyarrow)")
    ap.add_argument("--source", default=None, help="source name (default: the root folder's name)")
    ap.add_argument("--check", default="first", choices=CHECKS)
    ap.add_argument("--no-checksum", action="store_true")
    ap.add_argument("--workers", type=int, default=1, help="threads probing/hashing files in parallel")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    df = build_index(args.root, args.out, args.source, not args.no_checksum, args.check, workers=args.workers)
    bad = df[df.status != "ok"]
    for r in bad.itertuples():
        log.warning("unreadable: %s (%s)", r.path, r.error)
    log.info("wrote %s: %d entries, %d unreadable", args.out, len(df), len(bad))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
