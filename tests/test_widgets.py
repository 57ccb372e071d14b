"""izkit.course.widgets: the explorers driven headless; slow work (generation, scoring) only ever runs on a click."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import FakeBlackBox, FakeGenerator, make_fake_pipeline  # noqa: E402

from izkit import widgets  # noqa: E402
from izkit.config import Config  # noqa: E402
from izkit.loop import Run  # noqa: E402
from izkit.pipeline import Pipeline  # noqa: E402
from izkit.replay import replay  # noqa: E402
from izkit.tasks import load_task  # noqa: E402

PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A small finished run made with the shared fake pipeline (no LLM): 5 + 2 x 4 soft prompts in d = 4, seed 0."""
    out = tmp_path_factory.mktemp("run")
    cfg = Config.quick("antonyms", d=4, n_init=5, n_rounds=2, batch_size=4, n_dev=4, n_test=5, baselines=("matern",),
                       objective="loglik")  # the fake scores are loglik-like
    Run(cfg, out, progress=False, pipeline=make_fake_pipeline()).execute()
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


def output_text(ex) -> str:
    """Everything the explorer's Output widget holds, as text."""
    return "".join(o.get("text", "") for o in ex.output.outputs)


# ---------------------------------------------------------------------------------------------- soft-prompt explorer


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
    assert not w["score"].disabled and w["generate"].description == "Generate instruction"
    w["score"].click()
    assert spy.scored == [st["instruction"]] and st["score"] == -1.25 and "-1.250" in w["instruction"].value

    w["a"].value = -0.2  # the instruction shown is now for an earlier point, and says so
    assert "earlier soft prompt" in w["instruction"].value and len(spy.generated) == 1
    redraws = st["n_redraws"]
    w["reset"].click()
    assert np.allclose(st["z"], st["z_best"]) and w["a"].value == 0.0 and w["b"].value == 0.0
    assert st["n_redraws"] == redraws + 1 and "earlier soft prompt" in w["instruction"].value
    assert output_text(ex) == ""  # nothing went wrong


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


def test_soft_prompt_explorer_maps_each_gp_once(recorded):
    class Counting:
        """A GP that counts the points it is asked about."""

        def __init__(self, gp):
            self.gp, self.asked = gp, []

        def predict(self, X):
            self.asked.append(len(X))
            return self.gp.predict(X)

    first, second = Counting(recorded.gp()), Counting(recorded.gp("matern"))
    ex = widgets.soft_prompt_explorer(recorded, None, False, grid=9, gps={"first": first, "second": second})
    w = ex.widgets
    assert w["generate"].layout.display == "none" and w["score"].layout.display == "none"
    assert first.asked == [1, 81]  # the readout at z, then the 9 x 9 map
    w["gp"].value = "second"
    w["gp"].value = "first"
    w["a"].value = 0.4
    assert first.asked == [1, 81, 1, 1] and second.asked == [1, 81]  # back on "first": its map is reused


def test_soft_prompt_explorer_coordinate_mode(recorded):
    spy = Spy()
    ex = widgets.soft_prompt_explorer(recorded, spy.generate, spy.score, mode="coords")
    w, st = ex.widgets, ex.state
    assert [k for k in w if k.startswith("z")] == ["z0", "z1", "z2", "z3"]
    w["z2"].value = 0.9
    assert st["last_coord"] == 2 and st["z"][2] == pytest.approx(0.9) and spy.generated == []
    assert "along z[2]" in ex.figure.axes[0].get_title()
    w["generate"].click()
    assert float(spy.generated[0][0, 2]) == pytest.approx(0.9)
    redraws = st["n_redraws"]
    w["reset"].click()
    assert np.allclose(st["z"], st["z_best"]) and st["n_redraws"] == redraws + 1  # one redraw, not one per slider


def test_soft_prompt_explorer_reports_generation_errors_in_its_output(recorded):
    def broken(z):
        raise RuntimeError("model exploded")

    ex = widgets.soft_prompt_explorer(recorded, broken, None)
    assert output_text(ex) == ""
    ex.widgets["generate"].click()  # the error goes to the Output widget, the button comes back
    (out,) = ex.output.outputs
    assert out["name"] == "stderr" and "RuntimeError: model exploded" in out["text"]
    assert ex.widgets["generate"].disabled is False and ex.widgets["generate"].description == "Generate instruction"
    assert ex.state["instruction"] is None and ex.state["n_generate"] == 0


def test_soft_prompt_explorer_rejects_a_bad_mode_and_a_run_without_soft_prompts(recorded):
    with pytest.raises(ValueError, match="mode"):
        widgets.soft_prompt_explorer(recorded, None, False, mode="sideways")
    with pytest.raises(ValueError, match="two or more"):
        widgets.soft_prompt_explorer(recorded, None, False, method="manual")


def test_replay_models_are_rebuilt_from_the_record_only_on_first_click(recorded, monkeypatch):
    headers, built = [], []

    class SpyGenerator(FakeGenerator):
        def __init__(self):
            self.seen = []

        def generate(self, Z, exemplars):
            self.seen.append((Z.clone(), exemplars))
            return super().generate(Z, exemplars)

    class RecordingBlackBox(FakeBlackBox):
        def score(self, instructions, examples, metric="em", objective=None):
            self.asked = (list(instructions), list(examples), metric, objective)
            return super().score(instructions, examples, metric, objective)

    def from_record(header):  # stands in for Pipeline.from_record: the run's models, rebuilt from its header
        headers.append(header)
        cfg = Config.from_dict(header["config"])
        splits = load_task(cfg.task).splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
        pipeline = make_fake_pipeline(generator=SpyGenerator(), blackbox=RecordingBlackBox(),
                                      exemplars=splits.exemplars)
        pipeline.metric = "f1"  # not the fake's default, to see that the pipeline's metric is the one used
        built.append((pipeline, splits))
        return pipeline, splits

    monkeypatch.setattr(Pipeline, "from_record", staticmethod(from_record))
    ex = widgets.soft_prompt_explorer(recorded, span=3.0)  # default: the run's own generator and black box
    ex.widgets["a"].value = 3.0
    assert built == []  # building and moving never load a model
    ex.widgets["generate"].click()
    assert len(built) == 1 and headers[0] is recorded.record.header
    pipeline, splits = built[0]
    (Z, exemplars), = pipeline.generator.seen
    assert Z.shape == (1, 4) and bool((Z.abs() <= 1).all())  # clipped into the box
    assert exemplars == splits.exemplars and len(splits.dev) == 4
    assert ex.state["instruction"] == pipeline.generator.generate(Z, exemplars)[0]
    ex.widgets["score"].click()
    instructions, examples, metric, objective = pipeline.blackbox.asked
    assert instructions == [ex.state["instruction"]] and examples == list(splits.dev)
    assert metric == "f1" and objective == "loglik"
    expected = pipeline.blackbox.score(instructions, examples).means[0]
    assert ex.state["score"] == pytest.approx(expected) and len(built) == 1  # loaded once

    models = widgets.ReplayModels(recorded)  # called directly, it clips z into the box itself
    models.generate(torch.full((1, 4), 3.0))
    (Z, _), = built[-1][0].generator.seen
    assert len(built) == 2 and torch.equal(Z, torch.ones(1, 4))


def test_plane_directions_are_orthonormal_and_projected_scores_sorted():
    Z = np.random.default_rng(0).uniform(-1, 1, (12, 6))
    for kind in ("pca", "random"):
        U = widgets.plane_directions(Z, kind, seed=0)
        assert U.shape == (2, 6) and np.allclose(U @ U.T, np.eye(2))
    with pytest.raises(ValueError):
        widgets.plane_directions(Z, "sideways")
    t, y = widgets.projected_scores([{"z": z.tolist(), "mean": float(i)} for i, z in enumerate(Z)])
    assert t.shape == (12,) and np.all(np.diff(t) >= 0)
    u = widgets.plane_directions(Z, "pca")[0]
    assert sorted(zip(t, y)) == sorted(zip((Z - Z.mean(0)) @ u, range(12)))  # each score kept with its own z


# ------------------------------------------------------------------------------------------------- 1-D explorers


def test_kernel_explorer_sliders_change_the_posterior_and_fit_restores_the_maximum():
    ex = widgets.kernel_explorer(seed=0)
    w, st = ex.widgets, ex.state
    lml_fit, sd_fit = st["lml"], st["sd"].copy()
    assert bytes(ex.image.value).startswith(PNG)
    assert all(w[k].continuous_update is False for k in ("lengthscale", "outputscale", "noise"))
    w["lengthscale"].value = st["fitted"]["lengthscale"] * 5
    assert st["lml"] < lml_fit  # the fit maximises the marginal likelihood
    sd_smooth = st["sd"].copy()
    w["noise"].value = 0.5
    assert st["noise"] == pytest.approx(0.5, rel=1e-6)
    assert st["sd"].mean() > 2 * sd_smooth.mean()  # noisier data (0.5 against 0.008): a less certain posterior
    before = st["n_redraws"]
    w["fit"].click()
    assert st["lml"] == pytest.approx(lml_fit, abs=1e-6)
    assert np.allclose(st["sd"], sd_fit)
    assert st["n_redraws"] == before + 1  # one redraw for the three slider moves


def test_ei_explorer_maximiser_moves_to_uncertain_places_as_xi_grows():
    x = np.array([0.1, 0.2, 0.3, 0.5, 0.55])
    y = np.sin(6 * x)
    ex = widgets.ei_explorer(x, y, seed=0)
    w, st = ex.widgets, ex.state
    assert st["best"] == pytest.approx(y.max(), abs=1e-3)
    gp_sd = lambda at: float(np.interp(at, *_sd_curve(ex)))  # noqa: E731
    x0, sd0, ei0 = st["x_max"], gp_sd(st["x_max"]), st["ei_max"]
    w["xi"].value = w["xi"].max
    assert st["xi"] == pytest.approx(w["xi"].max)
    assert st["x_max"] != x0 and gp_sd(st["x_max"]) > sd0  # more exploration: a more uncertain maximiser
    assert st["ei_max"] < ei0  # asking for more improvement expects less of it
    w["log"].value = True
    assert bytes(ex.image.value).startswith(PNG) and "maximiser" in w["readout"].value
    assert np.allclose(ex.figure.axes[1].lines[0].get_ydata(), st["log_ei"])  # the lower panel now shows log-EI
    w["best"].value = w["best"].min
    assert st["ei_max"] > 0


def _sd_curve(ex):
    ax = ex.figure.axes[0]
    band = ax.collections[0].get_paths()[0].vertices  # the mean +- 2 sd band
    t = np.array(sorted(set(band[:, 0])))
    top = np.array([band[band[:, 0] == v, 1].max() for v in t])
    bot = np.array([band[band[:, 0] == v, 1].min() for v in t])
    return t, (top - bot) / 4
