"""Official metrics of the downstream benchmarks (classification, segmentation, detection, phase, triplets)."""
