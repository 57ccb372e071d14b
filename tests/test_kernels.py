"""izkit.kernels: Matern-5/2, the instruction similarities, the coupled kernel (eq. 9) and the jittered Cholesky."""

from __future__ import annotations

import math

import pytest
import torch

from izkit.kernels import (
    DTYPE,
    InstructionCoupledKernel,
    Matern52,
    NotPSDError,
    PrecomputedSimilarity,
    PredictionAgreement,
    ScoreMatern52,
    matern52,
    robust_cholesky,
)

D, M, N = 4, 12, 8  # soft-prompt dimension, evaluated points, examples per score vector


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE) * 2 - 1


@pytest.fixture
def data():
    Z = rand(M, D, seed=1)  # (M, D)
    F = (rand(M, N, seed=2) > 0).to(DTYPE)  # (M, N) binary per-example scores
    P = (rand(M, N, seed=3) * 2).round().to(torch.long)  # (M, N) prediction codes in {-2 .. 2}
    return Z, F, P


def assert_psd(K: torch.Tensor, tol: float = 1e-9) -> None:
    assert torch.allclose(K, K.T, atol=1e-12), "not symmetric"
    eig = torch.linalg.eigvalsh(K)
    assert eig.min() >= -tol * max(1.0, float(eig.max())), f"min eigenvalue {float(eig.min()):.3e}"


def matern52_reference(X1, X2, ls):
    """Direct R&W eq. 4.17 with explicit differences, for comparison."""
    r = (((X1[:, None, :] - X2[None, :, :]) / ls) ** 2).sum(-1).sqrt()  # (n1, n2)
    return (1 + math.sqrt(5) * r + 5 / 3 * r**2) * torch.exp(-math.sqrt(5) * r)


# ------------------------------------------------------------------------------------------------------------ Matern


@pytest.mark.parametrize("ard", [True, False])
def test_matern_symmetric_psd_and_matches_formula(ard):
    k = Matern52(D, ard=ard)
    theta = rand(k.n_params, seed=4)  # log lengthscales and outputscale in [-1, 1]
    X = rand(30, D, seed=5)
    K = k(theta, X, X)  # (30, 30)
    assert_psd(K)
    ls = theta[: k.n_ls].exp()
    assert torch.allclose(K, theta[-1].exp() * matern52_reference(X, X, ls), atol=1e-12)
    assert torch.allclose(K.diagonal(), theta[-1].exp().expand(30))
    assert k.bounds().shape == (k.n_params, 2) and k.initial().shape == (k.n_params,)
    assert k.lengthscale_mask().tolist() == [True] * k.n_ls + [False]
    named = k.named_parts(theta)  # the pieces by public name: no S, no residual for a plain kernel
    assert torch.equal(named.lengthscale, ls) and torch.equal(named.outputscale, theta[-1].exp())
    assert named.S is None and named.similarity_lengthscale is None and named.residual_outputscale is None


def test_matern_gradcheck_in_inputs_and_lengthscales():
    X1 = rand(5, D, seed=6).requires_grad_(True)
    X2 = rand(4, D, seed=7)
    X2[0] = X1[0].detach()  # a coincident pair: r = 0, where sqrt is not differentiable
    ls = (rand(D, seed=8) * 0.3 + 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, l: matern52(a, X2, l), (X1, ls))


def test_matern_agrees_with_gpytorch():
    gpytorch = pytest.importorskip("gpytorch")
    X1, X2, ls = rand(7, D, seed=9), rand(5, D, seed=10), torch.tensor([0.3, 0.7, 1.1, 2.0], dtype=DTYPE)
    ref = gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=D).double()
    ref.lengthscale = ls
    with torch.no_grad():
        assert torch.allclose(matern52(X1, X2, ls), ref(X1, X2).to_dense(), rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------------------------------------- similarity


def test_prediction_agreement_is_eq8(data):
    _, _, P = data
    S = PredictionAgreement().check(P, M)  # (M, M)
    i, j = 2, 7
    assert float(S[i, j]) == pytest.approx(float((P[i] == P[j]).double().mean()))
    assert torch.allclose(S.diagonal(), torch.ones(M, dtype=DTYPE))
    assert_psd(S)
    # a custom per-example similarity, and the same similarity given as an (m, m, n) tensor
    near = PredictionAgreement(sim=lambda a, b: torch.exp(-(a - b).abs().to(DTYPE)))
    S2 = near.check(P, M)
    per_example = torch.exp(-(P[:, None, :] - P[None, :, :]).abs().to(DTYPE))  # (M, M, N)
    assert torch.allclose(S2, PredictionAgreement().check(per_example, M))
    assert float(S2[i, j]) > float(S[i, j]) - 1e-12  # closer-than-equal counts partly


def test_similarity_shape_errors(data):
    Z, F, P = data
    with pytest.raises(ValueError, match=r"score vectors of shape \(12, 8\)"):
        ScoreMatern52(N).check(F[:, :3], M)
    with pytest.raises(ValueError, match="S of shape"):
        PrecomputedSimilarity().check(F, M)
    with pytest.raises(ValueError, match="symmetric"):
        PrecomputedSimilarity().check(rand(M, M, seed=11), M)


# ---------------------------------------------------------------------------------------------- coupled kernel eq. 9


def coupled(similarity, Z, instr, latent_ls=0.8):
    k = InstructionCoupledKernel(D, similarity, latent="fixed", latent_lengthscale=latent_ls)
    k.set_train(Z, instr)
    return k


@pytest.mark.parametrize("kind", ["scores", "agreement", "precomputed"])
def test_coupled_kernel_returns_S_on_training_points(data, kind):
    Z, F, P = data
    if kind == "scores":
        sim, instr = ScoreMatern52(N), F
    elif kind == "agreement":
        sim, instr = PredictionAgreement(), P
    else:
        sim, instr = PrecomputedSimilarity(), PredictionAgreement().check(P, M)
    k = coupled(sim, Z, instr)
    theta = k.initial()
    theta[-1] = math.log(2.5)  # outputscale s
    if sim.n_params:
        theta[k._sl] = math.log(0.9)
    parts = k.parts(theta)
    S = parts["S"]  # (M, M)
    K = k(theta, Z, Z)  # eq. 9 evaluated literally through L's Cholesky factor
    assert torch.allclose(K, 2.5 * S, atol=1e-8)
    assert torch.allclose(k.gram_train(parts), 2.5 * S)
    X = rand(6, D, seed=12)
    assert torch.allclose(k.cross_train(parts, X), k(theta, X, Z), atol=1e-8)


def test_coupled_training_block_ignores_latent_lengthscales(data):
    Z, F, _ = data
    Ks = []
    for ls in (0.3, 1.0, 2.0):
        k = coupled(ScoreMatern52(N), Z, F, latent_ls=ls)
        Ks.append(k(k.initial(), Z, Z))
    assert torch.allclose(Ks[0], Ks[1], atol=1e-7) and torch.allclose(Ks[0], Ks[2], atol=1e-7)
    X = rand(5, D, seed=13)  # ... but off the evaluated points they matter
    ks = [coupled(ScoreMatern52(N), Z, F, latent_ls=ls) for ls in (0.3, 2.0)]
    off = [k(k.initial(), X, X) for k in ks]
    assert not torch.allclose(off[0], off[1], atol=1e-3)


def test_coupled_kernel_symmetric_psd_on_random_inputs(data):
    Z, F, _ = data
    k = coupled(ScoreMatern52(N), Z, F)
    X = torch.cat([rand(20, D, seed=14), Z[:5]])  # new points and some evaluated ones
    theta = k.initial()
    K = k(theta, X, X)
    assert_psd(K)
    assert torch.allclose(K.diagonal(), k.diag(k.parts(theta), X), atol=1e-10)


def test_coupled_kernel_gradcheck_in_inputs(data):
    Z, F, _ = data
    k = coupled(ScoreMatern52(N), Z, F)
    parts = k.parts(k.initial())
    X = rand(3, D, seed=15).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: k.cross_train(parts, x), (X,))
    assert torch.autograd.gradcheck(lambda x: k.diag(parts, x), (X,))


def test_coupled_bounds_and_latent_modes(data):
    k = InstructionCoupledKernel(D, ScoreMatern52(N), latent="prior")
    assert k.n_params == D + N + 1
    b = k.bounds()
    assert b.shape == (D + N + 1, 2) and bool((b[:, 0] < b[:, 1]).all())
    assert k.lengthscale_mask().tolist() == [True] * (D + N) + [False]
    k.fix_latent(torch.tensor(0.5))
    b = k.bounds()
    assert torch.allclose(b[:D, 0], b[:D, 1]) and torch.allclose(b[:D, 0], torch.full((D,), math.log(0.5), dtype=DTYPE))
    with pytest.raises(ValueError, match="latent"):
        InstructionCoupledKernel(D, PredictionAgreement(), latent="whatever")
    with pytest.raises(ValueError, match="latent_lengthscale"):
        InstructionCoupledKernel(D, PredictionAgreement(), latent="fixed")


def test_coupled_kernel_with_residual_term(data):
    """k = s eq. 9 + s_r l(z, z'): every entry point includes the residual, and it is the prior variance far away."""
    Z, F, _ = data
    k = InstructionCoupledKernel(D, ScoreMatern52(N), latent="fixed", latent_lengthscale=0.8, residual=True)
    k.set_train(Z, F)
    assert k.n_params == D + N + 2 and k.bounds().shape == (D + N + 2, 2) and k.initial().shape == (D + N + 2,)
    assert k.lengthscale_mask().tolist() == [True] * (D + N) + [False, False]
    theta = k.initial()
    theta[-2], theta[-1] = math.log(2.5), math.log(0.3)  # s, s_r
    parts = k.parts(theta)
    L = matern52(Z, Z, torch.full((D,), 0.8, dtype=DTYPE))  # (M, M)
    assert torch.allclose(k.gram_train(parts), 2.5 * parts["S"] + 0.3 * L)
    assert torch.allclose(k(theta, Z, Z), k.gram_train(parts), atol=1e-8)  # the round trip through L agrees
    X = torch.cat([rand(6, D, seed=17), torch.full((1, D), 50.0, dtype=DTYPE)])  # the last one far from Z
    assert torch.allclose(k.cross_train(parts, X), k(theta, X, Z), atol=1e-8)
    KX = k(theta, X, X)
    assert_psd(KX)
    assert torch.allclose(k.diag(parts, X), KX.diagonal(), atol=1e-10)
    assert float(k.diag(parts, X)[-1]) == pytest.approx(0.3)  # eq. 9 gives 0 there, the residual s_r
    named = k.named_parts(theta)  # the pieces by public name
    assert float(named.residual_outputscale) == pytest.approx(0.3) and float(named.outputscale) == pytest.approx(2.5)
    assert torch.equal(named.S, parts["S"]) and torch.allclose(named.lengthscale, L.new_full((D,), 0.8))
    assert torch.equal(named.similarity_lengthscale, theta[D:D + N].exp())
    plain = coupled(ScoreMatern52(N), Z, F)  # residual off: the same theta without its last entry
    assert torch.allclose(plain(theta[:-1], X, Z), k(theta, X, Z) - 0.3 * matern52(X, Z, L.new_full((D,), 0.8)))


@pytest.mark.parametrize("mode", ["column", "global"])
def test_score_standardisation_makes_S_invariant_to_rescaled_scores(data, mode):
    """Scores in other units (e.g. log-likelihoods, nats vs bits) give the same S once standardised."""
    _, F, _ = data
    G = rand(M, N, seed=18) * 3.0  # (M, N) real-valued scores, sd about 1.7
    a = (rand(N, seed=19) + 2.0) if mode == "column" else torch.tensor(4.0, dtype=DTYPE)  # per-column or one scale
    b = rand(N, seed=20) * 5.0 if mode == "column" else torch.tensor(-3.0, dtype=DTYPE)
    sim = ScoreMatern52(N, standardize=mode)
    theta = torch.full((N,), math.log(2.0), dtype=DTYPE)
    S1, S2 = sim(theta, sim.check(G, M)), sim(theta, sim.check(G * a + b, M))
    assert torch.allclose(S1, S2, atol=1e-12)
    Fs = sim.check(G, M)
    if mode == "column":
        assert torch.allclose(Fs.mean(0), torch.zeros(N, dtype=DTYPE), atol=1e-12)
        assert torch.allclose(Fs.std(0), torch.ones(N, dtype=DTYPE))
    else:
        assert abs(float(Fs.mean())) < 1e-12 and float(Fs.std()) == pytest.approx(1.0)
    raw = ScoreMatern52(N)
    assert not torch.allclose(raw(theta, raw.check(G, M)), raw(theta, raw.check(G * a + b, M)), atol=1e-3)
    const = torch.cat([G[:, :1], torch.full((M, N - 1), 0.5, dtype=DTYPE)], 1)  # constant columns and one row
    assert bool(torch.isfinite(sim.check(const, M)).all()) and bool(torch.isfinite(sim.check(G[:1], 1)).all())
    with pytest.raises(ValueError, match="standardize"):
        ScoreMatern52(N, standardize="rows")


# ------------------------------------------------------------------------------------------------- robust Cholesky


def test_robust_cholesky_adds_jitter_only_when_needed():
    A = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=DTYPE)
    assert torch.allclose(robust_cholesky(A), torch.linalg.cholesky(A))  # no jitter on a good matrix
    X = rand(5, D, seed=16)
    singular = matern52(torch.cat([X, X]), torch.cat([X, X]), torch.ones(D, dtype=DTYPE))  # duplicate rows: rank 5
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.cholesky(singular)
    C = robust_cholesky(singular)
    assert torch.allclose(C @ C.T, singular, atol=1e-6)


def test_robust_cholesky_clear_error_when_impossible():
    indefinite = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=DTYPE)  # eigenvalues 3 and -1
    with pytest.raises(NotPSDError, match="not positive definite.*similarity S.*noise"):
        robust_cholesky(indefinite, what="test")
    with pytest.raises(NotPSDError, match="NaN/inf"):
        robust_cholesky(torch.full((2, 2), float("nan"), dtype=DTYPE))


@pytest.mark.parametrize("residual", [False, True])
def test_cross_train_diag_is_eq9_the_long_way(data, residual):
    """What GaussianProcess.predict uses, k(X, Z) and k(x, x) from one w(X): the same as eq. 9 through L, each kernel."""
    Z, F, _ = data
    k = InstructionCoupledKernel(D, ScoreMatern52(N), latent="fixed", latent_lengthscale=0.8, residual=residual)
    k.set_train(Z, F)
    plain = Matern52(D)
    plain.set_train(Z)
    X = torch.cat([rand(7, D, seed=18), Z[:2]])  # new points and evaluated ones
    for kern in (k, plain):
        parts = kern.parts(kern.initial())
        K, kxx = kern.cross_train_diag(parts, X)
        assert K.shape == (len(X), M) and kxx.shape == (len(X),)
        assert torch.allclose(K, kern.cross(parts, X, Z), atol=1e-8)
        assert torch.allclose(kxx, kern.cross(parts, X, X).diagonal(), atol=1e-8)
