"""Phase metrics: strict mode against scikit-learn, relaxed boundary against hand-computed cases."""
import numpy as np
import pytest
from sklearn import metrics as skm

from endolib.metrics import phase as P


def _random_video(rng, num_classes, length, skip=()):
    """Ordered phases with random lengths (some phases skipped) and a noisy, shifted prediction."""
    phases = [c for c in range(num_classes) if c not in skip]
    cuts = np.sort(rng.choice(np.arange(1, length), size=len(phases) - 1, replace=False))
    gt = np.repeat(phases, np.diff(np.concatenate([[0], cuts, [length]])))
    pred = np.roll(gt, int(rng.integers(-4, 5)))
    flip = rng.random(length) < 0.15
    pred[flip] = rng.integers(0, num_classes, size=flip.sum())
    return gt, pred


def _sklearn_per_video(gt, pred, k):
    labels = np.arange(k)
    absent = ~np.isin(labels, gt)
    out = {
        "jaccard": skm.jaccard_score(gt, pred, labels=labels, average=None, zero_division=0),
        "precision": skm.precision_score(gt, pred, labels=labels, average=None, zero_division=np.nan),
        "recall": skm.recall_score(gt, pred, labels=labels, average=None, zero_division=np.nan),
    }
    for v in out.values():
        v[absent] = np.nan
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_strict_per_video_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    gt, pred = _random_video(rng, 7, 120, skip=(2,))
    res = P.evaluate_video(gt, pred, 7)
    ref = _sklearn_per_video(gt, pred, 7)
    for k in ("jaccard", "precision", "recall"):
        np.testing.assert_allclose(res[k], ref[k], atol=1e-12, equal_nan=True)
    assert np.isnan(res["jaccard"][2])  # phase absent from the ground truth
    assert res["accuracy"] == pytest.approx(skm.accuracy_score(gt, pred))


@pytest.mark.parametrize("average", ["phase", "video"])
def test_strict_aggregation_matches_independent_reference(average):
    rng = np.random.default_rng(42)
    vids = [_random_video(rng, 7, int(rng.integers(60, 140)), skip=s) for s in [(), (1,), (6,), (), (3, 4)]]
    gts, preds = [v[0] for v in vids], [v[1] for v in vids]
    res = P.phase_metrics(gts, preds, 7, average=average)
    per = [_sklearn_per_video(g, p, 7) for g, p in vids]
    for k in ("jaccard", "precision", "recall"):
        m = np.stack([d[k] for d in per], axis=1)          # (phases, videos)
        first = np.nanmean(m, axis=1 if average == "phase" else 0)
        assert res[k] == pytest.approx(np.mean(first), abs=1e-12)
        assert res[f"{k}_std"] == pytest.approx(np.std(first, ddof=1), abs=1e-12)
    accs = [skm.accuracy_score(g, p) for g, p in vids]
    assert res["accuracy"] == pytest.approx(np.mean(accs))
    assert res["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert res["num_videos"] == 5


# hand-computed case, 'general' rules, fps=0.2 -> a 2-frame relaxed window
GT = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2])
PRED = np.array([0, 0, 0, 1, 1, 0, 0, 1, 1, 2, 1, 2, 2, 2, 2])


def test_relaxed_hand_case_matlab_indexing():
    correct = P.relaxed_correct(GT, PRED, 3, fps=0.2, rules="general")
    # late transitions (pred = previous phase in the first 2 frames) are forgiven; the end-of-segment
    # mask is applied to the segment's FIRST frames, as the MATLAB script does, so frames 3, 4, 9 stay wrong
    np.testing.assert_array_equal(correct, [1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1])
    res = P.evaluate_video(GT, PRED, 3, fps=0.2, relaxed=True, rules="general")
    assert res["accuracy"] == pytest.approx(12 / 15)
    np.testing.assert_allclose(res["jaccard"], [5 / 7, 5 / 8, 5 / 6])
    np.testing.assert_allclose(res["precision"], [1, 1, 1])
    np.testing.assert_allclose(res["recall"], [1, 1, 1])
    strict = P.evaluate_video(GT, PRED, 3)
    assert strict["accuracy"] == pytest.approx(9 / 15)


def test_relaxed_hand_case_intended_indexing_and_clipping():
    correct = P.relaxed_correct(GT, PRED, 3, fps=0.2, rules="general", matlab_indexing=False)
    assert correct.all()
    res = P.evaluate_video(GT, PRED, 3, fps=0.2, relaxed=True, rules="general", matlab_indexing=False)
    np.testing.assert_allclose(res["jaccard"], [1, 1, 1])
    np.testing.assert_allclose(res["precision"], [7 / 5, 8 / 5, 6 / 5])  # relaxed TP can exceed #pred
    agg = P.phase_metrics([GT], [PRED], 3, fps=0.2, relaxed=True, rules="general", matlab_indexing=False)
    assert agg["precision"] == 1.0 and agg["recall"] == 1.0  # Main.m clips at 100 %
    assert agg["accuracy_std"] == 0.0                          # MATLAB std of one value


def test_cholec80_rules_allow_two_phase_jumps():
    gt = np.array([3, 3, 5, 5, 5, 5])
    pred = np.array([3, 3, 3, 5, 5, 5])  # pred - gt = -2 at the start of phase 5 (0-based)
    assert P.relaxed_correct(gt, pred, 7, fps=0.2, rules="cholec80").all()
    assert not P.relaxed_correct(gt, pred, 7, fps=0.2, rules="general")[2]
    # outside the 10 s window the same error is not forgiven
    gt2 = np.array([3] * 2 + [5] * 8)
    pred2 = gt2.copy()
    pred2[5] = 3
    assert not P.relaxed_correct(gt2, pred2, 7, fps=0.2, rules="cholec80")[5]


def test_window_scales_with_fps():
    gt = np.array([0] * 30 + [1] * 30)
    pred = np.array([0] * 45 + [1] * 15)          # phase 1 recognised 15 frames late
    assert P.relaxed_correct(gt, pred, 2, fps=1.0, rules="general").sum() == 60 - 5   # 10-frame window
    assert P.relaxed_correct(gt, pred, 2, fps=2.0, rules="general").all()              # 20-frame window


def test_pooled_protocol_matches_sklearn():
    rng = np.random.default_rng(7)
    vids = [_random_video(rng, 7, int(rng.integers(50, 90))) for _ in range(4)]
    res = P.pooled_phase_metrics([v[0] for v in vids], [v[1] for v in vids])
    g = np.concatenate([v[0] for v in vids])
    p = np.concatenate([v[1] for v in vids])
    assert res["accuracy_frames"] == pytest.approx(skm.accuracy_score(g, p))
    assert res["accuracy_video"] == pytest.approx(np.mean([skm.accuracy_score(*v) for v in vids]))
    assert res["precision"] == pytest.approx(skm.precision_score(g, p, average="macro", zero_division=0))
    assert res["recall"] == pytest.approx(skm.recall_score(g, p, average="macro", zero_division=0))
    assert res["jaccard"] == pytest.approx(skm.jaccard_score(g, p, average="macro", zero_division=0))
    assert res["f1"] == pytest.approx(skm.f1_score(g, p, average="macro", zero_division=0))
    per = [skm.jaccard_score(g == i, p == i) for i in range(g.max() + 1)]
    assert res["jaccard_std"] == pytest.approx(np.std(per))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="written for 7 phases"):
        P.relaxed_correct(np.zeros(5), np.zeros(5), 8, rules="cholec80")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        P.evaluate_video([0, 1, 3], [0, 1, 2], 3)
    with pytest.raises(ValueError, match="equal length"):
        P.evaluate_video([0, 1], [0], 3)
    with pytest.raises(ValueError, match="average must be"):
        P.phase_metrics([[0]], [[0]], 1, average="frame")


def _matlab_evaluate_literal(gt1, pred1, fps, n_phases, rule_phases):
    """Line-by-line transcription of Evaluate.m's relaxed part with 1-based labels and MATLAB indexing
    semantics (A(mask) = 0 with a mask shorter than A touches the first len(mask) elements)."""
    ori_t = int(np.floor(10 * fps))
    diff = pred1 - gt1
    updated = np.zeros_like(diff)
    two_step_early, two_step_late = rule_phases
    for i_phase in range(1, n_phases + 1):
        idx = np.flatnonzero(gt1 == i_phase)
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if idx.size else []
        for run in runs:
            start, end = run.min(), run.max()
            cur = diff[start:end + 1].copy()
            t = min(ori_t, cur.size)
            late = (-1, -2) if i_phase in two_step_late else (-1,)
            early = (1, 2) if i_phase in two_step_early else (1,)
            head = np.isin(cur[:t], late)
            cur[np.flatnonzero(head)] = 0
            tail = np.isin(cur[cur.size - t:], early)
            cur[np.flatnonzero(tail)] = 0           # MATLAB: logical index of length t
            updated[start:end + 1] = cur
    return updated == 0


@pytest.mark.parametrize("rules,n,two_early,two_late", [
    ("cholec80", 7, (4, 5, 6, 7), (6, 7)),
    ("m2cai16", 8, (5, 6, 7, 8), (7, 8)),
    ("general", 5, (), ()),
])
@pytest.mark.parametrize("fps", [0.5, 1.0])
def test_relaxed_matches_literal_matlab_transcription(rules, n, two_early, two_late, fps):
    rng = np.random.default_rng(n * 10 + int(fps * 2))
    for _ in range(4):
        gt, pred = _random_video(rng, n, int(rng.integers(80, 200)))
        # add near-boundary confusions with the neighbouring phases, the case the rules are about
        shift = rng.integers(-2, 3, size=gt.size)
        near = rng.random(gt.size) < 0.3
        pred = np.where(near, np.clip(gt + shift, 0, n - 1), pred)
        ours = P.relaxed_correct(gt, pred, n, fps=fps, rules=rules)
        ref = _matlab_evaluate_literal(gt + 1, pred + 1, fps, n, (two_early, two_late))
        np.testing.assert_array_equal(ours, ref)
