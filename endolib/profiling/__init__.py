"""Speed profiling: streaming latency, clip throughput and memory, with the environment recorded."""
