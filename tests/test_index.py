"""Indexer: every candidate gets a row; corrupt, empty and truncated files are recorded with a reason, never dropped."""
import hashlib

import av
import numpy as np
import pandas as pd
import pytest

import endolib.data.index as index_mod
from endolib.data.index import build_index, load_index, main, scan, summarize
from endolib.data.io import write_video


def noise(rng, t, h=32, w=32):
    return rng.integers(1, 256, (t, h, w, 3), dtype=np.uint8)


def write_faststart(path, frames, fps):
    """An mp4 with its header (moov) first: truncating it keeps the header, so only decoding can tell."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for a in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture
def corpus(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "corpus"
    write_video(root / "a.mp4", noise(rng, 20), fps=25)
    write_video(root / "sub" / "b.avi", noise(rng, 12, 24, 40), fps=10)
    good = (root / "a.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (root / "garbage.mkv").write_bytes(rng.bytes(4000))
    (root / "empty.mov").write_bytes(b"")
    write_faststart(root / "fs.mp4", noise(rng, 30), 10)
    fs = (root / "fs.mp4").read_bytes()
    (root / "fs_truncated.mp4").write_bytes(fs[: int(len(fs) * 0.6)])
    (root / "frames" / "case1").mkdir(parents=True)
    for i, f in enumerate(noise(rng, 7, 16, 16)):
        Image.fromarray(f).save(root / "frames" / "case1" / f"{i:05d}.png")
    (root / "readme.txt").write_text("not a video")
    return root


def test_scan_finds_videos_and_frame_folders(corpus):
    found = {(p.relative_to(corpus).as_posix(), k) for p, k in scan(corpus)}
    assert found == {("a.mp4", "video"), ("sub/b.avi", "video"), ("truncated.mp4", "video"),
                     ("garbage.mkv", "video"), ("empty.mov", "video"), ("fs.mp4", "video"),
                     ("fs_truncated.mp4", "video"), ("frames/case1", "frames")}
    with pytest.raises(FileNotFoundError, match="ENDOLIB_DATA"):
        scan(corpus / "nope")


def test_bad_files_are_recorded_with_a_reason_not_dropped(corpus):
    df = build_index(corpus, source="toy", progress=False).set_index("path")
    assert len(df) == 8 and set(df.source) == {"toy"}
    for bad in ("truncated.mp4", "garbage.mkv", "empty.mov"):
        assert df.loc[bad, "status"] == "error" and bad in df.loc[bad, "error"]
    assert "empty" in df.loc["empty.mov", "error"]
    ok = df[df.status == "ok"]
    assert set(ok.index) == {"a.mp4", "sub/b.avi", "fs.mp4", "fs_truncated.mp4", "frames/case1"}
    assert (ok.error == "").all()
    a = df.loc["a.mp4"]
    assert (a.frames, a.height, a.width, a.fps) == (20, 32, 32, 25.0) and a.duration_s == pytest.approx(0.8)
    assert a.sha1 == hashlib.sha1((corpus / "a.mp4").read_bytes()).hexdigest()
    assert (df.loc["sub/b.avi", "frames"], df.loc["sub/b.avi", "width"]) == (12, 40)
    fr = df.loc["frames/case1"]
    assert fr.kind == "frames" and fr.frames == 7 and fr.height == 16 and np.isnan(fr.fps)


def test_full_check_catches_a_truncated_file_whose_header_survived(corpus):
    quick = build_index(corpus, check="header", checksum=False, progress=False).set_index("path")
    assert quick.loc["fs_truncated.mp4", "status"] == "ok"  # the header alone looks fine
    full = build_index(corpus, check="full", checksum=False, progress=False).set_index("path")
    row = full.loc["fs_truncated.mp4"]
    assert row.status == "error" and "truncated or corrupt" in row.error
    assert full.loc["fs.mp4", "status"] == "ok" and full.loc["a.mp4", "status"] == "ok"


def test_csv_round_trip_and_incremental_reindex(corpus, tmp_path, monkeypatch):
    out = tmp_path / "index.csv"
    first = build_index(corpus, out, progress=False)
    back = load_index(out)
    pd.testing.assert_frame_equal(back[first.columns].reset_index(drop=True), first, check_dtype=False)

    calls = []
    real = index_mod.index_one
    monkeypatch.setattr(index_mod, "index_one", lambda path, *a, **k: calls.append(path.name) or real(path, *a, **k))
    rng = np.random.default_rng(9)
    write_video(corpus / "a.mp4", noise(rng, 5), fps=25)  # changed
    write_video(corpus / "new.mp4", noise(rng, 6), fps=25)  # added
    second = build_index(corpus, out, progress=False).set_index("path")
    assert sorted(calls) == ["a.mp4", "new.mp4"]  # everything else reused, errors included
    assert second.loc["a.mp4", "frames"] == 5 and second.loc["new.mp4", "frames"] == 6
    assert second.loc["garbage.mkv", "status"] == "error" and len(second) == 9
    assert load_index(out).shape[0] == 9


def test_load_index_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m endolib.data.index ROOT --out .*none.csv"):
        load_index(tmp_path / "none.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not an endolib index"):
        load_index(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="check"):
        build_index(tmp_path, check="deep")


def test_summarize_counts_only_readable_frames(corpus):
    s = summarize(build_index(corpus, source="toy", checksum=False, progress=False)).set_index("source")
    assert s.loc["toy", "entries"] == 8 and s.loc["toy", "unreadable"] == 3 and s.loc["toy", "readable"] == 5
    assert s.loc["toy", "frames"] == 20 + 12 + 30 + 30 + 7
    assert s.loc["toy", "hours"] == pytest.approx((20 / 25 + 12 / 10 + 30 / 10 + 30 / 10) / 3600)


def test_cli_writes_the_index(corpus, tmp_path):
    assert main([str(corpus), "--out", str(tmp_path / "i.csv"), "--no-checksum"]) == 0
    df = load_index(tmp_path / "i.csv")
    assert len(df) == 8 and (df.sha1 == "").all()


def test_threaded_index_equals_serial_and_duplicates_are_found(corpus):
    import shutil

    shutil.copy(corpus / "a.mp4", corpus / "sub" / "a_copy.mp4")
    serial = build_index(corpus, progress=False)
    threaded = build_index(corpus, progress=False, workers=3)
    pd.testing.assert_frame_equal(serial, threaded)
    from endolib.data.index import duplicates

    dup = duplicates(serial)
    assert sorted(dup.path) == ["a.mp4", "sub/a_copy.mp4"] and dup.sha1.nunique() == 1
