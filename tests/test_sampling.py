"""Clip sampling: random/centred/spread clips, padding of short videos, sliding windows covering the video."""
import numpy as np
import pytest

from endolib.data.sampling import clip_indices, clip_span, sliding_windows


def test_random_clip_is_in_range_with_the_stride_and_starts_vary():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        idx = clip_indices(100, 8, 4, "random", rng)
        assert idx.shape == (8,) and idx.dtype == np.int64
        assert np.all(np.diff(idx) == 4) and idx[0] >= 0 and idx[-1] <= 99
        starts.add(int(idx[0]))
    # slack = 100 - 29 = 71 -> 72 possible starts, both ends reachable over 200 draws is likely; most are seen
    assert len(starts) > 50 and min(starts) <= 3 and max(starts) >= 68


def test_random_clip_is_reproducible_from_a_seed():
    a = clip_indices(500, 16, 4, "random", np.random.default_rng(7))
    b = clip_indices(500, 16, 4, "random", 7)
    np.testing.assert_array_equal(a, b)


def test_uniform_clip_is_centred():
    idx = clip_indices(101, 5, 10, "uniform")  # span 41, slack 60 -> start 30
    np.testing.assert_array_equal(idx, [30, 40, 50, 60, 70])
    assert idx[0] == 101 - 1 - idx[-1]


def test_short_video_is_padded_with_the_last_frame():
    idx = clip_indices(10, 8, 2, "random", 0)
    np.testing.assert_array_equal(idx, [0, 2, 4, 6, 8, 9, 9, 9])
    np.testing.assert_array_equal(clip_indices(1, 4, 3, "uniform"), [0, 0, 0, 0])


def test_spread_covers_the_whole_video():
    idx = clip_indices(80, 8, 4, "spread")
    np.testing.assert_array_equal(idx, [5, 15, 25, 35, 45, 55, 65, 75])
    assert np.all(np.diff(clip_indices(5, 8, 1, "spread")) >= 0)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="num_total"):
        clip_indices(0, 8, 1)
    with pytest.raises(ValueError, match="mode"):
        clip_indices(10, 4, 1, "middle")
    with pytest.raises(ValueError, match="stride"):
        sliding_windows(100, 4, 1, stride=0)


def _reference_windows(n, k, r, stride):
    span = (k - 1) * r + 1
    out, s = [], 0
    while s + span <= n:
        out.append([s + i * r for i in range(k)])
        s += stride
    if out[-1][-1] != n - 1:
        out.append([n - span + i * r for i in range(k)])
    return np.array(out)


@pytest.mark.parametrize("n,k,r,stride", [(100, 8, 2, 5), (64, 16, 4, 61), (50, 4, 1, None), (31, 8, 4, 1)])
def test_sliding_windows_match_a_plain_loop_and_reach_the_end(n, k, r, stride):
    w = sliding_windows(n, k, r, stride)
    ref = _reference_windows(n, k, r, stride or clip_span(k, r))
    np.testing.assert_array_equal(w, ref)
    assert w[0, 0] == 0 and w[-1, -1] == n - 1 and w.max() < n


def test_sliding_windows_on_a_short_video_give_one_padded_window():
    w = sliding_windows(5, 4, 2)
    np.testing.assert_array_equal(w, [[0, 2, 4, 4]])
