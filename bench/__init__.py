"""Benchmarks (they print tables; none is a timed test). Run them from the repository root as modules, e.g.
``python -m bench.trigger_scale --smoke``, so ``bench`` and ``tooling`` import from this checkout."""
