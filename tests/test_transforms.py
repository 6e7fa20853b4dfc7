"""Clip tensors are normalised exactly as ImageNet models expect, and augmentation keeps masks and boxes aligned."""
import numpy as np
import pytest
import torch

from endolib.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, augment_clip, crop_boxes, denormalize, hflip_boxes,
                                     resize_masks, scale_boxes, to_tensor_clip)


def test_to_tensor_clip_matches_float64_reference_without_resize():
    frames = np.random.default_rng(0).integers(0, 256, (5, 12, 16, 3), dtype=np.uint8)
    x = to_tensor_clip(frames, (12, 16))
    ref = (frames.astype(np.float64) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert x.shape == (3, 5, 12, 16) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), ref.transpose(3, 0, 1, 2), atol=1e-5)


def test_to_tensor_clip_resizes_and_denormalize_round_trips():
    rng = np.random.default_rng(1)
    frames = np.repeat(np.repeat(rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8), 4, 1), 4, 2)  # (3, 32, 32, 3)
    x = to_tensor_clip(frames, 16)
    assert x.shape == (3, 3, 16, 16)
    back = denormalize(x)  # area-downsampled image keeps the per-clip mean colour
    np.testing.assert_allclose(back.mean((1, 2, 3)).numpy(), frames.mean((0, 1, 2)) / 255, atol=2e-3)
    batch = torch.stack([x, x])
    assert torch.allclose(denormalize(batch)[1], back)


def test_to_tensor_clip_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8"):
        to_tensor_clip(np.random.default_rng(0).random((2, 4, 4, 3)), 4)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        to_tensor_clip(np.zeros((4, 4, 3), np.uint8), 4)


def _mask_box(m):
    ys, xs = np.nonzero(m)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_augment_clip_keeps_masks_and_boxes_aligned():
    rng = np.random.default_rng(2)
    for trial in range(20):
        t, h, w = 3, 40, 56
        masks = np.zeros((t, h, w), bool)
        for k in range(t):
            y0, x0 = rng.integers(5, 20), rng.integers(5, 30)
            masks[k, y0:y0 + rng.integers(6, 15), x0:x0 + rng.integers(6, 20)] = True
        frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
        frames[masks] = 255
        boxes = [_mask_box(m)[None] for m in masks]
        f2, m2, b2 = augment_clip(frames, np.random.default_rng(trial), masks=masks, boxes=boxes, scale=(0.5, 1.0))
        assert f2.shape[:3] == m2.shape
        np.testing.assert_array_equal(f2[m2], 255)  # the same pixels moved with the mask
        for k in range(t):
            if m2[k].any():
                if len(b2[k]):  # a box that survived equals the box of the cropped/flipped mask
                    np.testing.assert_allclose(b2[k][0], _mask_box(m2[k]), atol=1e-4)


def test_box_helpers_keep_extra_columns_and_drop_empty():
    b = [np.array([[2, 3, 10, 12, 1], [40, 40, 50, 50, 0]], np.float32)]
    c = crop_boxes(b, y0=0, x0=0, ch=20, cw=20)[0]
    assert c.tolist() == [[2, 3, 10, 12, 1]]
    f = hflip_boxes([c], 20)[0]
    assert f.tolist() == [[10, 3, 18, 12, 1]]
    s = scale_boxes([c], (20, 20), (10, 40))[0]
    assert torch.allclose(s, torch.tensor([[4.0, 1.5, 20.0, 6.0]]))


def test_resize_masks_nearest_stays_binary():
    m = np.random.default_rng(3).random((2, 9, 7)) > 0.5
    r = resize_masks(m, (18, 14))
    assert r.shape == (2, 18, 14) and set(r.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(r[:, ::2, ::2], torch.as_tensor(m, dtype=torch.float32))
