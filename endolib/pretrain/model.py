"""The pretraining model: student encoder + MVM decoder + alignment projection, returning every loss term.

The frozen teacher stays outside (see `teachers.py`): the loop computes its tokens under no_grad and
passes them in, so checkpoints and DistributedDataParallel only ever see trainable weights.
"""
import torch
from torch import nn

from endolib.pretrain.decoder import MVMDecoder, decoder_dims
from endolib.pretrain.losses import alignment_loss, reconstruction_loss, total_loss, visible_teacher_tokens
from endolib.pretrain.targets import masked_targets, pixel_targets


class PretrainModel(nn.Module):
    """Masked video modelling on `encoder` (an EndoMamba-contract backbone) with optional teacher alignment."""

    def __init__(self, encoder: nn.Module, decoder: str | dict = "small", teacher_dim: int | None = None,
                 align_weight: float = 0.25, margin: float = 0.15, normalize_target: bool = True,
                 max_frames: int = 64):
        super().__init__()
        self.encoder = encoder
        dims = decoder_dims(decoder) if isinstance(decoder, str) else dict(decoder)
        p = encoder.patch_size
        self.decoder = MVMDecoder(encoder.embed_dim, encoder.num_patches, p * p * 3, max_frames=max_frames,
                                  **dims)
        self.teacher_dim, self.align_weight, self.margin = teacher_dim, align_weight, margin
        self.normalize_target = normalize_target
        if teacher_dim is None:
            self.align_proj = None
        elif teacher_dim == encoder.embed_dim:
            self.align_proj = nn.Identity()
        else:
            self.align_proj = nn.Linear(encoder.embed_dim, teacher_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, teacher_tokens: torch.Tensor | None = None) -> dict:
        """x: (B, 3, T, H, W), mask: (B, T, N) bool, teacher_tokens: (B, T, N, Ct) or None.

        Returns dict(loss, loss_rec, loss_align (None without teacher), pred (B, T, m, P*P*3)).
        """
        tokens = self.encoder.forward_features(x, mask)          # (B, T, n + 1, C), cls first
        visible = tokens[:, :, 1:]                               # (B, T, n, C)
        pred = self.decoder(visible, mask)                       # (B, T, m, P*P*3)
        target = masked_targets(pixel_targets(x, self.encoder.patch_size, self.normalize_target), mask)
        loss_rec = reconstruction_loss(pred, target)
        loss_align = None
        if teacher_tokens is not None:
            if self.align_proj is None:
                raise ValueError("teacher tokens given but the model was built without teacher_dim; "
                                 "pass teacher_dim=teacher.embed_dim to PretrainModel.")
            loss_align = alignment_loss(self.align_proj(visible), visible_teacher_tokens(teacher_tokens, mask),
                                        self.margin)
        return dict(loss=total_loss(loss_rec, loss_align, self.align_weight), loss_rec=loss_rec,
                    loss_align=loss_align, pred=pred)
