"""Phase recognition: head shapes, streaming == clip, constant-size state, baseline, a tiny training run."""
import numpy as np
import pytest
import torch

from endolib.models import create_model
from endolib.tasks import phase
from endolib.tasks.engine import FitConfig, fit

IMG = 32


def _model(k=5, seed=0):
    torch.manual_seed(seed)
    return phase.PerFrameModel(create_model("endomamba_nano", num_classes=0, img_size=IMG), {"phase": k})


def test_head_shapes_and_feature_backbone_required():
    m = _model(7)
    out = m(torch.randn(2, 3, 5, IMG, IMG))
    assert set(out) == {"phase"} and out["phase"].shape == (2, 5, 7)
    with pytest.raises(ValueError, match="num_classes=0"):
        phase.PerFrameModel(create_model("endomamba_nano", num_classes=3, img_size=IMG), {"phase": 7})


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_streaming_equals_whole_clip(chunk):
    m = _model().eval()
    torch.manual_seed(1)
    video = torch.randn(3, 11, IMG, IMG)
    with torch.no_grad():
        full = m(video[None])["phase"][0]
    streamed = phase.stream_outputs(m, video, chunk=chunk)["phase"]
    assert streamed.shape == full.shape
    assert (streamed - full).abs().max().item() <= 1e-4


def test_stream_state_does_not_grow_with_frames():
    m = _model().eval()
    sizes = []
    for n in (2, 12):
        state = m.init_stream(1)
        with torch.no_grad():
            for t in range(n):
                _, state = m.step(torch.randn(1, 3, 1, IMG, IMG), state)
        sizes.append(sum(x.numel() for x in state.conv + state.ssm))
    assert sizes[0] == sizes[1] > 0


def test_stream_outputs_rejects_batches():
    with pytest.raises(ValueError, match=r"\(3, T, H, W\)"):
        phase.stream_outputs(_model(), torch.randn(1, 3, 4, IMG, IMG))


def test_majority_and_predict_videos_rows():
    assert phase.majority_phase([np.array([0, 2, 2]), np.array([1, 2])]) == 2
    m = _model(4)
    vids = [(f"v{i}", torch.randn(3, 6 + i, IMG, IMG), {"phase": np.arange(6 + i) % 4}) for i in range(2)]
    rows = phase.predict_videos(m, vids, chunk=2)
    for (vid, true, pred, probs), (v, frames, _) in zip(rows, vids):
        assert vid == v and true.shape == pred.shape == (frames.shape[1],)
        assert probs.shape == (frames.shape[1], 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
        assert (probs.argmax(1) == pred).all()


class ColourPhases(torch.utils.data.Dataset):
    """Clips whose frames are tinted by their phase: a learnable per-frame signal."""

    def __init__(self, n=16, t=4, k=3, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, k, (n, t), generator=g)
        tint = torch.linspace(-1.5, 1.5, k)
        noise = 0.3 * torch.randn(n, 3, t, IMG, IMG, generator=g)
        self.videos = noise + tint[self.labels][:, None, :, None, None]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"video": self.videos[i], "phase": self.labels[i]}


@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_tiny_training_run_loss_falls(mode):
    m = _model(3)
    res = fit(m, ColourPhases(), phase.phase_loss,
              FitConfig(mode=mode, epochs=6, batch_size=4, lr=3e-3, log_every=1, device="cpu",
                        progress=False, grad_clip=1.0))
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    if mode == "linear":
        assert all(not p.requires_grad for p in m.backbone.parameters())


def test_phase_scores_hand_computed_and_relaxed_rules():
    rows = [("v", np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), None)]
    s = phase.phase_scores(rows, num_classes=2, dataset="autolaparo")
    # phase 0: union 2 frames, TP 1 -> J 1/2, P 1/1, R 1/2; phase 1: union 3, TP 2 -> J 2/3, P 2/3, R 1
    assert s["accuracy"] == pytest.approx(0.75)
    assert s["jaccard"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert s["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["recall"] == pytest.approx((1 / 2 + 1) / 2)
    assert phase.relaxed_rules("cholec80", 7) == "cholec80"
    assert phase.relaxed_rules("m2cai16", 8) == "m2cai16"
    assert phase.relaxed_rules("autolaparo", 7) == "general"
    # a late transition inside the first 10 s of a segment is forgiven by the relaxed boundary
    gt = np.array([0] * 30 + [1] * 30)
    late = gt.copy()
    late[30:35] = 0
    strict = phase.phase_scores([("v", gt, late, None)], 2, dataset="autolaparo")
    relaxed = phase.phase_scores([("v", gt, late, None)], 2, dataset="autolaparo", relaxed=True)
    assert strict["accuracy"] == pytest.approx(55 / 60) and relaxed["accuracy"] == pytest.approx(1.0)


def test_constant_rows_is_the_majority_baseline():
    rows = [("a", np.array([0, 1, 1, 2]), None, None), ("b", np.array([1, 1]), None, None)]
    base = phase.constant_rows(rows, 1, 3)
    assert [r[2].tolist() for r in base] == [[1, 1, 1, 1], [1, 1]]
    assert phase.phase_scores(base, 3, dataset="autolaparo")["accuracy"] == pytest.approx((0.5 + 1.0) / 2)


@pytest.mark.parametrize("family", ["phase", "triplet", "action", "localization"])
def test_benchmark_step_runs_and_fits_its_batch(family):
    import importlib

    mod = importlib.import_module(f"endolib.tasks.{family}")
    torch.manual_seed(0)
    step, info = mod.benchmark_step("endomamba_nano", img_size=IMG, num_frames=2, device="cpu",
                                    dtype=torch.float32, batch_size=2)
    losses = [step() for _ in range(6)]
    assert info["task"] == family and info["frames_per_step"] == 4 and info["params"] > 0
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_plots_confusion_counts_vs_sklearn_and_figures():
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.metrics import confusion_matrix

    from endolib.tasks import plots

    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert np.array_equal(plots.confusion_counts(true, pred, 5), confusion_matrix(true, pred, labels=range(5)))
    names = [f"p{i}" for i in range(5)]
    ax = plots.phase_ribbon(true, pred, names, fps=1.0, title="v")
    assert "frame accuracy" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    with pytest.raises(ValueError, match="same length"):
        plots.phase_ribbon(true, pred[:-1], names)
    ap = rng.random(5)
    ap[2] = np.nan
    ax = plots.plot_ap_bars(ap, names, baseline=rng.random(5), top=3)
    assert len(ax.patches) == 3 and ax.get_title().endswith(f"{np.nanmean(ap):.3f}")
    plots.plot_confusion(true, pred, names)
    matplotlib.pyplot.close("all")


def test_cached_frames_match_the_whole_video_forward_and_train_the_head():
    m = _model(3)
    torch.manual_seed(4)
    vids = [(f"v{i}", torch.randn(3, 5 + 2 * i, IMG, IMG), {"phase": np.arange(5 + 2 * i) % 3}) for i in range(2)]
    cache = phase.CachedFrames(m.backbone, vids, keys=("phase",), chunk=3)
    assert len(cache) == 5 + 7 and cache[0]["feats"].shape == (m.backbone.embed_dim,)
    with torch.no_grad():
        whole = torch.cat([m.backbone(v[1][None])[0] for v in vids])
    assert (cache.feats - whole).abs().max().item() <= 1e-4
    assert torch.equal(cache.labels["phase"], torch.as_tensor(np.concatenate([v[2]["phase"] for v in vids])))
    res = fit(m, cache, phase.loss_fn, FitConfig(mode="linear", epochs=20, batch_size=6, lr=3e-2, log_every=1,
                                                 device="cpu", progress=False))
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_result_rows_schema_and_checkpoint_label(tmp_path):
    from endolib.reporting import read_results, write_result_rows

    assert phase.checkpoint_label("random init (no pretraining checkpoint found under outputs/)") == "scratch"
    assert phase.checkpoint_label("pretrained: encoder.pth (found under outputs/)") == "encoder.pth"
    rows = phase.result_rows("phase", "cholec80", {"accuracy": 0.6, "jaccard": 0.5}, {"accuracy": 0.2},
                             "pretrained: enc.pth", 3, "linear", True)
    assert [r["metric"] for r in rows] == ["accuracy", "jaccard"]
    assert rows[0]["baseline_value"] == 0.2 and np.isnan(rows[1]["baseline_value"])
    assert rows[0]["checkpoint"] == "enc.pth" and "synthetic data" in rows[0]["notes"]
    write_result_rows(rows, tmp_path / "phase.csv")
    df = read_results(tmp_path)
    assert len(df) == 2 and set(df["metric"]) == {"accuracy", "jaccard"}


def test_evaluate_online_scores_model_and_majority_baseline():
    from types import SimpleNamespace

    m = _model(3)
    rng = np.random.default_rng(2)
    data = SimpleNamespace(classes=["a", "b", "c"], train_videos=[("t", None, {"phase": np.array([2, 2, 0, 1])})],
                           test_videos=[(f"v{i}", torch.randn(3, 6 + i, IMG, IMG),
                                         {"phase": np.sort(rng.integers(0, 3, 6 + i))}) for i in range(2)])
    ev = phase.evaluate_online(m, data, "autolaparo", chunk=4)
    assert ev.majority == 2 and len(ev.rows) == 2
    expected = {f"{k}{s}" for k in phase.PHASE_METRICS for s in ("", "_relaxed")} | {"jaccard_pooled", "f1_pooled"}
    assert set(ev.scores) == set(ev.baseline) == expected
    acc = np.mean([np.mean(v[2]["phase"] == 2) for v in data.test_videos])
    assert ev.baseline["accuracy"] == pytest.approx(acc)
    assert ev.table.shape == (len(expected), 2)


def test_finetune_on_whole_videos_trains_through_the_engine():
    from types import SimpleNamespace

    m = _model(3)
    ds = ColourPhases(n=4, t=6)
    vids = [(f"v{i}", ds.videos[i], {"phase": ds.labels[i].numpy()}) for i in range(4)]
    whole = phase.WholeVideos(vids, max_frames=5)
    assert len(whole) == 4 and whole[0]["video"].shape == (3, 5, IMG, IMG) and whole[0]["phase"].shape == (5,)
    data = SimpleNamespace(train_videos=vids, train=None)
    cfg = phase.fit_config("finetune", epochs=6, batch_size=4, lr=3e-3, device="cpu", progress=False, log_every=1)
    res = phase.fit_per_frame(m, data, phase.loss_fn, cfg, finetune_on="videos")  # batch size forced to 1
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert res.steps == 24 and np.mean(losses[-4:]) < np.mean(losses[:4])
    with pytest.raises(ValueError, match="finetune_on"):
        phase.fit_per_frame(m, data, phase.loss_fn, cfg, finetune_on="frames")
