"""Masking and per-patch normalised pixel targets."""
import pytest
import torch

from endolib.pretrain.masking import make_mask, num_masked, random_mask, tube_mask
from endolib.pretrain.targets import masked_targets, pixel_targets, reconstruct_frames, unnormalize


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9])
def test_tube_mask_same_patches_every_frame(ratio):
    g = torch.Generator().manual_seed(0)
    m = tube_mask(3, 5, 16, ratio, generator=g)
    assert m.shape == (3, 5, 16) and m.dtype == torch.bool
    assert (m.sum(-1) == round(ratio * 16)).all()
    assert (m == m[:, :1]).all()                       # tube: identical in time
    assert not (m[0, 0] == m[1, 0]).all() or not (m[1, 0] == m[2, 0]).all()  # differs across clips


def test_random_mask_same_count_different_positions():
    g = torch.Generator().manual_seed(1)
    m = random_mask(2, 6, 49, 0.75, generator=g)
    assert (m.sum(-1) == num_masked(49, 0.75)).all()
    assert not (m == m[:, :1]).all()                   # per-frame draws


def test_mask_is_deterministic_and_validated():
    a = make_mask("tube", 2, 3, 16, 0.75, generator=torch.Generator().manual_seed(5))
    b = make_mask("tube", 2, 3, 16, 0.75, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="mask ratio"):
        make_mask("tube", 1, 1, 16, 1.0)
    with pytest.raises(ValueError, match="unknown mask kind"):
        make_mask("block", 1, 1, 16, 0.5)
    assert num_masked(4, 0.99) == 3 and num_masked(4, 0.01) == 1  # both sets stay non-empty


def _reference_targets(x, p):
    # plain loops in float64: per patch, per channel, (v - mean) / (unbiased std + 1e-6), (py, px, c) order
    u = unnormalize(x.double())
    B, _, T, H, W = u.shape
    out = torch.empty(B, T, (H // p) * (W // p), p * p * 3, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            for i in range(H // p):
                for j in range(W // p):
                    patch = u[b, :, t, i * p:(i + 1) * p, j * p:(j + 1) * p]       # (3, p, p)
                    mean = patch.mean(dim=(1, 2), keepdim=True)
                    std = patch.std(dim=(1, 2), unbiased=True, keepdim=True)
                    norm = (patch - mean) / (std + 1e-6)
                    out[b, t, i * (W // p) + j] = norm.permute(1, 2, 0).reshape(-1)
    return out


def test_pixel_targets_match_loop_reference():
    x = torch.randn(2, 3, 2, 8, 12, generator=torch.Generator().manual_seed(2))
    got = pixel_targets(x, 4)
    assert got.shape == (2, 2, 6, 48)
    torch.testing.assert_close(got.double(), _reference_targets(x, 4), atol=1e-4, rtol=1e-4)
    raw = pixel_targets(x, 4, normalize=False)
    assert raw[0, 1, 0, :3].tolist() == pytest.approx(unnormalize(x)[0, :, 1, 0, 0].tolist(), abs=1e-6)


def test_masked_targets_and_reconstruction_round_trip():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 3, 8, 8, generator=g)
    mask = random_mask(2, 3, 4, 0.5, generator=g)
    tgt = pixel_targets(x, 4)
    sel = masked_targets(tgt, mask)
    assert sel.shape == (2, 3, 2, 48)
    assert torch.equal(sel[1, 2, 0], tgt[1, 2][mask[1, 2]][0])
    # pasting the true normalised targets back must give the original frames
    rec = reconstruct_frames(sel, x, mask, 4)
    torch.testing.assert_close(rec, unnormalize(x).clamp(0, 1), atol=1e-4, rtol=0)
    # a wrong prediction changes exactly the hidden patches
    rec2 = reconstruct_frames(torch.zeros_like(sel), x, mask, 4)
    diff = (rec2 - rec).abs().amax(dim=1)                                   # (B, T, H, W)
    hidden_px = mask.view(2, 3, 2, 2).repeat_interleave(4, 2).repeat_interleave(4, 3)
    assert (diff[~hidden_px] == 0).all() and (diff[hidden_px] > 0).float().mean() > 0.5
