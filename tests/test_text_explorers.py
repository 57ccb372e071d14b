"""izkit.course.text_explorers: the walk in z (notebook 2) and the instruction box (notebook 3), driven headless.

Most tests use conftest's fakes (a generator whose instruction is a coarse grid over z, a black box that scores by a
hash), so they need no model; the last two run each explorer once on the cheapest embedded model, Gemma 3 270M.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FakeBlackBox, FakeGenerator, hash01

from izkit.tasks import Example
from izkit.course.text_explorers import BOX_CSS, WALK_CSS, instruction_box, walk_explorer, walk_points


class CountingGenerator(FakeGenerator):
    """FakeGenerator that counts its batched calls and the soft prompts it was given."""

    def __init__(self):
        self.calls, self.rows = 0, 0

    def generate(self, Z, exemplars):
        self.calls += 1
        self.rows += len(Z)
        return super().generate(Z, exemplars)


class RecordingBlackBox(FakeBlackBox):
    """FakeBlackBox that records every instruction it was asked to score."""

    def __init__(self):
        super().__init__()
        self.asked: list[str] = []

    def score(self, instructions, examples, metric="em", objective=None):
        self.asked.extend(instructions)
        return super().score(instructions, examples, metric, objective)


EXAMPLES = [Example(input=w, answers=(w[::-1],)) for w in ("hot", "up", "left", "open", "early")]
Z0, Z1 = -np.ones(10), np.ones(10)  # the fake's instruction depends on z[0] and z[1]: it changes along this walk


def test_walk_decodes_once_and_the_slider_only_redraws():
    gen = CountingGenerator()
    ex = walk_explorer(gen, EXAMPLES, Z0, Z1, steps=9)
    assert (gen.calls, gen.rows) == (1, 9)
    assert ex.ui.children[0] is ex.widgets["t"]  # the first control is the slider (the browser test drags it)
    assert WALK_CSS in ex.ui._dom_classes
    before = (ex.image.value, ex.state["instruction"], ex.state["n_redraws"])
    assert ex.state["t"] == 0.0 and ex.state["instruction"] == FakeGenerator().generate([Z0], None)[0]
    ex.widgets["t"].value = 1.0
    assert gen.calls == 1  # no model call per move
    assert ex.state["t"] == 1.0 and ex.state["step"] == 8
    assert ex.state["instruction"] == FakeGenerator().generate([Z1], None)[0] != before[1]
    assert ex.state["n_redraws"] == before[2] + 1
    assert ex.image.value != before[0]
    assert ex.output.outputs == ()  # no error written under the explorer


def test_walk_state_matches_the_line():
    ex = walk_explorer(FakeGenerator(), EXAMPLES, Z0, Z1, steps=5)
    t, line = walk_points(Z0, Z1, 5)
    np.testing.assert_allclose(ex.state["line"], line)
    np.testing.assert_allclose(line[2], np.zeros(10))  # the midpoint of -1 and 1
    assert ex.state["walk"] == FakeGenerator().generate(line, None)
    assert [ex.state["distinct"][c] for c in ex.state["codes"]] == ex.state["walk"]
    assert ex.state["flips"] == sum(a != b for a, b in zip(ex.state["walk"], ex.state["walk"][1:]))
    ex.widgets["t"].value = 0.5
    assert ex.state["step"] == 2 and ex.state["instruction"] == ex.state["walk"][2]


def test_walk_rejects_points_outside_the_box():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        walk_explorer(FakeGenerator(), EXAMPLES, Z0, 1.5 * Z1, steps=5)
    with pytest.raises(ValueError, match="at least 2 steps"):
        walk_points(Z0, Z1, 1)


def test_box_scores_a_submitted_instruction_and_redraws():
    box = RecordingBlackBox()
    refs = {"hand-written": "reverse the word", "empty": ""}
    ex = instruction_box(box, EXAMPLES, references=refs, value="repeat the word")
    assert ex.ui.children[0] is ex.widgets["instruction"]  # the first control is the text box
    assert not ex.widgets["instruction"].continuous_update  # Enter submits, not every keystroke
    assert BOX_CSS in ex.ui._dom_classes
    assert box.asked == ["repeat the word", "reverse the word", ""]  # the first instruction and the references
    before = (ex.image.value, ex.state["n_redraws"])
    ex.widgets["instruction"].value = "write the opposite"
    assert ex.state["latest"] == "write the opposite"
    assert box.asked[-1] == "write the opposite" and box.calls == 2  # only the new one was scored
    expected = np.array([hash01("write the opposite" + e.input) - 1 for e in EXAMPLES])  # the fake's scores
    np.testing.assert_allclose(ex.state["scored"]["write the opposite"][0], expected)
    assert ex.state["mean"] == pytest.approx(expected.mean())
    assert ex.state["tries"] == ["repeat the word", "write the opposite"]
    assert ex.state["n_redraws"] == before[1] + 1 and ex.image.value != before[0]
    assert "write the opposite" in ex.widgets["readout"].value
    assert ex.output.outputs == ()


def test_box_scores_each_instruction_once_and_keeps_the_latest_few():
    box = RecordingBlackBox()
    ex = instruction_box(box, EXAMPLES, references={"empty": ""}, value="a", keep=2)
    for v in ["b", "c", "a  "]:  # "a  " is "a" again once stripped: no new call
        ex.widgets["instruction"].value = v
    assert box.asked.count("a") == 1 and box.calls == 3
    assert ex.state["tries"] == ["c", "a"] and ex.state["latest"] == "a"


def test_box_shows_a_black_box_error_under_the_explorer():
    class Broken(FakeBlackBox):
        def score(self, instructions, examples, metric="em", objective=None):
            if "boom" in instructions:
                raise RuntimeError("the black box is down")
            return super().score(instructions, examples, metric, objective)

    ex = instruction_box(Broken(), EXAMPLES, value="fine")
    ex.widgets["instruction"].value = "boom"
    assert "the black box is down" in "".join(o.get("text", "") for o in ex.output.outputs)
    assert not ex.widgets["instruction"].disabled  # the box is given back after the error
    assert ex.state["latest"] == "fine"


def test_walk_and_box_on_the_embedded_model(embedded):
    from izkit.blackbox import LocalBlackBox
    from izkit.generator import RandomProjection, SoftPromptGenerator
    from izkit.tasks import load_task

    model, tok = embedded
    split = load_task("antonyms").splits(kappa=5, n_dev=2, seed=0)
    gen = SoftPromptGenerator(model, tok, RandomProjection.for_model(model, kind="uniform"), max_new_tokens=8)
    ex = walk_explorer(gen, split.exemplars, -0.5 * np.ones(10), 0.5 * np.ones(10), steps=4)
    assert gen.calls == 1
    assert ex.state["walk"] == gen.generate(ex.state["line"], split.exemplars)  # greedy: the same instructions
    ex.widgets["t"].value = 1.0
    assert gen.calls == 2 and ex.state["instruction"] == ex.state["walk"][-1]

    box = LocalBlackBox(model, tok, max_new_tokens=4, cache=None)
    ib = instruction_box(box, split.dev, references={"empty": ""}, value="Write the opposite of the given word.")
    before = ib.image.value
    ib.widgets["instruction"].value = "repeat the word"
    assert ib.output.outputs == ()
    assert ib.state["latest"] == "repeat the word" and ib.image.value != before
    assert set(np.unique(ib.state["scored"]["repeat the word"][0])) <= {0.0, 1.0}  # exact match: 0 or 1 per example
