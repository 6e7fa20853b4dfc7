"""Video I/O: write/read round trip, partial reads, probing, frame folders, corrupt files, field-of-view crop."""
import filecmp
import gc

import numpy as np
import pytest

from endolib.data.io import (VideoReadError, detect_fov, fov_crop, probe_video, read_frames_folder, read_video,
                             write_video)


def smooth_noise(rng, t, h, w):
    """Seeded random frames smooth enough for H.264 to keep (pure noise is destroyed by chroma subsampling)."""
    x = rng.normal(size=(t, h, w, 3)).cumsum(1).cumsum(2)
    x = (x - x.min(axis=(1, 2, 3), keepdims=True)) / np.ptp(x, axis=(1, 2, 3), keepdims=True)
    return (40 + 200 * x).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv", ".mov"])
def test_write_read_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(1)
    frames = smooth_noise(rng, 12, 32, 48)
    path = write_video(tmp_path / f"v{suffix}", frames, fps=25)
    back = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 6  # lossy codec, but the same picture
    info = probe_video(path)
    assert (info["frames"], info["height"], info["width"]) == (12, 32, 48)
    assert info["fps"] == pytest.approx(25) and info["duration_s"] == pytest.approx(12 / 25, abs=0.05)


def test_partial_reads_pick_the_right_frames(tmp_path):
    rng = np.random.default_rng(2)
    frames = smooth_noise(rng, 20, 32, 32)
    path = write_video(tmp_path / "v.mp4", frames, fps=10, crf=0)
    full = read_video(path)
    np.testing.assert_array_equal(read_video(path, start=3, num=4, step=5), full[3:19:5])
    np.testing.assert_array_equal(read_video(path, start=15), full[15:])
    # each decoded frame is closest to the frame written at that index
    errs = np.abs(full[7].astype(int)[None] - frames).mean(axis=(1, 2, 3))
    assert errs.argmin() == 7
    with pytest.raises(ValueError, match="past the end"):
        read_video(path, start=20)


def test_odd_sizes_and_fractional_fps(tmp_path):
    frames = smooth_noise(np.random.default_rng(3), 5, 31, 45)
    path = write_video(tmp_path / "odd.mp4", frames, fps=29.97)
    assert read_video(path).shape == frames.shape
    assert probe_video(path, count_frames=True)["fps"] == pytest.approx(29.97, abs=0.01)


def test_write_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", np.random.default_rng(0).random((3, 8, 8, 3)), fps=5)


def test_corrupt_truncated_and_missing_files(tmp_path):
    rng = np.random.default_rng(4)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    good = write_video(tmp_path / "good.mp4", smooth_noise(rng, 10, 32, 32), fps=10)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for bad in (garbage, empty, truncated):
        for fn in (read_video, probe_video):
            with pytest.raises(VideoReadError, match=bad.name) as e:
                fn(bad)
            assert "Re-download or re-encode" in str(e.value)
    with pytest.raises(FileNotFoundError, match="nothere.mp4"):
        read_video(tmp_path / "nothere.mp4")


def test_read_frames_folder_natural_order(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(5)
    frames = rng.integers(1, 256, (12, 16, 20, 3), dtype=np.uint8)
    for i, f in enumerate(frames):  # frame_2 must come before frame_10
        Image.fromarray(f).save(tmp_path / f"frame_{i}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    np.testing.assert_array_equal(read_frames_folder(tmp_path), frames)
    np.testing.assert_array_equal(read_frames_folder(tmp_path, start=1, num=3, step=4), frames[1:12:4])
    (tmp_path / "frame_99.png").write_bytes(b"broken")
    with pytest.raises(VideoReadError, match="frame_99.png"):
        read_frames_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_frames_folder(tmp_path / "missing")


def _disc_frames(rng, h=90, w=120, cy=45, cx=60, r=40):
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    return rng.integers(40, 256, (4, h, w, 3), dtype=np.uint8) * disc[None, :, :, None]


def test_fov_circular_detected_and_inscribed_crop_has_no_black():
    frames = _disc_frames(np.random.default_rng(6))
    fov = detect_fov(frames)
    assert fov.circular
    assert abs(fov.cy - 45) < 1 and abs(fov.cx - 60) < 1 and abs(fov.radius - 40) < 1.5
    box = fov_crop(frames)
    assert abs(box.shape[1] - 81) <= 3 and abs(box.shape[2] - 81) <= 3
    inner = fov_crop(frames, mode="inscribed")
    assert inner.shape[1] >= 54 and inner.min() >= 40  # largest inner square of r=40 is ~56 wide


def test_fov_rectangular_black_border_removed_exactly():
    rng = np.random.default_rng(7)
    frames = np.zeros((3, 60, 80, 3), np.uint8)
    frames[:, 5:50, 10:70] = rng.integers(30, 256, (3, 45, 60, 3))
    cropped, fov = fov_crop(frames, return_fov=True)
    assert not fov.circular
    np.testing.assert_array_equal(cropped, frames[:, 5:50, 10:70])
    np.testing.assert_array_equal(fov_crop(frames, mode="inscribed"), cropped)  # no circle: same crop


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_seeking_reads_the_same_frames_as_decoding_from_the_start(tmp_path, suffix):
    rng = np.random.default_rng(8)
    frames = smooth_noise(rng, 300, 16, 16)
    path = write_video(tmp_path / f"long{suffix}", frames, fps=25, keyint=10)
    for start, num, step in [(200, 7, 3), (121, 1, 1), (290, None, 1), (150, 4, 37)]:
        fast = read_video(path, start=start, num=num, step=step)
        slow = read_video(path, start=start, num=num, step=step, seek=False)
        np.testing.assert_array_equal(fast, slow)
    assert len(read_video(path, start=290)) == 10
    with pytest.raises(ValueError, match="past the end"):
        read_video(path, start=300)


def test_seek_really_skips_the_beginning_of_an_mp4(tmp_path):
    from endolib.data import io

    path = write_video(tmp_path / "long.mp4", smooth_noise(np.random.default_rng(9), 300, 16, 16), fps=25, keyint=10)
    container = io._open(path)
    try:
        first_idx = next(io._indexed_frames(container, container.streams.video[0], 200, seek=True))[0]
    finally:
        container.close()
    assert 180 <= first_idx <= 200  # started at a keyframe shortly before frame 200, not at frame 0


def test_write_video_is_byte_reproducible(tmp_path):
    """The same frames encode to the same bytes every time (the synthetic data's determinism rests on it)."""
    t, y, x = np.meshgrid(np.arange(24), np.arange(64), np.arange(64), indexing="ij")
    noise = np.random.default_rng(3).integers(0, 40, (24, 64, 64, 3))
    frames = (np.stack([x + 3 * t, y - 2 * t, x + y + t], -1) * 2 + noise).astype(np.uint8)  # moving gradients
    gc.disable()  # no collections between encodes: mbtree's memory-dependent output differed most often so
    try:
        paths = [write_video(tmp_path / f"v{i}.mp4", frames, fps=8) for i in range(12)]
    finally:
        gc.enable()
    assert all(filecmp.cmp(paths[0], p, shallow=False) for p in paths[1:])
