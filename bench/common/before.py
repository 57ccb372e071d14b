"""The GP prediction as it was before 2026-12-06: old code, kept on purpose as the baseline that ``--before`` measures.

Not a copy of izkit's current logic (that is ``InstructionCoupledKernel.cross_train_diag``): benchmarks time this old
path beside the current one (bench/speed/bench_loop.py, bench/speed/bench_acquisition.py) or replay records made with
it (bench/speed/bench_round.py).

Until then ``GaussianProcess.predict`` asked the coupled kernel (eq. 9) for k(X, Z) and k(x, x) in two calls, each
solving for w(X) = L^{-1} l(Z, X) and multiplying by S itself; ``cross_train_diag`` now does both from one w(X). The
values agree to rounding, but a gradient's last bits differ, and multistart L-BFGS-B then ends at other maximisers:
a record proposed before the change replays to its own instructions only with these two calls, and with the
generator's passes of ``BATCH_SIZE`` rows (bfloat16 rounding depends on a pass's rows; 64 since the same day).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor

from izkit.kernels import InstructionCoupledKernel, matern52

BATCH_SIZE = 32  # the generator's rows per decoding pass before 2026-12-06


def two_calls(k: InstructionCoupledKernel, parts: dict[str, Tensor], X: Tensor) -> tuple[Tensor, Tensor]:
    """k(X, Z) (n, m) and k(x, x) (n,) computed as the two kernel calls did, operation for operation."""
    K = parts["s"] * (parts["S"] @ k.weights(parts, X)).T  # (n, m) the old cross_train
    W = k.weights(parts, X)  # (m, n) solved again, as the old diag did
    kxx = parts["s"] * ((parts["S"] @ W) * W).sum(0)  # (n,)
    if k.residual:
        K = K + parts["s_r"] * matern52(X, k.Z, parts["ls"])
        kxx = kxx + parts["s_r"]
    return K, kxx


@contextmanager
def two_call_prediction() -> Iterator[None]:
    """Every coupled GP predicts with :func:`two_calls` inside the block."""
    one_call = InstructionCoupledKernel.cross_train_diag
    InstructionCoupledKernel.cross_train_diag = two_calls
    try:
        yield
    finally:
        InstructionCoupledKernel.cross_train_diag = one_call
