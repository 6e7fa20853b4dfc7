"""The shared fine-tuning loop: lr schedule, parameter groups, training progress, exact resume."""
import math

import pytest
import torch
from torch import nn

from endolib.tasks.common import TaskModel
from endolib.tasks.engine import (EpochSampler, FitConfig, SeededItems, fit, param_groups, set_trainable,
                                  warmup_cosine)


class ToyBackbone(nn.Module):
    """Stand-in with the backbone's interface: forward_features (B, 3, T, H, W) -> (B, T, N+1, C)."""

    def __init__(self, dim=16, depth=2, patch=4):
        super().__init__()
        self.depth, self.embed_dim, self.patch = depth, dim, patch
        self.patch_embed = nn.Conv3d(3, dim, (1, patch, patch), (1, patch, patch))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.layers = nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                                  nn.Dropout(0.2)) for _ in range(depth))
        self.norm_f = nn.LayerNorm(dim)

    def forward_features(self, x):
        # x: (B, 3, T, H, W) -> (B, T, N+1, C)
        t = self.patch_embed(x).flatten(3).permute(0, 2, 3, 1)  # (B, T, N, C)
        t = torch.cat([self.cls_token.expand(t.shape[0], t.shape[1], 1, -1), t], dim=2)
        for layer in self.layers:
            t = t + layer(t)
        return self.norm_f(t)


class MeanHead(nn.Module):
    def __init__(self, dim, classes):
        super().__init__()
        self.fc = nn.Linear(dim, classes)

    def forward(self, tokens):  # (B, T, n+1, C) -> (B, classes)
        return self.fc(tokens.mean(dim=(1, 2)))


class NoisyClips(torch.utils.data.Dataset):
    """Class = which colour channel is brighter; per-item noise from the global RNG (tests seeding)."""

    def __init__(self, n=24, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 3, (n,), generator=g)
        self.base = torch.randn(n, 3, 2, 8, 8, generator=g) * 0.5

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.base[i] + 0.3 * torch.randn(3, 2, 8, 8)
        x[self.labels[i]] += 1.0
        return {"video": x, "label": self.labels[i]}


def _model(seed=0):
    torch.manual_seed(seed)
    return TaskModel(ToyBackbone(), MeanHead(16, 3))


def _loss(model, batch):
    logits = model(batch["video"])
    acc = (logits.argmax(-1) == batch["label"]).float().mean()
    return nn.functional.cross_entropy(logits, batch["label"]), {"acc": acc}


def test_warmup_cosine_shape():
    assert warmup_cosine(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10, 0.1) == pytest.approx(0.1)
    vals = [warmup_cosine(s, 50, 5, 0.01) for s in range(5, 50)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))


def test_param_groups_linear_and_layer_decay():
    m = _model()
    set_trainable(m, "linear")
    groups = param_groups(m, FitConfig(mode="linear"))
    got = {id(p) for g in groups for p in g["params"]}
    assert got == {id(p) for p in m.head.parameters()}
    set_trainable(m, "finetune")
    cfg = FitConfig(mode="finetune", backbone_lr_mult=0.5, layer_decay=0.5, weight_decay=0.1)
    scale = {id(p): (g["lr_scale"], g["weight_decay"]) for g in param_groups(m, cfg) for p in g["params"]}
    assert scale[id(m.head.fc.weight)] == (1.0, 0.1)
    assert scale[id(m.head.fc.bias)] == (1.0, 0.0)
    # depth 2: embeddings decay**3, layer 0 decay**2, layer 1 decay**1, final norm decay**0
    assert scale[id(m.backbone.patch_embed.weight)] == (0.5 * 0.5 ** 3, 0.1)
    assert scale[id(m.backbone.cls_token)] == (0.5 * 0.5 ** 3, 0.0)
    assert scale[id(m.backbone.layers[0][1].weight)] == (0.5 * 0.5 ** 2, 0.1)
    assert scale[id(m.backbone.layers[1][1].weight)] == (0.5 * 0.5, 0.1)
    assert scale[id(m.backbone.norm_f.weight)] == (0.5, 0.0)
    assert len(scale) == sum(1 for _ in m.parameters())


def test_sampler_is_a_seeded_permutation_and_resumes_at_position():
    full = list(EpochSampler(10, seed=3, epoch=2))
    assert sorted(i for _, _, i in full) == list(range(10))
    assert list(EpochSampler(10, seed=3, epoch=2, start=4)) == full[4:]
    assert [i for *_, i in full] != [i for *_, i in EpochSampler(10, seed=3, epoch=3)]
    ds = SeededItems(NoisyClips(4), seed=1)
    state = torch.get_rng_state()
    a, b = ds[(0, 1, 2)], ds[(0, 1, 2)]
    assert torch.equal(a["video"], b["video"]) and not torch.equal(a["video"], ds[(0, 2, 2)]["video"])
    assert torch.equal(state, torch.get_rng_state())  # loading data leaves the training RNG alone


@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_training_loss_falls_and_backbone_frozen_in_linear(mode, tmp_path):
    m = _model()
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    cfg = FitConfig(mode=mode, epochs=8, batch_size=8, lr=3e-2, warmup_steps=2, log_every=3,
                    out_dir=str(tmp_path), progress=False)
    data = NoisyClips()
    res = fit(m, data, _loss, cfg, evaluate=lambda mod: {"val_acc": _accuracy(mod, data)})
    losses = [r["value"] for r in res.history if r["split"] == "train" and r["metric"] == "loss"]
    assert res.steps == 8 * 3 and len(losses) == 8
    assert losses[-1] < 0.6 * losses[0]
    assert res.metrics["val_acc"] > 0.7
    changed = any(not torch.equal(before[k], v) for k, v in m.backbone.state_dict().items())
    assert changed == (mode == "finetune")
    text = (tmp_path / "metrics.csv").read_text().splitlines()
    assert text[0] == "step,epoch,split,metric,value" and any(",val,val_acc," in t for t in text)


def _accuracy(model, data):
    batch = [data[i] for i in range(len(data))]
    x = torch.stack([b["video"] for b in batch])
    y = torch.stack([b["label"] for b in batch])
    return float((model(x).argmax(-1) == y).float().mean())


class Crash(RuntimeError):
    pass


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    cfg = dict(mode="finetune", epochs=3, batch_size=5, lr=1e-2, warmup_steps=3, log_every=2,
               ckpt_every=4, progress=False, seed=7)  # 24 items / 5 = 5 steps per epoch: ckpt mid-epoch
    data = NoisyClips()
    ref = _model(1)
    r_ref = fit(ref, data, _loss, FitConfig(out_dir=str(tmp_path / "a"), **cfg))

    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 11:  # dies during step 11; the last checkpoint is step 8 (epoch 1, position 15)
            raise Crash()
        return _loss(model, batch)

    with pytest.raises(Crash):
        fit(_model(1), data, crashing, FitConfig(out_dir=str(tmp_path / "b"), **cfg))
    resumed = _model(99)  # different init: everything must come from the checkpoint
    r_res = fit(resumed, data, _loss, FitConfig(out_dir=str(tmp_path / "b"), **cfg))
    assert r_res.steps == r_ref.steps == 15
    for (k, v), (k2, v2) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    assert r_res.history == r_ref.history
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()


def test_bad_mode_and_empty_data_are_explained():
    with pytest.raises(ValueError, match="mode must be one of"):
        fit(_model(), NoisyClips(), _loss, FitConfig(mode="probe", progress=False))
    with pytest.raises(ValueError, match="empty"):
        fit(_model(), NoisyClips(0), _loss, FitConfig(progress=False))
    assert math.isfinite(warmup_cosine(0, 0, 0, 0.0))


# ---------------------------------------------------------------- common helpers and the GPU module
def test_checkpoint_lookup_prefers_the_endoscopy_encoder(tmp_path):
    from endolib.tasks.common import checkpoint_label, find_pretrained_checkpoint, resolve_checkpoint

    assert find_pretrained_checkpoint(tmp_path) is None
    path, desc = resolve_checkpoint(None, root=tmp_path)
    assert path is None and desc.startswith("random init") and checkpoint_label(desc) == "scratch"
    general = tmp_path / "runs/pretrain/nb/general/encoder.pth"
    endo = tmp_path / "runs/pretrain/nb/endo_teacher/encoder.pth"
    for p in (endo, general):  # general is newer, but must never be picked
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
    assert find_pretrained_checkpoint(tmp_path) == endo
    path, desc = resolve_checkpoint(None, root=tmp_path)
    assert path == endo and checkpoint_label(desc) == "outputs/runs/pretrain/nb/endo_teacher/encoder.pth"
    assert resolve_checkpoint("random")[0] is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "missing.pth"))


def test_token_grid_and_collate():
    from endolib.tasks.common import collate_keep_lists, token_grid

    tok = torch.randn(2, 3, 1 + 6, 5)
    grid = token_grid(tok, (2, 3))
    assert grid.shape == (6, 5, 2, 3)
    assert torch.equal(grid[4, :, 1, 2], tok[1, 1, 1 + 5])  # clip 1, frame 1, patch (row 1, col 2)
    batch = collate_keep_lists([{"video": torch.ones(2), "label": 1, "boxes": [torch.zeros(0, 4)]},
                                {"video": torch.zeros(2), "label": 0, "boxes": [torch.ones(1, 4)]}])
    assert batch["video"].shape == (2, 2) and batch["label"].tolist() == [1, 0] and len(batch["boxes"]) == 2


def test_result_rows_carry_the_baseline():
    from endolib.tasks.common import result_rows

    rows = result_rows("classification", "polypdiag", {"f1": 0.8, "auroc": 0.9}, {"f1": 0.4}, "scratch", 3, "val",
                       "linear")
    assert [r["metric"] for r in rows] == ["f1", "auroc"]
    assert rows[0]["baseline_value"] == 0.4 and math.isnan(rows[1]["baseline_value"]) and rows[0]["seed"] == 3


def test_gpu_bench_runs_every_family_on_cpu(tmp_path):
    import pandas as pd

    from endolib.tasks import gpu_bench

    rc = gpu_bench.main(["--out", str(tmp_path), "--device", "cpu", "--model", "endomamba_nano", "--img", "32",
                         "--frames", "2", "--steps", "1", "--warmup", "1",
                         "--families", "classification", "segmentation", "detection"])
    df = pd.read_csv(tmp_path / "downstream_gpu.csv")
    assert rc == 0 and list(df["task"]) == ["classification", "segmentation", "detection"]
    assert "error" not in df or df["error"].isna().all()
    assert (df["ms_per_step"] > 0).all() and set(df["backend"]) == {"torch"} and (df["img_size"] == 32).all()
