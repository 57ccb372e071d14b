"""izkit.replay.Replay.round: a recorded round handed back to its strategy proposes what the run recorded."""

from __future__ import annotations

import pytest

from izkit.config import Config


@pytest.mark.parametrize("method", ["instructzero", "uniform"])
def test_a_replayed_round_proposes_the_recorded_instructions(tmp_path, method):
    """The round Replay.round rebuilds (earlier rounds' evaluations, preimages, the round's size and settings) is the
    one the loop gave the strategy: proposing from it again, with the same fake generator, writes the same batch."""
    from conftest import make_fake_pipeline
    from izkit.loop import Run
    from izkit.replay import replay
    from izkit.strategies import strategy_for

    cfg = Config.quick("antonyms", baselines=("uniform",), objective="loglik", preimages=True, n_init=4,
                       batch_size=4, n_rounds=2, selection="best")
    pipe = make_fake_pipeline()
    Run(cfg, tmp_path, progress=False, pipeline=pipe).execute()
    rep = replay(tmp_path)
    for rnd in (1, 2):
        r = rep.round(method, rnd, pipe.generator, pipe.exemplars)
        assert r.size == cfg.round_sizes[rnd] and {e["round"] for e in r.evals} == set(range(rnd))
        recorded = rep.record.find("proposal", method=method, round=rnd)
        assert strategy_for(method, r.cfg).propose(r).instructions == recorded["instructions"]
    if method == "instructzero":  # the GP's proposal depends on every evaluation: the check above can fail
        wrong = rep.round(method, 2, pipe.generator, pipe.exemplars)
        wrong.evals.pop()
        assert strategy_for(method, wrong.cfg).propose(wrong).instructions != rep.record.find(
            "proposal", method=method, round=2)["instructions"]
