"""CholecT50 AP against scikit-learn and, where it installs, the reference `ivtmetrics` package."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from endolib.metrics import triplet as TR


def _videos(seed, n_videos=3, frames=(40, 70)):
    rng = np.random.default_rng(seed)
    ys, ss = [], []
    for _ in range(n_videos):
        f = int(rng.integers(*frames))
        y = (rng.random((f, 100)) < 0.04).astype(np.float64)
        y[:, 90:94] = 0                                    # a few triplets never occur
        s = np.clip(0.6 * y + rng.random((f, 100)) * 0.7, 0, 1).round(2)   # rounding -> tied scores
        ys.append(y)
        ss.append(s)
    return ys, ss


def test_triplet_map_shape_and_ranges():
    assert TR.TRIPLET_MAP.shape == (100, 3)
    for col, comp in enumerate("ivt"):
        assert sorted(set(TR.TRIPLET_MAP[:, col])) == list(range(TR.NUM_CLASSES[comp]))


@pytest.mark.parametrize("seed", [0, 1])
def test_average_precision_matches_sklearn(seed):
    ys, ss = _videos(seed, n_videos=1, frames=(150, 151))
    y, s = ys[0], ss[0]
    ap = TR.average_precision(y, s)
    present = y.sum(0) > 0
    ref = np.array([average_precision_score(y[:, k], s[:, k]) for k in np.flatnonzero(present)])
    np.testing.assert_allclose(ap[present], ref, atol=1e-12)
    assert np.isnan(ap[~present]).all()


def test_component_max_rule_by_hand():
    x = np.zeros((2, 100))
    x[0, 22] = 0.9     # triplet 22 = instrument 1, verb 3, target 7
    x[0, 23] = 0.4     # triplet 23 = instrument 1, verb 3, target 5
    x[1, 0] = 0.3      # triplet 0 = instrument 0, verb 2, target 1
    inst = TR.triplet_to_component(x, "i")
    np.testing.assert_allclose(inst[:, :2], [[0.0, 0.9], [0.3, 0.0]])
    verb = TR.triplet_to_component(x, "v")
    assert verb[0, 3] == 0.9 and verb[1, 2] == 0.3 and verb.shape == (2, 10)
    tgt = TR.triplet_to_component(x, "t")
    assert tgt[0, 7] == 0.9 and tgt[0, 5] == 0.4 and tgt.shape == (2, 15)


def test_global_and_video_modes_by_definition():
    ys, ss = _videos(3)
    glob = TR.mean_ap(ys, ss, component="v", mode="global")
    y_all = TR.triplet_to_component(np.concatenate(ys), "v")
    s_all = TR.triplet_to_component(np.concatenate(ss), "v")
    ref = [average_precision_score(y_all[:, k], s_all[:, k]) for k in range(10) if y_all[:, k].any()]
    assert glob["mAP"] == pytest.approx(np.mean(ref), abs=1e-12)
    vid = TR.triplet_ap(ys, ss, mode="video")
    per_video = np.stack([TR.average_precision(y, s) for y, s in zip(ys, ss)])
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        np.testing.assert_allclose(vid, np.nanmean(per_video, axis=0), atol=1e-12, equal_nan=True)
    assert np.isnan(vid[90:94]).all()
    assert TR.triplet_ap(ys, ss, mode="video", ignore_null=True).shape == (94,)


def _ap_as_old_sklearn(y_true, y_score, average=None):
    """sklearn 1.1-1.x returned -0.0 for a class without positives, which ivtmetrics turns into NaN;
    recent sklearn returns +0.0, which would silently count absent classes as AP 0 inside ivtmetrics."""
    out = np.asarray(average_precision_score(y_true, y_score, average=average), dtype=float)
    out[np.asarray(y_true).sum(0) == 0] = -0.0
    return out


@pytest.mark.parametrize("component", ["i", "v", "t", "ivt"])
def test_matches_ivtmetrics(component, monkeypatch):
    ivtmetrics = pytest.importorskip("ivtmetrics")
    import ivtmetrics.recognition

    monkeypatch.setattr(ivtmetrics.recognition, "average_precision_score", _ap_as_old_sklearn)
    ys, ss = _videos(11 + len(component))
    rec = ivtmetrics.Recognition(num_class=100)
    for y, s in zip(ys, ss):
        rec.update(y.astype(int), s)
        rec.video_end()
    for mode, fn in (("video", rec.compute_video_AP), ("global", rec.compute_global_AP)):
        ref = fn(component)
        ours = TR.mean_ap(ys, ss, component=component, mode=mode)
        np.testing.assert_allclose(ours["AP"], ref["AP"], atol=1e-10, equal_nan=True)
        assert ours["mAP"] == pytest.approx(ref["mAP"], abs=1e-10)
    ref_null = rec.compute_video_AP("ivt", ignore_null=True)
    ours_null = TR.mean_ap(ys, ss, mode="video", ignore_null=True)
    assert ours_null["mAP"] == pytest.approx(ref_null["mAP"], abs=1e-10)


def test_separate_head_arrays_used_as_is_and_errors():
    rng = np.random.default_rng(5)
    y = (rng.random((30, 6)) < 0.3).astype(float)
    s = rng.random((30, 6))
    np.testing.assert_allclose(TR.triplet_ap(y, s, component="i"), TR.average_precision(y, s))
    with pytest.raises(ValueError, match="multi-hot"):
        TR.average_precision(s, s)
    with pytest.raises(ValueError, match="mode must be"):
        TR.triplet_ap(y, s, mode="frame")
    with pytest.raises(ValueError, match=r"\(frames, 100\)"):
        TR.triplet_to_component(s, "i")
