"""Shared fixtures: the embedded model is loaded once per test session (about 3 s from the cache)."""

from __future__ import annotations

import os

# Before torch starts its OpenMP runtime: idle threads sleep instead of spinning, so the test process, a served model
# and notebook kernels sharing two cores do not stall each other (bench/README.md has the figure).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402


# The tests check behaviour, not model quality: wherever no model is named they use the cheapest embedded model,
# Gemma 3 270M, whatever the project's default (test_models checks the default itself; the notebook tests run the
# course on the real default). A developer's own IZKIT_MODEL is overridden too.
CHEAP_MODEL = "gemma-3-270m"
os.environ["IZKIT_MODEL"] = CHEAP_MODEL
# float32 in the tests, whatever this CPU could do in bfloat16: the tests compare batched and one-by-one decoding token
# for token, which bfloat16's rounding need not keep; test_models checks the bfloat16 default itself, the notebooks
# (test_notebooks) run on the machine's own default.
os.environ["IZKIT_DTYPE"] = "float32"


@pytest.fixture(scope="session")
def embedded():
    """(model, tokenizer) of the cheapest embedded model, Gemma 3 270M, on the CPU in float32."""
    from izkit.models import load_causal_lm

    return load_causal_lm(CHEAP_MODEL, device="cpu")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's model work, restored afterwards (opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): with a served model or another process on the same
    two cores, one thread each was much faster than two (bench/README.md has the figure)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------------------------------
# One shared fake pipeline (izkit.pipeline.Pipeline with no LLM), for the loop, the widgets and the CLI tests.


class Killed(Exception):
    """Stands in for SIGKILL: raised from inside the fake black box after a given number of calls."""


def hash01(text: str) -> float:
    """A stable pseudo-random number in [0, 1) from a string."""
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


class FakeGenerator:
    """Instructions from a coarse grid over z, so nearby soft prompts share an instruction (as a real model does)."""

    def generate(self, Z, exemplars):
        return [f"instruction {int((float(z[0]) + 1) * 2)}-{int((float(z[1]) + 1) * 2)}" for z in Z]

    def generate_plain(self, exemplars, n=1, sampling=None):
        seed = 0 if sampling is None else sampling.seed
        return [f"plain {seed}-{i if sampling else 0}" for i in range(n)]

    def generate_ape(self, exemplars, n=1, sampling=None):
        seed = 0 if sampling is None else sampling.seed
        return [f"ape {seed}-{i if sampling else 0}" for i in range(n)]


class FakeBlackBox:
    """Scores from a hash of (instruction, input) in [-1, 0); raises Killed after ``die_after`` calls."""

    objective = "loglik"
    model_id = "fake"

    def __init__(self, die_after: int | None = None):
        self.calls = 0
        self.die_after = die_after

    def score(self, instructions, examples, metric="em", objective=None):
        import numpy as np

        from izkit.blackbox import ScoreResult, Usage

        if self.die_after is not None and self.calls >= self.die_after:
            raise Killed(f"killed after {self.calls} calls")
        self.calls += 1
        scores = np.array([[hash01(v + e.input) - 1 for e in examples] for v in instructions])  # (I, E)
        return ScoreResult(objective or self.objective, list(instructions), scores,
                           [[""] * len(examples) for _ in instructions], scores.mean(1), Usage(requests=1))


def make_fake_pipeline(die_after: int | None = None, generator=None, blackbox=None, exemplars=None):
    """A Pipeline of fakes: FakeGenerator and FakeBlackBox unless others are given."""
    from izkit.pipeline import Pipeline

    return Pipeline(generator or FakeGenerator(), blackbox or FakeBlackBox(die_after), exemplars, "em",
                    {"generator": "fake", "blackbox": "fake"})


@pytest.fixture
def fake_pipeline():
    """The factory :func:`make_fake_pipeline`: ``fake_pipeline()``, ``fake_pipeline(die_after=3)``."""
    return make_fake_pipeline
