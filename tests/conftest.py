"""Shared fixtures: the embedded model is loaded once per test session (about 3 s from the cache)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedded():
    """(model, tokenizer) of the embedded default, Gemma 3 270M, on the CPU in float32."""
    from izkit.models import load_causal_lm

    return load_causal_lm(device="cpu")
