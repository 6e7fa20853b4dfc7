"""CholecT50 triplets: four heads' shapes, streaming == clip, AP vs scikit-learn, prior baseline, tiny run."""
import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from endolib.models import create_model
from endolib.tasks import triplet
from endolib.tasks.engine import FitConfig, fit

IMG = 32


def _model(seed=0):
    torch.manual_seed(seed)
    return triplet.triplet_model(create_model("endomamba_nano", num_classes=0, img_size=IMG))


def test_head_shapes():
    out = _model()(torch.randn(2, 3, 4, IMG, IMG))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "instrument": (2, 4, 6), "verb": (2, 4, 10), "target": (2, 4, 15), "triplet": (2, 4, 100)}


def test_streaming_equals_whole_clip_for_every_head():
    m = _model().eval()
    torch.manual_seed(3)
    video = torch.randn(3, 9, IMG, IMG)
    labels = {k: (torch.rand(9, n) < 0.2).float().numpy() for k, n in triplet.COMPONENTS.items()}
    with torch.no_grad():
        full = m(video[None])
    preds = triplet.predict_videos(m, [("v", video, labels)], chunk=4)
    for k in triplet.COMPONENTS:
        (y,), (s,) = preds[k]
        assert np.array_equal(y, labels[k])
        assert np.abs(s - torch.sigmoid(full[k][0]).numpy()).max() <= 1e-4


def _random_preds(seed, frames=60):
    rng = np.random.default_rng(seed)
    out = {}
    for k, n in triplet.COMPONENTS.items():
        y = (rng.random((frames, n)) < 0.15).astype(float)
        y[:, -1] = 0  # one class absent from the evaluation set: its AP is undefined (NaN), left out
        s = np.clip(0.5 * y + rng.random((frames, n)), 0, 1)
        out[k] = (y, s)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_ap_matches_sklearn_per_class_and_mean_over_present(seed):
    preds = _random_preds(seed)
    scores = triplet.triplet_scores(preds)
    for k, (y, s) in preds.items():
        present = y.sum(0) > 0
        ref = np.full(y.shape[1], np.nan)
        ref[present] = [average_precision_score(y[:, c], s[:, c]) for c in np.flatnonzero(present)]
        m, ap = scores[k]
        assert np.allclose(ap[present], ref[present], atol=1e-9)
        assert np.isnan(ap[~present]).all()
        assert m == pytest.approx(np.nanmean(ref))


def test_video_mode_averages_each_class_over_videos():
    a, b = _random_preds(3, frames=30), _random_preds(4, frames=40)
    per_video = triplet.triplet_scores({k: ([a[k][0], b[k][0]], [a[k][1], b[k][1]]) for k in a}, mode="video")
    for k in a:
        ap_a, ap_b = triplet.triplet_scores({k: a[k]})[k][1], triplet.triplet_scores({k: b[k]})[k][1]
        both = np.stack([ap_a, ap_b])
        ok = ~np.isnan(both).all(0)
        ref = np.where(ok, np.nansum(both, 0) / np.maximum((~np.isnan(both)).sum(0), 1), np.nan)
        assert np.allclose(per_video[k][1][ok], ref[ok])


def test_prior_baseline_ap_is_test_prevalence():
    rng = np.random.default_rng(7)
    train = {k: (rng.random((80, n)) < 0.2).astype(float) for k, n in triplet.COMPONENTS.items()}
    test = _random_preds(2, frames=50)
    prior = {k: v[0] for k, v in triplet.prior_scores(train, [50]).items()}
    assert prior["verb"].shape == (50, 10)
    assert np.allclose(prior["verb"][0], train["verb"].mean(0))
    scores = triplet.triplet_scores({k: (test[k][0], prior[k]) for k in test})
    y = test["instrument"][0]
    present = y.sum(0) > 0
    # a constant score ranks all frames as one tie: AP = prevalence of the class in the test frames
    assert np.allclose(scores["instrument"][1][present], y.mean(0)[present])


class TintedTriplets(torch.utils.data.Dataset):
    def __init__(self, n=16, t=3, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.on = torch.rand(n, t, generator=g) < 0.5          # instrument 0 visible or not
        self.videos = 0.3 * torch.randn(n, 3, t, IMG, IMG, generator=g) + \
            2.0 * self.on.float()[:, None, :, None, None]

    def __len__(self):
        return len(self.on)

    def __getitem__(self, i):
        item = {"video": self.videos[i]}
        for k, n in triplet.COMPONENTS.items():
            y = torch.zeros(self.on.shape[1], n)
            y[:, 0] = self.on[i].float()
            item[k] = y
        return item


def test_tiny_training_run_loss_falls():
    m = _model()
    res = fit(m, TintedTriplets(), triplet.triplet_loss,
              FitConfig(mode="finetune", epochs=6, batch_size=4, lr=3e-2, log_every=1, device="cpu",
                        progress=False))
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    assert {"bce_instrument", "bce_triplet"} <= {r["metric"] for r in res.history}
