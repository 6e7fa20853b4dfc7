"""Speed profiling: streaming latency, clip throughput and memory, with the environment recorded.

Modules: `harness` (timing, peak memory, tidy rows), `fast_stream` (bf16 + CUDA-graph streaming step),
`baselines` (frame-wise ViT, divided space-time transformer, VideoMAE, VideoMamba), `suite` (the
measurements, shared by the notebook and the GPU run), `scan_check` (scan backends vs the float64 loop),
`floor` (bytes / FLOPs / launches floor and the measured ceilings), `plots` (notebook figures and text),
`gpu` (`python -m endolib.profiling.gpu --out DIR`: everything GPU in one run). NOTES.md has the numbers.
"""
