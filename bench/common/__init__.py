"""What bench scripts share: :mod:`bench.common.report` (print a table and keep it in bench/out/) and
:mod:`bench.common.before` (the old prediction path that ``--before`` measures)."""
