"""izkit's benchmarks and studies, a package so that every script imports its helpers one way.

Run a script as a module from the repository root: ``python -m bench.speed.bench_loop`` (bench/README.md lists
them all).

- ``bench.speed``: what a run costs (seconds, rates, memory);
- ``bench.studies``: what a run finds or whether it holds (accuracies, instructions, paired statistics, faults);
- ``bench.common``: what both share (where things go, the Markdown report, the old code path ``--before`` measures);
- ``bench/data/``: the archived study records, no code (``izkit.studies.study.archived_study`` finds them).
"""
