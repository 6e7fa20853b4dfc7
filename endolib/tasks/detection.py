"""KUMC polyp detection: simple documented heads on the upsampled token grid; precision / recall / F1 at IoU ≥ 0.5.

Two heads share the progressive decoder of segmentation (the patch-token grid of each frame upsampled
by ×2 stages):

- `'boxmask'` (default; stride 2 px): one logit per cell, "is this cell inside a polyp box", trained
  with BCE + soft Dice; boxes are the extents of the connected regions (4-neighbour) of the map above
  0.5, scored by the region's highest probability. Local, dense targets: the box size follows the
  image evidence, which generalises across polyp sizes on little data (KUMC has few training videos).
  Touching polyps merge into one box (rare in KUMC).
- `'centernet'` (stride 4 px; after CenterNet "Objects as Points"): a class heatmap with a Gaussian
  bump at each box centre (σ = box side / 6, penalty-reduced focal loss), the log box size and the
  centre offset, regressed at every cell whose Gaussian is ≥ 0.3 and weighted by it (as TTFNet does);
  decoding: 3×3 max-pool peaks, top-k, score threshold, class-wise NMS (IoU 0.5). `num_classes=2`
  keeps adenomatous / hyperplastic apart using the loader's `box_labels`.

By default detection is class-agnostic (one class, 'polyp': both kinds merged).

Metric (`endolib.metrics.detection`): over all test frames, predictions with score ≥ `score_thr` are
matched greedily (highest score first) to unmatched ground truth boxes with IoU ≥ 0.5: precision =
TP / predictions, recall = TP / ground truth boxes, F1 their harmonic mean (box level, DESIGN §6);
also Endo-FM's frame-level F1 (boxes' positions ignored). Trivial baselines: no boxes (all 0) and one
box of the mean training size at the frame centre in every frame.
"""
import logging
import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from endolib.metrics.detection import detection_prf, frame_detection_prf
from endolib.tasks.common import TaskModel, UpsampleDecoder, collate_keep_lists, token_grid

log = logging.getLogger(__name__)


REGION = 0.3      # cells whose Gaussian is >= this learn the box (TTFNet-style), not only the centre cell
SIZE_WEIGHT = 1.0  # CenterNet weighs pixel sizes by 0.1; ours are log sizes (order 1), so 1.0


def _branch(cin: int, cout: int, hidden: int, bias: float = 0.0) -> nn.Sequential:
    last = nn.Conv2d(hidden, cout, 1)
    nn.init.constant_(last.bias, bias)
    return nn.Sequential(nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(inplace=True), last)


class CenterNetHead(nn.Module):
    """tokens (B, T, N+1, C) -> dict heat (B*T, K, h, w) logits, size (B*T, 2, h, w) log size in cells,
    offset (B*T, 2, h, w) box centre minus the cell's corner, in cells."""

    def __init__(self, dim: int, grid_size: tuple, patch_size: int, num_classes: int = 1, stages: int = 2,
                 width: int = 128, hidden: int = 64):
        super().__init__()
        if patch_size % (2 ** stages):
            raise ValueError(f"patch_size {patch_size} is not divisible by 2**stages = {2 ** stages}.")
        self.grid_size, self.num_classes = tuple(grid_size), num_classes
        self.stride = patch_size // 2 ** stages
        self.decoder = UpsampleDecoder(dim, width=width, stages=stages, min_width=32)
        c = self.decoder.out_dim
        self.heat = _branch(c, num_classes, hidden, bias=-2.19)  # initial score 0.1, as CenterNet
        self.size = _branch(c, 2, hidden)
        self.offset = _branch(c, 2, hidden)

    def forward(self, tokens: torch.Tensor) -> dict:
        f = self.decoder(token_grid(tokens, self.grid_size).float())
        return {"heat": self.heat(f), "size": self.size(f), "offset": self.offset(f)}


class BoxMaskHead(nn.Module):
    """tokens (B, T, N+1, C) -> {'boxmask': (B*T, 1, h, w) logits}: is this cell inside a polyp's box?

    Boxes are read back as the extents of the connected regions of the map (`decode_boxmask`): a
    dense, local target, so the box size follows the image evidence instead of a regressed number."""

    def __init__(self, dim: int, grid_size: tuple, patch_size: int, stages: int = 3, width: int = 128):
        super().__init__()
        if patch_size % (2 ** stages):
            raise ValueError(f"patch_size {patch_size} is not divisible by 2**stages = {2 ** stages}.")
        self.grid_size, self.num_classes = tuple(grid_size), 1
        self.stride = patch_size // 2 ** stages
        self.decoder = UpsampleDecoder(dim, width=width, stages=stages)
        self.out = nn.Conv2d(self.decoder.out_dim, 1, 1)
        nn.init.constant_(self.out.bias, -2.0)

    def forward(self, tokens: torch.Tensor) -> dict:
        return {"boxmask": self.out(self.decoder(token_grid(tokens, self.grid_size).float()))}


HEADS = ("boxmask", "centernet")


def build_model(backbone: nn.Module, head: str = "boxmask", num_classes: int = 1, stages=None) -> TaskModel:
    """backbone + detection head: 'boxmask' (default; stride 2) or 'centernet' (stride 4, num_classes)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
    args = (backbone.embed_dim, backbone.grid_size, backbone.patch_size)
    if head == "boxmask":
        if num_classes != 1:
            raise ValueError("the 'boxmask' head is class-agnostic; use head='centernet' for num_classes > 1.")
        return TaskModel(backbone, BoxMaskHead(*args, stages=3 if stages is None else stages))
    return TaskModel(backbone, CenterNetHead(*args, num_classes, 2 if stages is None else stages))


def box_masks(boxes: list, shape: tuple, stride: int) -> torch.Tensor:
    """Boxes of B*T frames (xyxy pixels) -> (BT, 1, h, w) float: 1 where the cell's centre is inside a box."""
    h, w = shape
    cy = (torch.arange(h, dtype=torch.float32) + 0.5).view(h, 1) * stride
    cx = (torch.arange(w, dtype=torch.float32) + 0.5).view(1, w) * stride
    out = torch.zeros(len(boxes), 1, h, w)
    for i, bx in enumerate(boxes):
        for x1, y1, x2, y2 in torch.as_tensor(bx, dtype=torch.float32).reshape(-1, 4).tolist():
            out[i, 0] = torch.maximum(out[i, 0], ((cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)).float())
    return out


def components(binary: np.ndarray) -> list:
    """4-connected regions of a (h, w) bool map -> list of (rows, cols) index arrays."""
    seen, regions = np.zeros_like(binary, dtype=bool), []
    h, w = binary.shape
    for y0, x0 in zip(*np.nonzero(binary)):
        if seen[y0, x0]:
            continue
        stack, cells = [(y0, x0)], []
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            cells.append((y, x))
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and binary[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    stack.append((yy, xx))
        cells = np.array(cells)
        regions.append((cells[:, 0], cells[:, 1]))
    return regions


def decode_boxmask(out: dict, stride: int, score_thr: float = 0.05, min_cells: int = 2) -> list:
    """Box-mask logits -> per frame dict(boxes, scores = the region's highest probability, labels), best first."""
    prob = torch.sigmoid(out["boxmask"].float())[:, 0].cpu().numpy()  # (BT, h, w)
    results = []
    for p in prob:
        boxes, sc = [], []
        for ys, xs in components(p > 0.5):
            score = float(p[ys, xs].max())
            if len(ys) >= min_cells and score >= score_thr:
                boxes.append([xs.min() * stride, ys.min() * stride, (xs.max() + 1) * stride, (ys.max() + 1) * stride])
                sc.append(score)
        order = np.argsort(-np.asarray(sc)) if sc else np.zeros(0, dtype=int)
        results.append({"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)[order],
                        "scores": torch.tensor(sc, dtype=torch.float32)[order],
                        "labels": torch.zeros(len(sc), dtype=torch.long)})
    return results


def encode_targets(boxes: list, labels: list, shape: tuple, stride: int, num_classes: int,
                   region: float = REGION) -> dict:
    """Boxes of B*T frames -> dense targets. boxes[i]: (k, 4) xyxy pixels; labels[i]: (k,) or None.

    -> heat (BT, K, h, w) Gaussians (1 at each centre cell); size (BT, 2, h, w) log box size in cells and
    offset (BT, 2, h, w) = box centre - cell corner, in cells, at every cell whose Gaussian is ≥ `region`
    (the box of larger Gaussian wins where two overlap); weight (BT, h, w) = that Gaussian (0 elsewhere)."""
    n, (h, w) = len(boxes), shape
    heat = torch.zeros(n, num_classes, h, w)
    size, offset = torch.zeros(n, 2, h, w), torch.zeros(n, 2, h, w)
    weight = torch.zeros(n, h, w)
    ys, xs = torch.arange(h, dtype=torch.float32).view(h, 1), torch.arange(w, dtype=torch.float32).view(1, w)
    for i, bx in enumerate(boxes):
        bx = torch.as_tensor(bx, dtype=torch.float32).reshape(-1, 4)
        lab = torch.zeros(len(bx), dtype=torch.long) if labels is None or labels[i] is None else labels[i]
        for (x1, y1, x2, y2), k in zip(bx.tolist(), lab.tolist()):
            bw, bh = max(x2 - x1, 1.0) / stride, max(y2 - y1, 1.0) / stride
            cx, cy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
            gx, gy = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
            sx, sy = max(bw / 6, 0.5), max(bh / 6, 0.5)
            g = torch.exp(-((xs - gx) ** 2) / (2 * sx ** 2) - ((ys - gy) ** 2) / (2 * sy ** 2))  # (h, w)
            heat[i, k] = torch.maximum(heat[i, k], g)
            heat[i, k, gy, gx] = 1.0
            own = (g >= region) & (g > weight[i])
            size[i, 0][own], size[i, 1][own] = math.log(bw), math.log(bh)
            offset[i, 0][own] = (cx - xs.expand(h, w))[own]
            offset[i, 1][own] = (cy - ys.expand(h, w))[own]
            weight[i][own] = g[own]
    return {"heat": heat, "size": size, "offset": offset, "weight": weight}


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    # logits, target: (BT, K, h, w) -> scalar; CenterNet's penalty-reduced focal loss / number of centres
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = -torch.log(1 - p) * p ** alpha * (1 - target) ** beta * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def flat_boxes(batch: dict, with_labels: bool = False) -> tuple:
    """batch boxes: list (B) of lists (T) of (k, 4) -> list of B*T tensors (frame order b, t); same for labels."""
    boxes = [torch.as_tensor(bx, dtype=torch.float32).reshape(-1, 4) for clip in batch["boxes"] for bx in clip]
    labels = None
    if with_labels:
        if "box_labels" not in batch:
            raise ValueError("num_classes > 1 needs per-box classes in batch['box_labels']; this dataset gives "
                             "none: build the head with num_classes=1.")
        labels = [torch.as_tensor(lb, dtype=torch.long) for clip in batch["box_labels"] for lb in clip]
    return boxes, labels


def loss_fn(model: TaskModel, batch: dict):
    """boxmask head: BCE + soft Dice on the box map. centernet head: focal heatmap loss + Gaussian-weighted
    L1 on log-size and centre offset. batch: video, boxes (see flat_boxes)."""
    out = model(batch["video"])
    head = model.head
    if "boxmask" in out:
        from endolib.tasks.segmentation import soft_dice_loss
        target = box_masks(flat_boxes(batch)[0], out["boxmask"].shape[-2:], head.stride).to(out["boxmask"].device)
        logits = out["boxmask"].float()
        bce = nn.functional.binary_cross_entropy_with_logits(logits, target)
        dice = soft_dice_loss(logits, target)
        return bce + dice, {"bce": bce, "soft_dice": dice}
    boxes, labels = flat_boxes(batch, with_labels=head.num_classes > 1)
    tgt = encode_targets(boxes, labels, out["heat"].shape[-2:], head.stride, head.num_classes)
    tgt = {k: v.to(out["heat"].device) for k, v in tgt.items()}
    heat = focal_loss(out["heat"].float(), tgt["heat"])
    w = tgt["weight"].unsqueeze(1)  # (BT, 1, h, w)
    norm = 2 * w.sum().clamp(min=1e-6)
    size = ((out["size"].float() - tgt["size"]).abs() * w).sum() / norm
    off = ((out["offset"].float() - tgt["offset"]).abs() * w).sum() / norm
    return heat + SIZE_WEIGHT * size + off, {"heat": heat, "size": size, "offset": off}


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # a: (n, 4), b: (m, 4) xyxy -> (n, m)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float = 0.5) -> torch.Tensor:
    """Greedy non-maximum suppression. boxes (n, 4), scores (n,) -> kept indices, best first."""
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(int(i))
        if order.numel() == 1:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[i:i + 1], boxes[rest])[0] <= iou]
    return torch.tensor(keep, dtype=torch.long)


def decode(out: dict, stride: int, top_k: int = 20, score_thr: float = 0.05, nms_iou: float = 0.5) -> list:
    """Head outputs -> per frame dict(boxes (k, 4) xyxy pixels, scores (k,), labels (k,)), best first."""
    if "boxmask" in out:
        return decode_boxmask(out, stride, score_thr)
    heat = torch.sigmoid(out["heat"].float())
    peaks = heat * (nn.functional.max_pool2d(heat, 3, 1, 1) == heat)
    n, k, h, w = heat.shape
    results = []
    for i in range(n):
        sc, idx = peaks[i].flatten().topk(min(top_k, k * h * w))
        keep = sc >= score_thr
        sc, idx = sc[keep], idx[keep]
        cls, cell = idx // (h * w), idx % (h * w)
        gy, gx = cell // w, cell % w
        off, size = out["offset"][i].float(), out["size"][i].float().clamp(-6, 6).exp()
        cx = (gx + off[0, gy, gx]) * stride
        cy = (gy + off[1, gy, gx]) * stride
        bw, bh = size[0, gy, gx] * stride, size[1, gy, gx] * stride
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1).reshape(-1, 4)
        kept = [j for c in cls.unique() for j in (cls == c).nonzero()[:, 0][nms(boxes[cls == c], sc[cls == c],
                                                                                  nms_iou)].tolist()]
        kept = sorted(kept, key=lambda j: -float(sc[j]))
        results.append({"boxes": boxes[kept].cpu(), "scores": sc[kept].cpu(), "labels": cls[kept].cpu()})
    return results


@torch.no_grad()
def predict(model: TaskModel, dataset, batch_size: int = 4, device="cpu", score_thr: float = 0.05) -> tuple:
    """-> (predictions per frame, ground truth boxes per frame), frames in clip-then-time order."""
    was = model.training
    model.eval()
    preds, gts = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_keep_lists):
        preds += decode(model(batch["video"].to(device)), model.head.stride, score_thr=score_thr)
        gts += flat_boxes(batch)[0]
    model.train(was)
    return preds, gts


def scores(preds: list, gts: list, score_thr: float = 0.3, iou_thr: float = 0.5) -> dict:
    """Box-level precision / recall / F1 at IoU >= iou_thr (`endolib.metrics.detection.detection_prf`), and
    Endo-FM's frame-level F1 (`frame_f1`: a polyp frame with any box scored >= score_thr is a hit)."""
    pairs = [(p["boxes"], p["scores"]) for p in preds]
    box = detection_prf(pairs, gts, iou_threshold=iou_thr, score_threshold=score_thr)
    top = [float(p["scores"].max()) if len(p["scores"]) else -np.inf for p in preds]
    has = [len(torch.as_tensor(g).reshape(-1, 4)) > 0 for g in gts]
    frame = frame_detection_prf(top, has, score_threshold=score_thr)
    return {"precision": box["precision"], "recall": box["recall"], "f1": box["f1"], "frame_f1": frame["f1"]}


def evaluate(model: TaskModel, dataset, batch_size: int = 4, device="cpu", score_thr: float = 0.3) -> dict:
    return scores(*predict(model, dataset, batch_size, device), score_thr=score_thr)


def dataset_boxes(dataset) -> list:
    """Ground-truth boxes of every frame of every item, in order (use an evaluation-mode dataset)."""
    return [torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4) for i in range(len(dataset))
            for b in dataset[i]["boxes"]]


def trivial_baselines(train_gts: list, test_gts: list, img_size: int) -> dict:
    """No boxes, and one centred box of the mean training size in every frame (score 1)."""
    none = scores([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0)} for _ in test_gts], test_gts)
    wh = torch.cat([torch.as_tensor(g, dtype=torch.float32).reshape(-1, 4) for g in train_gts])
    wh = (wh[:, 2:] - wh[:, :2]).mean(0) if len(wh) else torch.zeros(2)
    c = img_size / 2
    box = torch.tensor([[c - wh[0] / 2, c - wh[1] / 2, c + wh[0] / 2, c + wh[1] / 2]])
    centre = scores([{"boxes": box, "scores": torch.ones(1)} for _ in test_gts], test_gts)
    return {"none_" + k: v for k, v in none.items()} | {"centre_" + k: v for k, v in centre.items()}



def benchmark_step(model_name: str = "endomamba_small", img_size: int = 224, num_frames: int = 16,
                   device="cuda", dtype=torch.bfloat16, batch_size: int = 2) -> tuple:
    """One KUMC fine-tuning step at full size on random clips with one box per frame -> (step(), info)."""
    from endolib.models import create_model
    from endolib.tasks.common import bench_step, random_video

    model = build_model(create_model(model_name, num_classes=0, img_size=img_size))
    s = img_size / 4
    box = torch.tensor([[s, s, 2.5 * s, 2 * s]])
    batch = {"video": random_video(batch_size, num_frames, img_size), "boxes": [[box] * num_frames] * batch_size}
    return bench_step("detection", model, loss_fn, batch, model_name, device, dtype)


def plot_boxes(video: torch.Tensor, gt: list, pred: dict | list, score_thr: float = 0.3, max_frames: int = 8,
               title: str = ""):
    """Frames of one clip with true boxes (green) and predictions ≥ score_thr (red, with score).

    video (3, T, H, W) normalised; gt: T tensors (k, 4); pred: T dicts of decode()."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from endolib.data.transforms import denormalize

    frames = denormalize(video).clamp(0, 1).permute(1, 2, 3, 0).cpu().numpy()  # (T, H, W, 3)
    t = min(max_frames, frames.shape[0])
    fig, axes = plt.subplots(1, t, figsize=(2.0 * t, 2.3), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(frames[i])
        for x1, y1, x2, y2 in torch.as_tensor(gt[i]).reshape(-1, 4).tolist():
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1.5))
        for (x1, y1, x2, y2), s in zip(pred[i]["boxes"].tolist(), pred[i]["scores"].tolist()):
            if s >= score_thr:
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="red", lw=1.2, ls="--"))
                ax.text(x1, y1, f"{s:.2f}", color="red", fontsize=6, va="bottom")
        ax.set_title(f"frame {i}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{title}  green = truth, red = prediction".strip(), fontsize=9)
    fig.tight_layout()
    return fig
