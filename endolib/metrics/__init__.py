"""Official metrics of the downstream benchmarks (classification, segmentation, detection, phase, triplets).

Every function takes torch tensors, numpy arrays or lists and returns Python floats or numpy arrays;
values are fractions in [0, 1] (multiply by 100 to compare with papers, which report percentages).
Each module's docstring states the definition it follows and where that definition comes from.
"""
from endolib.metrics.classification import (
    accuracy,
    auroc,
    confusion_matrix,
    f1_score,
    precision_recall_f1,
    top_k_accuracy,
)
from endolib.metrics.detection import box_iou, detection_prf, frame_detection_prf, match_frame
from endolib.metrics.phase import (
    evaluate_video,
    per_phase_metrics,
    phase_metrics,
    pooled_phase_metrics,
    relaxed_correct,
)
from endolib.metrics.segmentation import dice_per_case, iou_per_case, mean_dice, mean_iou
from endolib.metrics.triplet import TRIPLET_MAP, average_precision, mean_ap, triplet_ap, triplet_to_component

__all__ = [
    "accuracy", "auroc", "confusion_matrix", "f1_score", "precision_recall_f1", "top_k_accuracy",
    "box_iou", "detection_prf", "frame_detection_prf", "match_frame",
    "dice_per_case", "iou_per_case", "mean_dice", "mean_iou",
    "evaluate_video", "per_phase_metrics", "phase_metrics", "pooled_phase_metrics", "relaxed_correct",
    "TRIPLET_MAP", "average_precision", "mean_ap", "triplet_ap", "triplet_to_component",
]
