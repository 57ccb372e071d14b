"""Speed benchmarks: what a run costs in seconds, rates or memory (``python -m bench.speed.<script>``)."""
