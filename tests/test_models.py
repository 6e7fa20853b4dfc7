"""EndoMamba backbone: registry, official parameter names, shapes, masking, causality, streaming, input errors."""
import random

import pytest
import torch

from endolib.models import create_model, list_models

IMG = 32  # 2x2 patch grid keeps these tests fast


def _nano(**kw):
    torch.manual_seed(kw.pop("seed", 0))
    return create_model("endomamba_nano", img_size=IMG, **kw).eval()


def _clip(b=2, t=6, seed=1, img=IMG, dtype=torch.float32):
    return torch.randn(b, 3, t, img, img, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_registry_sizes_and_official_names():
    assert list_models() == ["endomamba_middle", "endomamba_nano", "endomamba_small", "endomamba_tiny"]
    m = create_model("endomamba_small", num_classes=7)
    assert (m.embed_dim, m.depth, m.num_spatial, m.num_tokens) == (384, 24, 12, 197)
    sd = m.state_dict()
    assert sd["patch_embed.proj.weight"].shape == (384, 3, 1, 16, 16)
    assert sd["pos_embed"].shape == (1, 197, 384) and sd["cls_token"].shape == (1, 1, 384)
    assert sd["head.weight"].shape == (7, 384) and sd["norm_f.weight"].shape == (384,)
    spatial, temporal = "layers.0.mixer.", "layers.12.mixer."
    for k, shape in {"in_proj.weight": (1536, 384), "conv1d.weight": (768, 1, 4), "conv1d.bias": (768,),
                     "x_proj.weight": (24 + 32, 768), "dt_proj.weight": (768, 24), "dt_proj.bias": (768,),
                     "A_log": (768, 16), "D": (768,), "out_proj.weight": (384, 768)}.items():
        assert sd[temporal + k].shape == shape, k
        assert sd[spatial + k].shape == shape, k
    for k in ("conv1d_b.weight", "x_proj_b.weight", "dt_proj_b.weight", "A_b_log", "D_b"):
        assert spatial + k in sd and temporal + k not in sd
    assert "layers.0.norm.weight" in sd and not any("temporal_table" in k for k in sd)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("endomamba_huge")
    with pytest.raises(ValueError, match="unknown option"):
        create_model("endomamba_nano", embed_dims=3)


def test_shapes_with_and_without_head():
    x = _clip()
    assert _nano(num_classes=5)(x).shape == (2, 6, 5)
    m = _nano()
    assert m(x).shape == (2, 6, 96)
    assert m.forward_features(x).shape == (2, 6, 5, 96)
    assert m.patch_embed_tokens(x).shape == (2, 6, 4, 96)
    assert _nano(pool="cls")(x).shape == (2, 6, 96)


def test_masked_patches_do_not_influence_visible_tokens():
    m, x = _nano(), _clip(b=1, t=3)
    mask = torch.zeros(1, 3, 4, dtype=torch.bool)
    mask[:, :, [1, 2]] = True                                  # tube mask: same patches hidden in every frame
    out = m.forward_features(x, mask)
    assert out.shape == (1, 3, 3, 96)
    x2 = x.clone()
    x2[..., 0:16, 16:32] = torch.randn(1, 3, 3, 16, 16)        # patch 1 lives at row 0, column 1
    torch.testing.assert_close(m.forward_features(x2, mask), out)
    assert not torch.allclose(m.forward_features(x2), m.forward_features(x))
    uneven = mask.clone()
    uneven[0, 0, 0] = True
    with pytest.raises(ValueError, match="same number of visible"):
        m.forward_features(x, uneven)


def test_temporal_layers_are_causal():
    m, x = _nano(num_classes=3), _clip(t=7)
    x2 = x.clone()
    x2[:, :, 4:] = torch.randn_like(x2[:, :, 4:])
    a, b = m(x), m(x2)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-4


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_streaming_equals_whole_clip_for_random_splits(seed):
    rng = random.Random(seed)
    m, x = _nano(num_classes=4, seed=seed), _clip(b=2, t=13, seed=seed)
    with torch.no_grad():
        full = m(x)
        cuts = sorted(rng.sample(range(1, 13), rng.randint(1, 6)))
        state, outs = m.init_stream(2), []
        sizes = []
        for a, b in zip([0] + cuts, cuts + [13]):
            out, state = m.step(x[:, :, a:b], state)
            outs.append(out)
            sizes.append(sum(t.numel() for t in state.conv + state.ssm))
    assert (torch.cat(outs, 1) - full).abs().max() <= 1e-4
    assert state.offset == 13 and len(set(sizes)) == 1  # the state does not grow with frames seen


def test_streaming_float64_and_reset_per_video():
    m = _nano(num_classes=2).double()
    x = _clip(b=1, t=5, dtype=torch.float64)
    with torch.no_grad():
        full = m(x)
        state = m.init_stream(1)
        for t in range(5):
            out, state = m.step(x[:, :, t:t + 1], state)
            torch.testing.assert_close(out[:, 0], full[:, t], rtol=1e-10, atol=1e-10)
        fresh, _ = m.step(x[:, :, :1], m.init_stream(1))  # a new video starts from a fresh state
        torch.testing.assert_close(fresh[:, 0], full[:, 0], rtol=1e-10, atol=1e-10)


def test_train_mode_drop_path_is_stochastic_eval_is_not():
    m, x = _nano(drop_path_rate=0.5), _clip()
    m.train()
    assert not torch.allclose(m(x), m(x))
    m.eval()
    torch.testing.assert_close(m(x), m(x))


@pytest.mark.parametrize("bad,match", [
    (torch.randn(2, 3, IMG, IMG), "4-D"),
    (torch.randn(1, 4, 2, IMG, IMG), "expected 3 channels"),
    (torch.randn(1, 3, 2, IMG + 8, IMG), "not divisible"),
    (torch.randn(1, 3, 2, 2 * IMG, 2 * IMG), "patch grid"),
])
def test_bad_inputs_name_expected_and_given(bad, match):
    with pytest.raises(ValueError, match=match):
        _nano()(bad)


def test_clip_longer_than_temporal_table():
    m = _nano(max_frames=4)
    with pytest.raises(ValueError, match="temporal table"):
        m(_clip(t=5))
    state = m.init_stream(2)
    _, state = m.step(_clip(t=3), state)
    with pytest.raises(ValueError, match="temporal table"):
        m.step(_clip(t=2), state)


def test_stream_state_mismatches():
    m = _nano()
    with pytest.raises(ValueError, match="batch"):
        m.step(_clip(b=3, t=1), m.init_stream(2))
    with pytest.raises(ValueError, match="float64"):
        m.step(_clip(t=1, dtype=torch.float64), m.init_stream(2))
    with pytest.raises(ValueError, match="init_stream"):
        m.step(_clip(t=1), {"conv": []})
