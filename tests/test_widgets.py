"""izkit.widgets: the explorers driven headless; slow work (generation, scoring) only ever runs on a click."""

from __future__ import annotations

import hashlib

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from izkit import widgets
from izkit.blackbox import ScoreResult, Usage
from izkit.instructzero import Config, Run, replay

PNG = b"\x89PNG"


def _h(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


class FakeGenerator:
    def generate(self, Z, exemplars):
        return [f"instruction {int((float(z[0]) + 1) * 2)}-{int((float(z[1]) + 1) * 2)}" for z in Z]

    def generate_plain(self, exemplars, n=1, sampling=None):
        return [f"plain {i}" for i in range(n)]


class FakeBlackBox:
    objective = "loglik"

    def score(self, instructions, examples, metric="em", objective=None):
        scores = np.array([[_h(v + e.input) - 1 for e in examples] for v in instructions])  # (I, E)
        return ScoreResult(objective or self.objective, list(instructions), scores,
                           [[""] * len(examples) for _ in instructions], scores.mean(1), Usage(requests=1))


class FakeModels:
    def __init__(self):
        self.generator, self.blackbox = FakeGenerator(), FakeBlackBox()
        self.exemplars, self.metric = None, "em"

    def ids(self):
        return {"generator": "fake", "blackbox": "fake"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A small finished run made with fake models (no LLM): 5 + 2 x 4 soft prompts in d = 4."""
    out = tmp_path_factory.mktemp("run")
    cfg = Config.quick("antonyms", d=4, n_init=5, n_rounds=2, batch_size=4, n_dev=4, n_test=5, baselines=("matern",))
    Run(cfg, out, models=FakeModels(), progress=False).execute()
    return replay(out)


class Spy:
    """A fake generate/score pair that counts its calls."""

    def __init__(self):
        self.generated: list[torch.Tensor] = []
        self.scored: list[str] = []

    def generate(self, z):
        self.generated.append(z)
        return f"write about {float(z[0, 0]):+.2f}"

    def score(self, instruction):
        self.scored.append(instruction)
        return -1.25


def test_soft_prompt_explorer_moves_without_generating_and_generates_on_click(recorded):
    spy = Spy()
    ex = widgets.soft_prompt_explorer(recorded, spy.generate, spy.score)
    w, st = ex.widgets, ex.state
    assert bytes(ex.image.value).startswith(PNG)
    assert np.allclose(st["z"], recorded.best()["z"])
    assert st["instruction"] is None and "Generate" in w["instruction"].value
    mean0, redraws = st["mean"], st["n_redraws"]
    for s in (w["a"], w["b"]):
        assert s.continuous_update is False  # slow callbacks never fire on every tick

    w["a"].value = 0.5
    w["b"].value = -0.3
    assert spy.generated == [] and spy.scored == []  # slider moves never generate or score
    assert st["n_redraws"] == redraws + 2
    U = st["directions"]
    assert np.allclose(st["z"], st["z_best"] + 0.5 * U[0] - 0.3 * U[1])
    assert st["mean"] != mean0 and "mean" in w["readout"].value
    assert w["score"].disabled  # nothing to score yet

    w["generate"].click()
    assert len(spy.generated) == 1 and spy.scored == []
    assert spy.generated[0].shape == (1, 4)
    assert torch.all(spy.generated[0].abs() <= 1)
    assert st["instruction"].startswith("write about") and "write about" in w["instruction"].value
    assert not w["score"].disabled
    w["score"].click()
    assert spy.scored == [st["instruction"]] and st["score"] == -1.25 and "-1.250" in w["instruction"].value

    w["a"].value = -0.2  # the instruction shown is now for an earlier point, and says so
    assert "earlier soft prompt" in w["instruction"].value and len(spy.generated) == 1
    w["reset"].click()
    assert np.allclose(st["z"], st["z_best"]) and w["a"].value == 0.0 and w["b"].value == 0.0


def test_soft_prompt_explorer_switches_gp_and_variance_vanishes_far_from_data_under_eq9(recorded):
    ex = widgets.soft_prompt_explorer(recorded, Spy().generate, None, span=3.0, grid=15)
    w, st = ex.widgets, ex.state
    assert list(w["gp"].options) == ["coupled (eq. 9)", "plain Matern-5/2"]
    assert w["score"].layout.display == "none"  # no scorer given: no score button
    w["a"].value, w["b"].value = 3.0, 3.0
    sd_coupled = st["sd"]
    w["gp"].value = "plain Matern-5/2"
    assert st["gp"] == "plain Matern-5/2"
    assert st["sd"] > sd_coupled  # far from the data: the coupled kernel's variance vanishes, Matern's does not


def test_soft_prompt_explorer_coordinate_mode(recorded):
    spy = Spy()
    ex = widgets.soft_prompt_explorer(recorded, spy.generate, spy.score, mode="coords")
    w, st = ex.widgets, ex.state
    assert [k for k in w if k.startswith("z")] == ["z0", "z1", "z2", "z3"]
    w["z2"].value = 0.9
    assert st["last_coord"] == 2 and st["z"][2] == pytest.approx(0.9) and spy.generated == []
    w["generate"].click()
    assert float(spy.generated[0][0, 2]) == pytest.approx(0.9)
    w["reset"].click()
    assert np.allclose(st["z"], st["z_best"])


def test_soft_prompt_explorer_reports_generation_errors_in_its_output(recorded):
    def broken(z):
        raise RuntimeError("model exploded")

    ex = widgets.soft_prompt_explorer(recorded, broken, None)
    ex.widgets["generate"].click()  # the error goes to the Output widget, the button comes back
    assert ex.widgets["generate"].disabled is False and ex.state["instruction"] is None


def test_replay_models_are_rebuilt_from_the_record_only_on_first_click(recorded, monkeypatch):
    built = []

    class RecordingBlackBox(FakeBlackBox):
        def score(self, instructions, examples, metric="em", objective=None):
            self.asked = (list(instructions), len(examples), metric, objective)
            return super().score(instructions, examples, metric, objective)

    class RunModels:  # stands in for izkit.instructzero._Models: what the run used, rebuilt from its header
        def __init__(self, cfg, splits, task, objective):
            self.cfg, self.objective, self.splits = cfg, objective, splits
            self.generator, self.blackbox = FakeGenerator(), RecordingBlackBox()
            self.exemplars, self.metric = splits.exemplars, task.metric
            self.generator.seen = []
            plain = self.generator.generate
            self.generator.generate = lambda Z, ex: (self.generator.seen.append((Z.clone(), ex)), plain(Z, ex))[1]
            built.append(self)

    monkeypatch.setattr("izkit.instructzero._Models", RunModels)
    ex = widgets.soft_prompt_explorer(recorded, span=3.0)  # default: the run's own generator and black box
    ex.widgets["a"].value = 3.0
    assert built == []  # building and moving never load a model
    ex.widgets["generate"].click()
    assert len(built) == 1
    m = built[0]
    assert m.cfg.d == 4 and m.cfg.n_dev == 4 and m.cfg.baselines == ("matern",) and m.objective == "loglik"
    (Z, exemplars), = m.generator.seen
    assert Z.shape == (1, 4) and bool((Z.abs() <= 1).all())  # clipped into the box
    assert exemplars == m.splits.exemplars
    assert ex.state["instruction"].startswith("instruction ")
    ex.widgets["score"].click()
    instructions, n_examples, metric, objective = m.blackbox.asked
    assert instructions == [ex.state["instruction"]] and n_examples == 4 and objective == "loglik"
    assert ex.state["score"] is not None and len(built) == 1  # loaded once


def test_plane_directions_are_orthonormal():
    Z = np.random.default_rng(0).uniform(-1, 1, (12, 6))
    for kind in ("pca", "random"):
        U = widgets.plane_directions(Z, kind)
        assert U.shape == (2, 6) and np.allclose(U @ U.T, np.eye(2))
    with pytest.raises(ValueError):
        widgets.plane_directions(Z, "sideways")
    t, y = widgets.projected_scores([{"z": z.tolist(), "mean": float(i)} for i, z in enumerate(Z)])
    assert t.shape == (12,) and np.all(np.diff(t) >= 0)


def test_kernel_explorer_sliders_change_the_posterior_and_fit_restores_the_maximum():
    ex = widgets.kernel_explorer()
    w, st = ex.widgets, ex.state
    lml_fit, sd_fit = st["lml"], st["sd"].copy()
    assert bytes(ex.image.value).startswith(PNG)
    assert all(w[k].continuous_update is False for k in ("lengthscale", "outputscale", "noise"))
    w["lengthscale"].value = st["fitted"]["lengthscale"] * 5
    assert st["lml"] < lml_fit  # the fit maximises the marginal likelihood
    w["noise"].value = 0.5
    assert st["sd"].mean() > sd_fit.mean() * 0 and st["noise"] == pytest.approx(0.5, rel=1e-6)
    before = st["n_redraws"]
    w["fit"].click()
    assert st["lml"] == pytest.approx(lml_fit, abs=1e-6)
    assert st["n_redraws"] == before + 1  # one redraw for the three slider moves


def test_ei_explorer_maximiser_moves_to_uncertain_places_as_xi_grows():
    x = np.array([0.1, 0.2, 0.3, 0.5, 0.55])
    y = np.sin(6 * x)
    ex = widgets.ei_explorer(x, y)
    w, st = ex.widgets, ex.state
    assert st["best"] == pytest.approx(y.max(), abs=1e-3)
    gp_sd = lambda at: float(np.interp(at, *_sd_curve(ex)))  # noqa: E731
    x0, sd0 = st["x_max"], gp_sd(st["x_max"])
    w["xi"].value = w["xi"].max
    assert st["xi"] == pytest.approx(w["xi"].max)
    assert gp_sd(st["x_max"]) >= sd0  # more exploration: a more uncertain maximiser
    assert st["ei_max"] >= 0
    w["log"].value = True
    assert bytes(ex.image.value).startswith(PNG) and "maximiser" in w["readout"].value
    w["best"].value = w["best"].min
    assert st["ei_max"] > 0
    assert x0 is not None


def _sd_curve(ex):
    ax = ex.figure.axes[0]
    band = ax.collections[0].get_paths()[0].vertices  # the mean +- 2 sd band
    t = np.array(sorted(set(band[:, 0])))
    top = np.array([band[band[:, 0] == v, 1].max() for v in t])
    bot = np.array([band[band[:, 0] == v, 1].min() for v in t])
    return t, (top - bot) / 4
