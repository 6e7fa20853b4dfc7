"""PretrainClips: clip content and shape, reproducibility, per-source weighting, unreadable files."""
import numpy as np
import pytest
import torch

from endolib.data.index import build_index
from endolib.data.io import write_video
from endolib.data.pretrain_clips import PretrainClips
from endolib.data.transforms import denormalize

STEP = 6  # brightness added per frame index, so a decoded frame tells which index it was


def counting_video(rng, n, size=32):
    """Frames whose mean brightness encodes their index (plus seeded smooth texture, never flat)."""
    tex = rng.normal(size=(size, size)).cumsum(0).cumsum(1)
    tex = 20 * (tex - tex.min()) / np.ptp(tex)
    frames = np.stack([np.repeat((tex + 10 + STEP * t)[..., None], 3, -1) for t in range(n)])
    return frames.clip(0, 255).astype(np.uint8), 10 + tex.mean()


@pytest.fixture
def sources(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    base = {}
    for src, lengths in {"colon": [30, 12], "lap": [25], "capsule": [8]}.items():
        for k, n in enumerate(lengths):
            frames, offset = counting_video(rng, n)
            base[f"{src}/v{k}"] = offset
            if src == "capsule":  # a frame folder source
                d = tmp_path / src / f"v{k}"
                d.mkdir(parents=True)
                for t, f in enumerate(frames):
                    Image.fromarray(f).save(d / f"{t:04d}.png")
            else:
                write_video(tmp_path / src / f"v{k}.mp4", frames, fps=10, crf=0)
    (tmp_path / "colon" / "broken.mp4").write_bytes(rng.bytes(2000))
    return {s: tmp_path / s for s in ("colon", "lap", "capsule")}, base


def decoded_indices(video, offset):
    x = denormalize(video).mean(dim=(0, 2, 3)).numpy() * 255  # (T,) mean brightness per frame
    return np.round((x - offset) / STEP).astype(int)


def test_items_are_normalised_clips_of_the_right_frames(sources):
    roots, base = sources
    ds = PretrainClips(roots, num_frames=4, sampling_rate=3, img_size=16, seed=1)
    assert len(ds) == 4  # broken.mp4 is left out (it stays in the index with its reason)
    for i in range(len(ds)):
        item = ds[i]
        v = item["video"]
        assert v.shape == (3, 4, 16, 16) and v.dtype == torch.float32
        assert item["source"] in roots and item["source"] in item["path"]
        key = f"{item['source']}/{item['path'].rsplit('/', 1)[-1].split('.')[0]}"
        idx = decoded_indices(v, base[key])
        n = int(ds.items.frames.iloc[i])
        expected_pad = n < 10  # span = 10 frames
        if expected_pad:  # capsule: 8 frames -> 0, 3, 6, 7 (last frame repeated)
            np.testing.assert_array_equal(idx, [0, 3, 6, 7])
        else:
            assert np.all(np.diff(idx) == 3) and 0 <= idx[0] and idx[-1] < n


def test_same_seed_epoch_index_gives_the_same_clip(sources):
    roots, base = sources
    a = PretrainClips(roots, num_frames=4, sampling_rate=2, img_size=16, seed=3)
    b = PretrainClips(roots, num_frames=4, sampling_rate=2, img_size=16, seed=3)
    i = int(np.flatnonzero(a.items.frames.to_numpy() == 30)[0])
    torch.testing.assert_close(a[i]["video"], b[i]["video"])
    starts = set()
    for epoch in range(8):
        a.set_epoch(epoch)
        starts.add(int(decoded_indices(a[i]["video"], base["colon/v0"])[0]))
    assert len(starts) > 2  # the clip moves between epochs


def test_source_weights_set_the_draw_probabilities(sources):
    roots, _ = sources
    ds = PretrainClips(roots, weights={"colon": 2, "lap": 1, "capsule": 1}, num_frames=2, img_size=8)
    p = ds.source_probabilities()
    assert p == pytest.approx({"colon": 0.5, "lap": 0.25, "capsule": 0.25})
    w = ds.sample_weights()
    colon = (ds.items.source == "colon").to_numpy()
    # within a source, proportional to frames: 30-frame video drawn 30/42 of the colon mass
    assert w[colon].max() / w[colon].sum() == pytest.approx(30 / 42)
    draws = list(ds.sampler(6000, generator=torch.Generator().manual_seed(0)))
    freq = {s: np.mean([ds.items.source.iloc[j] == s for j in draws]) for s in p}
    assert freq == pytest.approx(p, abs=0.03)
    natural = PretrainClips(roots, num_frames=2, img_size=8, within="videos").source_probabilities()
    assert natural == pytest.approx({"colon": 0.5, "lap": 0.25, "capsule": 0.25})  # 2:1:1 videos


def test_a_file_broken_after_indexing_is_replaced_and_recorded(sources, tmp_path):
    roots, _ = sources
    index = build_index(roots["lap"], source="lap", progress=False)
    ds = PretrainClips({"colon": roots["colon"], "lap": index}, num_frames=2, img_size=8, seed=0)
    (roots["lap"] / "v0.mp4").write_bytes(b"\x00junk" * 100)  # corrupted after indexing
    i = int(np.flatnonzero((ds.items.source == "lap").to_numpy())[0])
    item = ds[i]
    assert item["source"] == "colon" and ds.failures and "v0.mp4" in ds.failures[0][0]


def test_errors_name_the_problem(sources, tmp_path):
    roots, _ = sources
    with pytest.raises(ValueError, match="not in sources"):
        PretrainClips(roots, weights={"colonoscopy": 1})
    with pytest.raises(FileNotFoundError, match="pretrain_corpus"):
        PretrainClips({"x": tmp_path / "missing"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable video"):
        PretrainClips({"e": tmp_path / "empty"})
    with pytest.raises(ValueError, match="at least one"):
        PretrainClips({})
