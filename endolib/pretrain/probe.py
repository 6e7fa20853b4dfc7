"""Frozen-feature evaluation of a pretrained backbone: a linear probe on clip features, and held-out
reconstruction loss with fixed masks (both deterministic, for the pretraining ablation)."""
import logging

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from endolib.pretrain.batches import step_generator
from endolib.pretrain.masking import make_mask

log = logging.getLogger(__name__)


@torch.no_grad()
def clip_features(encoder, dataset, batch_size: int = 8, label_key: str = "label", device="cpu"):
    """Mean-pooled frozen features of every item: returns feats (M, C) float64, labels (M,) long."""
    encoder.eval().to(device)
    feats, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        x = batch["video"].to(device)                                   # (B, 3, T, H, W)
        f = encoder.pool(encoder.forward_features(x)).mean(dim=1)       # (B, C)
        feats.append(f.double().cpu())
        labels.append(torch.as_tensor(batch[label_key]).long().view(-1))
    return torch.cat(feats), torch.cat(labels)


def fit_linear(train_x, train_y, num_classes: int, l2: float = 1e-3, iters: int = 200) -> torch.nn.Linear:
    """Multinomial logistic regression on standardised features (L-BFGS, float64); train_x: (M, C)."""
    torch.manual_seed(0)
    head = torch.nn.Linear(train_x.shape[1], num_classes).double()
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(head(train_x), train_y) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def macro_f1(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Unweighted mean over classes of F1 (a class absent from both pred and target counts as 1)."""
    scores = []
    for c in range(num_classes):
        tp = ((pred == c) & (target == c)).sum().item()
        fp = ((pred == c) & (target != c)).sum().item()
        fn = ((pred != c) & (target == c)).sum().item()
        scores.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / num_classes


def linear_probe(encoder, train_ds, val_ds, num_classes: int = 2, label_key: str = "label", device="cpu") -> dict:
    """Fit on frozen train features, score on val: dict(acc, f1, n_train, n_val)."""
    tx, ty = clip_features(encoder, train_ds, label_key=label_key, device=device)
    vx, vy = clip_features(encoder, val_ds, label_key=label_key, device=device)
    mean, std = tx.mean(0), tx.std(0) + 1e-6
    head = fit_linear((tx - mean) / std, ty, num_classes)
    with torch.no_grad():
        pred = head((vx - mean) / std).argmax(-1)
    return dict(acc=(pred == vy).double().mean().item(), f1=macro_f1(pred, vy, num_classes),
                n_train=len(ty), n_val=len(vy))


@torch.no_grad()
def heldout_reconstruction(pretrain_model, clips: torch.Tensor, mask_kind: str = "tube", ratio: float = 0.75,
                           seed: int = 1234, batch_size: int = 8) -> float:
    """Mean reconstruction loss of `pretrain_model` on clips (M, 3, T, H, W) with fixed seeded masks."""
    pretrain_model.eval()
    total, n = 0.0, 0
    for i in range(0, len(clips), batch_size):
        x = clips[i:i + batch_size]
        mask = make_mask(mask_kind, x.shape[0], x.shape[2], pretrain_model.encoder.num_patches, ratio,
                         generator=step_generator(seed, i))
        total += pretrain_model(x, mask)["loss_rec"].item() * x.shape[0]
        n += x.shape[0]
    return total / n
