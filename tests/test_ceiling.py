"""izkit.studies.ceiling: a pool's best instruction picked on spare induce examples and judged on others, never test;
and izkit.prompts' table of generator prompts, one per --generator-prompt choice."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FakeBlackBox, make_fake_pipeline
from izkit.cleaner import lead_of
from izkit.config import CHOICES, Config
from izkit.prompts import PROMPTS, SENTENCE_TEMPLATE
from izkit.studies.ceiling import ceiling, pick_and_judge
from izkit.tasks import load_task


def test_the_pick_is_the_best_on_the_pick_examples_and_judged_on_the_next_ones():
    cfg = Config.quick("antonyms")
    task = load_task("antonyms")
    spare = task.spare_induce(cfg.kappa, cfg.n_dev, cfg.seed)
    got = ceiling(cfg, pool="soft", n=12, pick_on=5, judge_on=10, pipeline=make_fake_pipeline())
    bb = FakeBlackBox()
    screen = bb.score(got.distinct, spare[:5], task.metric).means
    assert got.screen == pytest.approx(list(screen)) and got.pick == got.distinct[int(np.argmax(screen))]
    assert got.judged == pytest.approx(float(bb.score([got.pick], spare[5:15], task.metric).means[0]))
    assert got.reference == task.reference_instruction
    assert got.reference_judged == pytest.approx(float(bb.score([got.reference], spare[5:15], task.metric).means[0]))
    assert got.gap == pytest.approx(got.judged - got.reference_judged) and got.drawn == 12
    test_inputs = {e.input for e in task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed).test}
    assert not test_inputs & {e.input for e in spare[:15]}  # never the test split
    ape = ceiling(cfg, pool="sampled", n=6, pick_on=5, judge_on=10, pipeline=make_fake_pipeline())
    assert ape.pool == "sampled" and ape.pick in ape.distinct and all(v.startswith("ape") for v in ape.distinct)


def test_too_few_spare_examples_or_an_unknown_pool_is_an_error_naming_it():
    cfg = Config.quick("antonyms")
    with pytest.raises(ValueError, match="spare induce examples, fewer than pick_on"):
        ceiling(cfg, pick_on=5, judge_on=10**6, pipeline=make_fake_pipeline())
    with pytest.raises(ValueError, match="pool must be one of soft, sampled"):
        ceiling(cfg, pool="grid", n=4, pick_on=5, judge_on=5, pipeline=make_fake_pipeline())


def test_ties_go_to_the_first_written_and_placeholders_are_not_candidates():
    class Flat(FakeBlackBox):
        def score(self, instructions, examples, metric="em", objective=None):
            res = super().score(instructions, examples, metric, objective)
            res.means[:] = 0.5
            return res

    from izkit.cleaner import EMPTY_PLACEHOLDER

    spare = load_task("antonyms").spare_induce()
    distinct, screen, best, _ = pick_and_judge(["b", EMPTY_PLACEHOLDER, "a", "b"], Flat(), "em", spare[:2], spare[2:4])
    assert distinct == ["b", "a"] and best == 0 and list(screen) == [0.5, 0.5]


def test_every_generator_prompt_choice_has_a_template_and_the_sentence_prompt_is_a_chat_turn():
    assert tuple(PROMPTS) == CHOICES["generator_prompt"]
    assert PROMPTS["sentence"] == (SENTENCE_TEMPLATE, True) and "{demos}" in SENTENCE_TEMPLATE
    assert "no code" in SENTENCE_TEMPLATE and lead_of(SENTENCE_TEMPLATE).startswith("Write the instruction")
    assert PROMPTS["plain"][1] is False and PROMPTS["chat"][1] is True


def test_the_archived_ceilings_read_back_with_their_generator_and_prompt_and_draw(tmp_path):
    """bench_ceiling's archive (key generator|prompt|pool|task|seed) reads back as Ceilings; the figure draws one bar
    per pool and one for the hand-written instruction per task, for the generator and prompt asked for."""
    import dataclasses
    import json

    from izkit.studies.ceiling import Ceiling, archived_ceilings, ceiling_figure

    def one(task, pool, judged):
        return dataclasses.asdict(Ceiling(task, pool, 10, ["a"], 0, "a", 2, 1.0, 3, judged, "ref", 0.5))

    store = {"g|plain|soft|t1|0": one("t1", "soft", 0.25), "g|plain|sampled|t1|0": one("t1", "sampled", 0.75),
             "g|plain|soft|t2|0": one("t2", "soft", 1.0), "h|sentence|soft|t1|0": one("t1", "soft", 0.0)}
    path = tmp_path / "ceiling.json"
    path.write_text(json.dumps(store))
    back = archived_ceilings(path)
    assert [(c.generator, c.prompt, c.pool, c.task, c.judged) for c in back] == [
        ("g", "plain", "soft", "t1", 0.25), ("g", "plain", "sampled", "t1", 0.75), ("g", "plain", "soft", "t2", 1.0),
        ("h", "sentence", "soft", "t1", 0.0)]
    fig = ceiling_figure(back, "g", "plain")
    widths = sorted(round(p.get_width(), 2) for p in fig.axes[0].patches if not np.isnan(p.get_width()))
    assert widths == [0.25, 0.5, 0.5, 0.75, 1.0]  # t2 has no sampled pool: its bar is missing, not zero
    assert "g" in fig.axes[0].get_title() and "plain" in fig.axes[0].get_title()
