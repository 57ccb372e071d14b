"""izkit.surrogate: the GP of a BO round from record-like eval lines (kernel choice, options from a config, NaN lines
left out, the agreement similarity's needs, prediction codes)."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from izkit.config import Config
from izkit.gp import GaussianProcess, mean_noise_variance
from izkit.kernels import InstructionCoupledKernel, Matern52, PredictionAgreement, ScoreMatern52
from izkit.surrogate import SurrogateOptions, finite_evals, fit_gp, prediction_codes

D, N = 3, 6  # soft-prompt dimension, dev examples


def make_evals(m: int = 10, seed: int = 0) -> list[dict]:
    """Eval lines as a run record writes them: z, per-example 0/1 scores, their mean, the predictions."""
    g = torch.Generator().manual_seed(seed)
    Z = torch.rand(m, D, generator=g, dtype=torch.float64) * 2 - 1  # (m, D)
    p = torch.sigmoid(3 * Z[:, :1] - 2 * Z[:, 1:2])  # (m, 1) each soft prompt's chance to be right
    hits = torch.rand(m, N, generator=g, dtype=torch.float64) < p  # (m, N)
    evals = []
    for i in range(m):
        scores = hits[i].double().tolist()
        preds = ["Right." if h else f"wrong {j % 2}" for j, h in enumerate(hits[i].tolist())]
        evals.append({"kind": "eval", "method": "instructzero", "round": i // 4, "index": i, "z": Z[i].tolist(),
                      "instruction": f"instruction {i}", "scores": scores, "mean": sum(scores) / N,
                      "predictions": preds})
    return evals


def test_coupled_by_default_and_plain_matern_for_the_ablation():
    evals = make_evals()
    gp = fit_gp(evals)
    assert isinstance(gp, GaussianProcess) and isinstance(gp.kernel_, InstructionCoupledKernel)
    assert isinstance(gp.kernel_.similarity, ScoreMatern52) and gp.kernel_.similarity.standardize is None
    assert torch.equal(gp.instr_train_, torch.tensor([e["scores"] for e in evals], dtype=torch.float64))
    assert torch.equal(gp.y_train_, torch.tensor([e["mean"] for e in evals], dtype=torch.float64))
    assert gp.config.input_bounds is None and gp.config.noise_var_y is None and not gp.kernel_.residual
    plain = fit_gp(evals, coupled=False)
    assert type(plain.kernel_) is Matern52 and plain.instr_train_ is None
    assert plain.latent_gp_ is None and gp.latent_gp_ is not None  # eq. 9 pins l to a plain GP's lengthscales


def test_the_seed_reaches_the_restarts():
    evals = make_evals(m=12)
    assert fit_gp(evals, seed=3).config.seed == 3
    assert torch.equal(fit_gp(evals, seed=3).theta_, fit_gp(evals, seed=3).theta_)


def test_options_from_a_config_dict_or_a_config():
    assert SurrogateOptions.from_config({}) == SurrogateOptions()  # an old record's header: the authors' defaults
    header = {"gp_inputs": "unit", "score_standardize": "column", "gp_noise": "known", "residual": True}
    opt = SurrogateOptions.from_config(header)
    assert opt == SurrogateOptions(inputs="unit", score_standardize="column", noise="known", residual=True)
    cfg = Config("antonyms", gp_inputs="unit", score_standardize="global", gp_noise="known", residual=True)
    assert SurrogateOptions.from_config(cfg) == SurrogateOptions("unit", "global", "known", True)
    assert SurrogateOptions.from_config(cfg.to_dict()) == SurrogateOptions.from_config(cfg)

    evals = make_evals()
    gp = fit_gp(evals, options=opt)
    assert gp.config.input_bounds == (-1.0, 1.0)
    assert gp.kernel_.residual and gp.kernel_.similarity.standardize == "column"
    H = torch.tensor([e["scores"] for e in evals], dtype=torch.float64)
    assert torch.allclose(torch.as_tensor(gp.config.noise_var_y), mean_noise_variance(H))  # each dev mean's variance
    assert not gp.fit_noise  # known noise only: nothing left to fit
    plain = fit_gp(evals, coupled=False, options=opt)
    assert plain.config.input_bounds == (-1.0, 1.0) and plain.config.noise_var_y is not None


def test_nan_lines_are_left_out_with_a_warning(caplog):
    evals = make_evals()
    evals[2]["mean"] = None  # a NaN mean is written to a record as null
    evals[5]["scores"][0] = math.nan
    with caplog.at_level(logging.WARNING, logger="izkit.surrogate"):
        kept = finite_evals(evals)
    assert [e["index"] for e in kept] == [i for i in range(10) if i not in (2, 5)]
    assert "2 evaluation(s)" in caplog.text and "index 2" in caplog.text and "index 5" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="izkit.surrogate"):
        gp = fit_gp(evals)
    assert len(gp.y_train_) == 8 and "left out of the GP" in caplog.text
    with caplog.at_level(logging.WARNING, logger="izkit.surrogate"):
        caplog.clear()
        assert finite_evals(make_evals()) == make_evals() and caplog.text == ""  # nothing to drop: no warning


def test_no_finite_line_left_is_an_error():
    evals = make_evals(m=3)
    for e in evals:
        e["mean"] = math.inf
    with pytest.raises(ValueError, match="nothing to fit"):
        finite_evals(evals)
    with pytest.raises(ValueError, match="every evaluation"):
        fit_gp(evals)


def test_agreement_similarity_uses_the_predictions_and_refuses_a_record_without_them():
    evals = make_evals()
    gp = fit_gp(evals, similarity="agreement")
    assert isinstance(gp.kernel_.similarity, PredictionAgreement)
    codes = prediction_codes([e["predictions"] for e in evals])
    assert torch.equal(gp.instr_train_, codes)
    for e in evals:
        e["predictions"] = [""] * N  # the loglik objective writes no answers
    with pytest.raises(ValueError, match="has none"):
        fit_gp(evals, similarity="agreement")
    assert isinstance(fit_gp(evals).kernel_.similarity, ScoreMatern52)  # the score vectors need no answers


def test_prediction_codes_are_equal_exactly_for_equal_normalised_answers():
    codes = prediction_codes([["Cat.", "big dog", "A-B"], ["cat", "Big  dog!", "a b"], ["mouse", "dog", "ab"]])
    assert codes.shape == (3, 3) and codes.dtype == torch.int64
    assert codes[0].tolist() == codes[1].tolist()  # the same answers once normalised
    assert codes[2, 0] != codes[0, 0] and codes[2, 1] != codes[0, 1] and codes[2, 2] != codes[0, 2]
    assert len(set(codes.flatten().tolist())) == 6  # one code per distinct normalised answer, shared across rows
