"""Shared fixtures: the embedded model is loaded once per test session (about 3 s from the cache)."""

from __future__ import annotations

import os

# Before torch starts its OpenMP runtime: idle threads sleep instead of spinning, so the test process, a served model
# and notebook kernels sharing two cores do not stall each other (measured here: 5-20x on small operations).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedded():
    """(model, tokenizer) of the embedded default, Gemma 3 270M, on the CPU in float32."""
    from izkit.models import load_causal_lm

    return load_causal_lm(device="cpu")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's model work, restored afterwards (opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): with a served model or another process on the same
    two cores, one thread each was 4x faster than two (the model tests: 6 min with 2 threads, 1.5 min with 1)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
