"""Decoder, loss terms and the pretraining model (with the nano EndoMamba as student)."""
import math

import pytest
import torch

from endolib.models import create_model
from endolib.pretrain.decoder import MVMDecoder, sinusoid_table
from endolib.pretrain.losses import alignment_loss, reconstruction_loss, total_loss, visible_teacher_tokens
from endolib.pretrain.masking import tube_mask
from endolib.pretrain.model import PretrainModel


def test_sinusoid_table_formula():
    tab = sinusoid_table(7, 6)
    for pos in (0, 3, 6):
        for i in range(6):
            angle = pos / 10000 ** (2 * (i // 2) / 6)
            assert tab[pos, i].item() == pytest.approx(math.sin(angle) if i % 2 == 0 else math.cos(angle), abs=1e-6)


def test_alignment_loss_is_one_minus_cosine():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 5, 8, generator=g)
    ref = (1 - torch.nn.functional.cosine_similarity(s.double(), t.double(), dim=-1)).mean()
    assert alignment_loss(s, t).item() == pytest.approx(ref.item(), abs=1e-6)
    assert alignment_loss(s, 3 * s).item() == pytest.approx(0.0, abs=1e-6)      # scale-free
    assert alignment_loss(s, -s).item() == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        alignment_loss(s, t[..., :4])


def test_reconstruction_and_total():
    g = torch.Generator().manual_seed(1)
    p, q = torch.randn(2, 2, 3, 12, generator=g), torch.randn(2, 2, 3, 12, generator=g)
    assert reconstruction_loss(p, q).item() == pytest.approx(((p - q) ** 2).mean().item(), rel=1e-6)
    lr, la = torch.tensor(0.8), torch.tensor(0.4)
    assert total_loss(lr, la, 0.25).item() == pytest.approx(0.9)
    assert total_loss(lr, None).item() == pytest.approx(0.8)


def test_visible_teacher_tokens_keep_patch_order():
    g = torch.Generator().manual_seed(2)
    teacher = torch.randn(1, 2, 4, 3, generator=g)
    mask = torch.tensor([[[True, False, True, False], [False, False, True, True]]])
    vis = visible_teacher_tokens(teacher, mask)
    assert torch.equal(vis[0, 0], teacher[0, 0, [1, 3]]) and torch.equal(vis[0, 1], teacher[0, 1, [0, 1]])


def test_decoder_outputs_hidden_patches_only():
    torch.manual_seed(3)
    dec = MVMDecoder(encoder_dim=10, num_patches=4, patch_dim=12, decoder_dim=16, depth=1, num_heads=2, max_frames=4)
    mask = tube_mask(2, 3, 4, 0.75, generator=torch.Generator().manual_seed(3))
    vis = torch.randn(2, 3, 1, 10)
    out = dec(vis, mask)
    assert out.shape == (2, 3, 3, 12)
    # visible tokens influence the predictions (they are placed, not dropped)
    assert not torch.allclose(dec(vis + 1.0, mask), out)
    with pytest.raises(ValueError, match="max_frames"):
        dec(torch.randn(2, 5, 1, 10), tube_mask(2, 5, 4, 0.75))


@pytest.mark.parametrize("teacher_dim", [None, 96, 40])
def test_pretrain_model_terms_and_gradients(teacher_dim):
    torch.manual_seed(4)
    enc = create_model("endomamba_nano", img_size=32)
    model = PretrainModel(enc, "tiny", teacher_dim=teacher_dim)
    x = torch.randn(2, 3, 3, 32, 32)
    mask = tube_mask(2, 3, enc.num_patches, 0.5, generator=torch.Generator().manual_seed(4))
    teacher = None if teacher_dim is None else torch.randn(2, 3, enc.num_patches, teacher_dim)
    out = model(x, mask, teacher)
    assert out["pred"].shape == (2, 3, 2, 16 * 16 * 3)
    if teacher_dim is None:
        assert out["loss_align"] is None and out["loss"] is out["loss_rec"]
    else:
        assert isinstance(model.align_proj, torch.nn.Identity if teacher_dim == 96 else torch.nn.Linear)
        assert out["loss"].item() == pytest.approx(out["loss_rec"].item() + 0.25 * out["loss_align"].item(), rel=1e-5)
    out["loss"].backward()
    assert enc.patch_embed.proj.weight.grad.abs().sum() > 0 and model.decoder.mask_token.grad.abs().sum() > 0


def test_teacher_tokens_without_teacher_dim_is_an_error():
    enc = create_model("endomamba_nano", img_size=32)
    model = PretrainModel(enc, "tiny")
    mask = tube_mask(1, 2, 4, 0.5)
    with pytest.raises(ValueError, match="teacher_dim"):
        model(torch.randn(1, 3, 2, 32, 32), mask, torch.randn(1, 2, 4, 96))
