"""The eq. 9 explorer of notebook 5 (izkit.course.gp_explorers.eq9_explorer): every slider moves the state and the figure,
K equals S on the evaluated soft prompts, and eq. 9's variance behaves as the notebook says."""

import ipywidgets as W
import numpy as np
import pytest

from izkit.course.gp_explorers import EQ9_SLIDERS, eq9_explorer, toy_eq9

PNG = b"\x89PNG"


def ends(slider):
    """The lowest and highest values of a log slider (its min and max are exponents of 10)."""
    return 10.0**slider.min, 10.0**slider.max


@pytest.fixture(scope="module")
def ex():
    return eq9_explorer()


def test_first_control_is_a_slider_and_the_ui_carries_its_css_class(ex):
    first = ex.ui.children[0].children[0].children[0]  # the first control drawn
    assert isinstance(first, W.FloatLogSlider) and first is ex.widgets[EQ9_SLIDERS[0]]
    assert "izkit-eq9-explorer" in ex.ui._dom_classes
    assert all(ex.widgets[k].continuous_update is False for k in EQ9_SLIDERS)
    assert bytes(ex.image.value).startswith(PNG)


@pytest.mark.parametrize("name", [*EQ9_SLIDERS, "plain"])
def test_each_control_changes_the_state_and_the_figure(name):
    ex = eq9_explorer()
    w, st = ex.widgets, ex.state
    before = {k: np.array(st[k], copy=True) for k in ("mean", "sd", "prior_sd", "S")}
    png, redraws = bytes(ex.image.value), st["n_redraws"]
    if name == "plain":
        w[name].value = not w[name].value
    else:
        lo, hi = ends(w[name])
        w[name].value = hi if w[name].value < np.sqrt(lo * hi) else lo
    assert st["n_redraws"] == redraws + 1
    assert bytes(ex.image.value) != png
    if name != "plain":
        assert st[name] == pytest.approx(w[name].value)
        assert any(not np.allclose(before[k], st[k]) for k in before)  # the model itself moved


def test_the_similarity_slider_moves_S_between_the_identity_and_all_ones():
    ex = eq9_explorer()
    w, st = ex.widgets, ex.state
    lo, hi = ends(w["similarity_lengthscale"])
    w["similarity_lengthscale"].value = lo
    assert st["S_offdiag_median"] < 0.01  # S: the identity but for equal score vectors
    _, scores, labels = toy_eq9()
    a, a2 = labels.index("A"), labels.index("A'")
    assert st["S"][a, a2] == pytest.approx(1.0)  # the same instruction stays coupled at any lengthscale
    w["similarity_lengthscale"].value = hi
    assert st["S_offdiag_median"] > 0.9


@pytest.mark.parametrize("moves", [{}, {"latent_lengthscale": 0.1}, {"latent_lengthscale": 1.0},
                                   {"similarity_lengthscale": 0.2, "noise": 0.1}])
def test_K_equals_S_on_the_data_up_to_jitter(moves):
    ex = eq9_explorer()
    for k, v in moves.items():
        ex.widgets[k].value = v
    K, S = ex.state["K"], ex.state["S"]
    assert np.abs(K - S).max() < 1e-6
    assert ex.state["K_err"] == pytest.approx(np.abs(K - S).max())
    assert not np.allclose(S, np.eye(len(S)))  # a real coupling, not the identity, is being compared


def test_prior_sd_is_sd_y_on_the_data_and_fades_far_away_while_the_plain_one_does_not():
    z, scores, _ = toy_eq9()
    ex = eq9_explorer(z, scores)
    st = ex.state
    t = np.linspace(-2, 2, 400)  # the explorer's grid for this data ([-1, 1] widened by half its width each side)
    at_data = np.interp(z, t, st["prior_sd"])
    assert np.allclose(at_data, st["sd_y"], rtol=0.02)  # k(z_i, z_i) = s S_ii = s, on y's scale sd(y)
    far = st["prior_sd"][[0, -1]]
    assert (far < 0.05 * st["sd_y"]).all()  # eq. 9 has rank m: no prior variance far from Z
    assert np.allclose(st["plain_sd"][[0, -1]], st["sd_y"], rtol=0.02)  # a stationary kernel keeps it
    assert st["sd_data_max"] < 0.1 * st["sd_y"]  # little noise: the posterior is sure at the data
    assert st["sd"].max() < 0.1 * st["sd_y"]  # ... and everywhere else (rank m: m numbers pin the whole function)


def test_bad_scores_are_refused():
    z, scores, _ = toy_eq9()
    with pytest.raises(ValueError, match="one row per soft prompt"):
        eq9_explorer(z, scores[:-1])
