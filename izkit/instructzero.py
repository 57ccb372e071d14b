"""The InstructZero loop (paper Algorithm 1, DESIGN.md steps 1-6) and its baselines.

    Z_0 <- 25 Sobol points in [-1, 1]^d                               (initial design)
    for round r = 0 .. 5:
        v_i = g([A z_i ; exemplars])          for z_i in Z_r          (generator.py: soft prompt -> instruction)
        h_i = H(v_i) on the dev set, per example                      (blackbox.py: zero-shot scores)
        fit a GP with the instruction-coupled kernel (eq. 9) on all (z, h) so far      (gp.py, kernels.py)
        Z_{r+1} <- top 25 maximisers of expected improvement                           (acquisition.py)
    report the best instruction on dev, scored on the held-out test split

Baselines with the same models, budget and seed (paper section 4): Uniform (random soft prompts, best on dev kept),
APE-style (instructions sampled from the generator with no soft prompt, best on dev kept), Manual (one greedy
instruction from the exemplars alone), and the same BO loop with a plain Matern kernel (no coupling).

Everything is written to a run record as it happens (records.py): a killed run resumes without asking the black box
anything twice, and ends where an uninterrupted run with the same seed ends.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from izkit import __version__
from izkit.records import RECORD_NAME, RecordError, RunRecord, check_same_config
from izkit.tasks import Splits, Task, load_task

logger = logging.getLogger(__name__)

RESUME_MAY_CHANGE = {"request_timeout", "max_retries", "device"}  # how to reach the models, not what the run is
METHODS = ("instructzero", "matern", "uniform", "ape", "manual")  # the order they run in
BO_METHODS = ("instructzero", "matern")


@dataclass
class Config:
    """One InstructZero run. The defaults are the paper's; :meth:`quick` is small enough for tests and notebooks."""

    task: str  # a task name in data/ (or root), or the path of its induce file
    seed: int = 0  # seeds the splits, the projection A, the Sobol design, the GP restarts and the baselines
    d: int = 10  # soft prompt dimension (paper: 10)
    n_tokens: int = 5  # soft tokens N fed to the generator (paper: 5; 3 and 10 tried)
    projection: str = "uniform"  # entries of A: "uniform" in [-1, 1] (paper) or "normal" scaled to the embeddings
    kappa: int = 5  # exemplars the generator reads (paper: 5)
    n_dev: int = 20  # dev examples scored per instruction (paper: 20)
    n_test: int = 100  # held-out examples for the final report (paper: at most 100)
    n_init: int = 25  # initial Sobol soft prompts (paper: 25)
    n_rounds: int = 5  # BO rounds after the initial design (paper: 5)
    batch_size: int = 25  # soft prompts per round, top-q by EI (paper: 25)
    max_evals: int | None = None  # cap on evaluations per method (--budget); None: n_init + n_rounds * batch_size
    objective: str | None = None  # "accuracy" or "loglik"; None: loglik for a local black box, accuracy for an API
    similarity: str = "matern"  # S in eq. 9: "matern" on score vectors (authors' code) or "agreement" (eq. 8)
    baselines: tuple[str, ...] = ("manual",)  # any of "uniform", "ape", "manual", "matern"
    generator: str | None = None  # the open model that writes instructions; None: the embedded Gemma 3 270M
    blackbox: str = "local"  # "local" (a model in this process) or "openai" (any OpenAI-compatible endpoint)
    blackbox_model: str | None = None  # local: a model path/id (None: the generator's); openai: the model name
    base_url: str | None = None  # the OpenAI-compatible endpoint (None: OpenAI itself)
    api: str = "chat"  # "chat" or "completions" for an OpenAI-compatible black box
    request_timeout: float = 60.0  # seconds per request to an OpenAI-compatible black box
    max_retries: int = 3  # our retries of a failed request (429, 5xx, timeout, dropped), each after the SDK's own 2
    device: str | None = None  # None: CUDA when available, else CPU
    root: str | None = None  # a folder of tasks instead of data/
    ape_temperature: float = 0.9  # sampling temperature of the APE-style baseline (top-p 0.95)
    acq_restarts: int = 64  # L-BFGS-B starts for the acquisition optimisation
    acq_raw_samples: int = 1024  # Sobol points screened to pick those starts
    screen: int = 2  # EI candidates generated per slot; the batch keeps the best whose instruction is new. 1: the
    #                  paper's plain top-q by EI, which re-proposes soft prompts that write already-scored instructions

    @property
    def budget(self) -> int:
        """Black-box evaluations per method: the initial design plus every round (paper: 25 + 5 x 25 = 150)."""
        full = self.n_init + self.n_rounds * self.batch_size
        return full if self.max_evals is None else min(full, self.max_evals)

    @property
    def round_sizes(self) -> list[int]:
        """Evaluations in each round: the initial design, then full batches; the last one is cut to the budget."""
        sizes, left = [], self.budget
        for size in [self.n_init] + [self.batch_size] * self.n_rounds:
            if left <= 0:
                break
            sizes.append(min(size, left))
            left -= sizes[-1]
        return sizes

    @classmethod
    def quick(cls, task: str, **overrides: Any) -> Config:
        """A preset for tests, notebooks and a first look: 4 + 2 x 4 evaluations on 5 dev examples."""
        base = dict(n_init=4, n_rounds=2, batch_size=4, n_dev=5, n_test=10, acq_restarts=8, acq_raw_samples=128)
        return cls(task=task, **{**base, **overrides})

    def with_budget(self, budget: int) -> Config:
        """Keep the initial design and the batch size; add rounds until the budget is met (the last may be smaller)."""
        if budget < 1:
            raise ValueError(f"--budget must be at least 1, got {budget}")
        n_init = min(self.n_init, budget)
        n_rounds = math.ceil((budget - n_init) / self.batch_size)
        return dataclasses.replace(self, n_init=n_init, n_rounds=n_rounds, max_evals=budget)

    def resolved_objective(self) -> str:
        obj = self.objective or ("loglik" if self.blackbox == "local" else "accuracy")
        if obj not in ("accuracy", "loglik"):
            raise ValueError(f"objective must be 'accuracy' or 'loglik', got {obj!r}")
        return obj

    def validate(self) -> None:
        if self.blackbox not in ("local", "openai"):
            raise ValueError(f"blackbox must be 'local' or 'openai', got {self.blackbox!r}")
        if self.blackbox == "openai" and not self.blackbox_model:
            raise ValueError("a black box 'openai' needs --blackbox-model (the model name the endpoint serves)")
        bad = [b for b in self.baselines if b not in METHODS[1:]]
        if bad:
            raise ValueError(f"unknown baseline {bad[0]!r}; choose from {', '.join(METHODS[1:])}")
        if self.similarity not in ("matern", "agreement"):
            raise ValueError(f"similarity must be 'matern' or 'agreement', got {self.similarity!r}")
        if self.projection not in ("uniform", "normal"):
            raise ValueError(f"projection must be 'uniform' or 'normal', got {self.projection!r}")
        for name in ("d", "n_tokens", "kappa", "n_dev", "n_test", "n_init", "batch_size", "screen"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.request_timeout > 0 or self.max_retries < 0:
            raise ValueError(f"--timeout must be > 0 and --retries >= 0, got {self.request_timeout} and "
                             f"{self.max_retries}")
        if self.similarity == "agreement" and self.resolved_objective() == "loglik":
            raise ValueError("similarity 'agreement' (eq. 8) compares the instructions' answers, which the loglik "
                             "objective does not produce; use --objective accuracy or similarity 'matern'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """The inverse of :meth:`to_dict` after a JSON round trip (a record's header), where tuples come back as lists."""
        return cls(**{k: tuple(v) if k == "baselines" else v for k, v in d.items()})


@dataclass
class MethodResult:
    """What one method found: its best instruction on dev and that instruction's test scores."""

    method: str
    best_instruction: str
    best_dev: float  # the optimised objective's mean on dev
    n_evals: int
    test: dict[str, float] = field(default_factory=dict)  # objective -> mean on the test split


@dataclass
class RunResult:
    """A finished run: per method, the best instruction and its scores; where the record is."""

    config: Config
    objective: str  # the objective optimised on dev
    methods: dict[str, MethodResult]
    record_path: Path
    seconds: float  # wall time of the call that returned this result (a resumed run: the resumed part only)
    work_seconds: float = 0.0  # the run's recorded work (proposals, evaluations, test scoring), over every session

    def summary(self) -> str:
        """A plain-text table: method, dev score, test scores, best instruction."""
        objs = sorted({o for m in self.methods.values() for o in m.test}, key=lambda o: o != self.objective)
        head = f"{'method':<13} {'dev ' + self.objective:>13} " + " ".join(f"{'test ' + o:>13}" for o in objs)
        lines = [f"task {self.config.task}, seed {self.config.seed}, optimised: {self.objective} on dev", head]
        for m in self.methods.values():
            tests = " ".join(f"{m.test.get(o, float('nan')):>13.3f}" for o in objs)
            lines.append(f"{m.method:<13} {m.best_dev:>13.3f} {tests}  {m.best_instruction!r}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------------
# The parts that touch models (kept here so the loop below reads as the algorithm).


class _Models:
    """The generator and the black box of a run, built once from the config."""

    def __init__(self, cfg: Config, splits: Splits, task: Task, objective: str):
        from izkit.blackbox import LocalBlackBox, OpenAIBlackBox
        from izkit.generator import RandomProjection, SoftPromptGenerator
        from izkit.models import load_causal_lm

        self.model, self.tokenizer = load_causal_lm(cfg.generator, device=cfg.device)
        if cfg.projection == "normal":
            projection = RandomProjection.for_model(self.model, d=cfg.d, n_tokens=cfg.n_tokens, kind="normal",
                                                    seed=cfg.seed)
        else:
            projection = RandomProjection(cfg.d, cfg.n_tokens, self.model.config.hidden_size, kind="uniform",
                                          seed=cfg.seed)
        self.generator = SoftPromptGenerator(self.model, self.tokenizer, projection)
        if cfg.blackbox == "local":
            bb_model, bb_tok = (
                (self.model, self.tokenizer) if cfg.blackbox_model in (None, cfg.generator)
                else load_causal_lm(cfg.blackbox_model, device=cfg.device)
            )
            self.blackbox = LocalBlackBox(bb_model, bb_tok, objective=objective)
        else:
            self.blackbox = OpenAIBlackBox(cfg.blackbox_model, base_url=cfg.base_url, api=cfg.api,
                                           objective=objective, timeout=cfg.request_timeout,
                                           max_retries=cfg.max_retries)
        self.exemplars = splits.exemplars
        self.metric = task.metric

    def ids(self) -> dict[str, Any]:
        return {"generator": dataclasses.asdict(self.model.izkit_info), "blackbox": self.blackbox.model_id}


# ------------------------------------------------------------------------------------------------------------------
# The loop.


class Run:
    """One run: all methods of a config on one task, recorded to ``out/record.jsonl``.

    ``Run(cfg, out).execute()`` starts or resumes (a record already in ``out`` is continued, after checking that it was
    made with the same config) and returns a :class:`RunResult`.
    """

    def __init__(self, cfg: Config, out: str | os.PathLike, resume: bool = False, progress: bool = True,
                 models: Any = None):
        cfg.validate()
        self.cfg = cfg
        self.out = Path(out)
        self.objective = cfg.resolved_objective()
        self.progress = progress
        self.task = load_task(cfg.task, root=cfg.root)
        self.splits = self.task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
        path = self.out / RECORD_NAME
        _check_writable(self.out)
        if resume:
            self.record = RunRecord.open(path)
            check_same_config(path, self.record.header.get("config", {}), cfg.to_dict(), ignore=RESUME_MAY_CHANGE)
        elif path.exists() and path.stat().st_size > 0:  # an empty record (killed before the header) starts anew
            raise RecordError(f"{path}: a record already exists; resume it with --resume {self.out}")
        else:
            self.record = None  # created once the models are loaded, so the header names them
        self.models = models  # built on first use; tests may pass their own (generator, blackbox, exemplars, ...)

    # -- steps ------------------------------------------------------------------------------------------------------

    def _load(self) -> _Models:
        if self.models is None:
            self.models = _Models(self.cfg, self.splits, self.task, self.objective)
        if self.record is None:
            self.record = RunRecord.create(self.out / RECORD_NAME, {
                    "izkit_version": __version__,
                    "config": self.cfg.to_dict(),
                    "objective": self.objective,
                    "metric": self.task.metric,
                    "task_files": [str(self.task.induce_path), str(self.task.execute_path)],
                    "models": self.models.ids(),
                "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            })
        return self.models

    def _propose(self, method: str, rnd: int, make: Any) -> dict[str, Any]:
        """The batch of a (method, round): from the record if it was made before, else made now and recorded."""
        line = self.record.find("proposal", method=method, round=rnd)
        if line is None:
            t = time.perf_counter()
            z, instructions, *extra = make()  # extra: an optional dict of facts to keep on the line
            line = {"kind": "proposal", "method": method, "round": rnd, "z": z, "instructions": instructions,
                    "seconds": time.perf_counter() - t, **(extra[0] if extra else {})}
            self.record.append(line)
        return line

    def _score(self, method: str, rnd: int, proposal: dict[str, Any], bar: Any) -> None:
        """Score the proposal's instructions that the record does not hold yet; one eval line each."""
        done = {e["index"] for e in self.record.evals(method) if e["round"] == rnd}
        todo = [i for i in range(len(proposal["instructions"])) if i not in done]
        bar.update(len(done))
        if not todo:
            return
        m = self._load()
        for i in todo:  # one instruction per call: the dev examples form the batch, so results never depend on
            t = time.perf_counter()  # which other instructions were scored alongside (a resumed run matches)
            res = m.blackbox.score([proposal["instructions"][i]], self.splits.dev, metric=m.metric,
                                   objective=self.objective)
            z = proposal["z"][i] if proposal["z"] is not None else None
            self.record.append({
                "kind": "eval", "method": method, "round": rnd, "index": i, "z": z,
                "instruction": proposal["instructions"][i], "objective": res.objective,
                "scores": np.asarray(res.scores[0], dtype=float), "predictions": list(res.predictions[0]),
                "mean": float(res.means[0]), "seconds": time.perf_counter() - t,
                "cache_hit": bool(res.usage.cache_hits and res.usage.requests == 0),
            })
            bar.update(1)

    def _bo_method(self, method: str) -> None:
        cfg = self.cfg
        bar = _bar(total=cfg.budget, desc=method, disable=not self.progress)
        for rnd, size in enumerate(cfg.round_sizes):
            def make(rnd: int = rnd, size: int = size) -> tuple[Any, ...]:
                m = self._load()
                if rnd == 0:
                    Z = sobol_design(size, cfg.d, cfg.seed)  # (n_init, d)
                    return Z.tolist(), m.generator.generate(Z, m.exemplars)
                Z = self._next_batch(method, rnd, size * cfg.screen)  # (screen q, d) best EI first
                seen = {e["instruction"] for e in self.record.evals(method)}
                instructions = m.generator.generate(Z, m.exemplars)
                keep = screen_new_instructions(instructions, seen, size)
                n_new = len({instructions[i] for i in keep} - seen)
                return Z[keep].tolist(), [instructions[i] for i in keep], {"screened": len(Z), "new": n_new}
            self._score(method, rnd, self._propose(method, rnd, make), bar)
        bar.close()

    def _next_batch(self, method: str, rnd: int, q: int) -> torch.Tensor:
        """Fit the GP on every evaluation of ``method`` so far and return the top-q EI maximisers (q, d)."""
        gp = fit_gp(self.record.evals(method), coupled=method == "instructzero", similarity=self.cfg.similarity,
                    seed=self.cfg.seed * 1000 + rnd)
        from izkit.acquisition import optimize_acquisition

        bounds = torch.stack([-torch.ones(self.cfg.d), torch.ones(self.cfg.d)]).double()  # (2, d): [-1, 1]^d
        Z, acq = optimize_acquisition(gp, bounds, q=q, n_starts=self.cfg.acq_restarts,
                                      raw_samples=self.cfg.acq_raw_samples, seed=self.cfg.seed * 1000 + rnd)
        if self.record.find("gp", method=method, round=rnd) is None:  # a resumed proposal fits the same GP again
            self.record.append({"kind": "gp", "method": method, "round": rnd,
                                "log_marginal_likelihood": gp.log_marginal_likelihood,
                                "hyperparameters": {k: np.asarray(v).tolist() for k, v in gp.hyperparameters().items()},
                                "acquisition": acq})
        return Z  # (q, d)

    def _uniform(self) -> None:
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed + 7919)
        Z_all = torch.rand(cfg.budget, cfg.d, generator=gen, dtype=torch.float64) * 2 - 1  # (budget, d)
        bar = _bar(total=cfg.budget, desc="uniform", disable=not self.progress)
        start = 0
        for rnd, size in enumerate(cfg.round_sizes):
            Z = Z_all[start:start + size]  # (size, d)
            start += size
            prop = self._propose("uniform", rnd,
                                 lambda Z=Z: (Z.tolist(), self._load().generator.generate(Z, self._load().exemplars)))
            self._score("uniform", rnd, prop, bar)
        bar.close()

    def _ape(self) -> None:
        cfg = self.cfg
        bar = _bar(total=cfg.budget, desc="ape", disable=not self.progress)
        for rnd, size in enumerate(cfg.round_sizes):
            def make(rnd: int = rnd, size: int = size) -> tuple[None, list[str]]:
                m = self._load()
                from izkit.generator import Sampling

                sampling = Sampling(temperature=cfg.ape_temperature, seed=cfg.seed * 1000 + rnd)
                return None, m.generator.generate_plain(m.exemplars, n=size, sampling=sampling)
            self._score("ape", rnd, self._propose("ape", rnd, make), bar)
        bar.close()

    def _manual(self) -> None:
        bar = _bar(total=1, desc="manual", disable=not self.progress)
        prop = self._propose("manual", 0, lambda: (None, self._load().generator.generate_plain(self._load().exemplars,
                                                                                                 n=1)))
        self._score("manual", 0, prop, bar)
        bar.close()

    def _test(self, method: str) -> MethodResult:
        evals = self.record.evals(method)
        means = np.array([np.nan if e["mean"] is None else e["mean"] for e in evals])  # (n,)
        b = int(np.nanargmax(means)) if np.isfinite(means).any() else 0
        best = evals[b]
        result = MethodResult(method, best["instruction"], float(means[b]), len(evals))
        objectives = [self.objective] + (["accuracy" if self.objective == "loglik" else "loglik"]
                                         if self.cfg.blackbox == "local" else [])
        for obj in objectives:
            line = self.record.find("test", method=method, objective=obj)
            if line is None or line["instruction"] != best["instruction"]:
                m = self._load()
                t = time.perf_counter()
                res = m.blackbox.score([best["instruction"]], self.splits.test, metric=m.metric, objective=obj)
                line = {"kind": "test", "method": method, "objective": obj, "instruction": best["instruction"],
                        "scores": np.asarray(res.scores[0], dtype=float), "predictions": list(res.predictions[0]),
                        "mean": float(res.means[0]), "seconds": time.perf_counter() - t}
                self.record.append(line)
            result.test[obj] = line["mean"]
        return result

    def execute(self) -> RunResult:
        """Run (or finish) every method, then score each method's best instruction on the test split."""
        t0 = time.perf_counter()
        if self.record is None:
            self._load()  # a new run: load the models and write the header before anything else
        steps = {"instructzero": lambda: self._bo_method("instructzero"), "matern": lambda: self._bo_method("matern"),
                 "uniform": self._uniform, "ape": self._ape, "manual": self._manual}
        methods = ["instructzero"] + [m for m in METHODS[1:] if m in self.cfg.baselines]
        for method in methods:
            steps[method]()
        results = {m: self._test(m) for m in methods}
        if not self.record.done:
            self.record.append({"kind": "done", "seconds": time.perf_counter() - t0})
        return RunResult(self.cfg, self.objective, results, self.record.path, time.perf_counter() - t0,
                         work_seconds(self.record))


def work_seconds(record: RunRecord) -> float:
    """The time a run's recorded work took, summed over every session that added to it (model loading excluded)."""
    return sum(line.get("seconds", 0.0) for kind in ("proposal", "eval", "test") for line in record.of_kind(kind))


def screen_new_instructions(instructions: list[str], seen: set[str], q: int) -> list[int]:
    """Which q of the candidates (best EI first) to evaluate: the best whose instruction is new, in EI order.

    An instruction already scored (or written twice among the candidates) would spend a black-box evaluation to learn
    nothing: the soft prompt to instruction map is many-to-one, and with the coupled kernel's tiny posterior variance
    plain top-q EI fills most of a batch with soft prompts around the incumbent that write its instruction again
    (150 evaluations gave 34 distinct instructions on antonyms). When fewer than q candidates are new, the batch is
    filled with the best of the rest (scored from the cache). Returns q candidate indices (fewer if there are fewer
    candidates), in EI order.
    """
    new, rest, taken = [], [], set(seen)
    for i, text in enumerate(instructions):
        if text not in taken:
            new.append(i)
            taken.add(text)
        else:
            rest.append(i)
    return sorted(new[:q] + rest[: max(q - len(new), 0)])


def prediction_codes(predictions: list[list[str]]) -> torch.Tensor:
    """Map normalised predictions to integer codes (m, n), per example, for the agreement similarity (eq. 8)."""
    from izkit.metrics import normalise

    table: dict[str, int] = {}
    return torch.tensor([[table.setdefault(normalise(p), len(table)) for p in row] for row in predictions])


def fit_gp(evals: list[dict[str, Any]], coupled: bool = True, similarity: str = "matern", seed: int = 0) -> Any:
    """The GP of a BO round, from record lines: the instruction-coupled kernel (eq. 9) or a plain Matern-5/2.

    similarity "matern" puts a Matern-5/2 kernel on the per-example score vectors (the authors' code); "agreement"
    uses the expected agreement of the instructions' predictions (eq. 8), which needs the accuracy objective.
    """
    from izkit.gp import GaussianProcess, GPConfig
    from izkit.kernels import InstructionCoupledKernel, Matern52, PredictionAgreement, ScoreMatern52

    evals = _finite(evals)
    Z = torch.tensor([e["z"] for e in evals], dtype=torch.float64)  # (m, d)
    y = torch.tensor([e["mean"] for e in evals], dtype=torch.float64)  # (m,)
    d = Z.shape[1]
    if not coupled:
        return GaussianProcess(Matern52(d), config=GPConfig(seed=seed)).fit(Z, y)
    if similarity == "agreement":
        preds = [e["predictions"] for e in evals]
        if all(p == "" for row in preds for p in row):
            raise ValueError("similarity 'agreement' (eq. 8) compares predictions, and this record has none "
                             "(the loglik objective makes no answers); use objective 'accuracy' or similarity 'matern'")
        kernel, instr = InstructionCoupledKernel(d, PredictionAgreement()), prediction_codes(preds)
    else:
        H = torch.tensor([e["scores"] for e in evals], dtype=torch.float64)  # (m, n_dev) per-example scores
        kernel, instr = InstructionCoupledKernel(d, ScoreMatern52(H.shape[1])), H
    return GaussianProcess(kernel, config=GPConfig(seed=seed)).fit(Z, y, instr)


def _finite(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluations whose mean and per-example scores are all finite (a NaN is written to a record as null).

    The others are left out of the GP with a warning naming them; none left is a ValueError.
    """
    def ok(e: dict[str, Any]) -> bool:
        vals = [e["mean"], *e["scores"]]
        return all(v is not None and math.isfinite(v) for v in vals)

    bad = [e for e in evals if not ok(e)]
    if bad:
        names = ", ".join(f"({e['method']}, round {e['round']}, index {e['index']})" for e in bad[:5])
        if len(bad) == len(evals):
            raise ValueError(f"every evaluation has a NaN/inf score (e.g. {names}); the GP has nothing to fit")
        logger.warning("%d evaluation(s) with a NaN/inf score left out of the GP: %s", len(bad), names)
    return [e for e in evals if ok(e)]


def sobol_design(n: int, d: int, seed: int) -> torch.Tensor:
    """``n`` scrambled Sobol points in [-1, 1]^d, seeded: the initial design (paper: 25 points). Returns (n, d)."""
    engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
    return engine.draw(n, dtype=torch.float64) * 2 - 1


def _bar(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(unit="eval", leave=True, **kwargs)


def _check_writable(out: Path) -> None:
    """Fail at the start, not after minutes of work, when the output folder cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".izkit-write-test"
        with open(probe, "wb") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as err:
        with contextlib.suppress(OSError):
            (out / ".izkit-write-test").unlink(missing_ok=True)
        raise OSError(f"cannot write to the output folder {out}: {err.strerror or err}") from None


def run(cfg: Config, out: str | os.PathLike, resume: bool = False, progress: bool = True) -> RunResult:
    """Run InstructZero (and the config's baselines) on one task; the record and results go to ``out``."""
    return Run(cfg, out, resume=resume, progress=progress).execute()


# ------------------------------------------------------------------------------------------------------------------
# Replay: everything a record holds, with no model loaded (for class, and for the notebooks).


@dataclass
class Replay:
    """A finished (or interrupted) run read back from its record."""

    record: RunRecord

    @property
    def config(self) -> dict[str, Any]:
        return self.record.header["config"]

    @property
    def objective(self) -> str:
        return self.record.header["objective"]

    def evals(self, method: str | None = None) -> list[dict[str, Any]]:
        return self.record.evals(method)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(e["method"] for e in self.record.evals()))

    def best(self, method: str = "instructzero") -> dict[str, Any]:
        """The eval line of the method's best instruction on dev."""
        evals = [e for e in self.evals(method) if e["mean"] is not None]
        return max(evals, key=lambda e: e["mean"])

    def test_scores(self, method: str = "instructzero") -> dict[str, float]:
        return {t["objective"]: t["mean"] for t in self.record.of_kind("test", method=method)}

    def gp(self, method: str = "instructzero", upto_round: int | None = None) -> Any:
        """Refit the GP of ``method`` on its evaluations up to (and including) ``upto_round`` (default: all)."""
        evals = [e for e in self.evals(method) if upto_round is None or e["round"] <= upto_round]
        rnd = max(e["round"] for e in evals) + 1
        return fit_gp(evals, coupled=method == "instructzero", similarity=self.config.get("similarity", "matern"),
                      seed=self.config["seed"] * 1000 + rnd)

    def kernel_matrices(self, gp: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``L = l(Z, Z)``, ``S`` and ``K`` (eq. 9, computed the long way through L) of a fitted coupled GP."""
        from izkit.kernels import matern52

        gp = gp if gp is not None else self.gp()
        k, theta = gp.kernel, gp.theta[: gp.kernel.n_params]
        with torch.no_grad():
            parts = k.parts(theta)
            L = matern52(k.Z, k.Z, parts["ls"])  # (m, m)
            K = k.cross(parts, k.Z, k.Z)  # (m, m) l L^-1 (s S) L^-1 l, equal to s S up to jitter
        return L.numpy(), (parts["s"] * parts["S"]).numpy(), K.numpy()

    def figures(self) -> dict[str, Any]:
        """Every figure of the run, drawn from the record (see izkit.plots)."""
        from izkit import plots

        evals, obj = self.evals(), self.objective
        figs = {"best_so_far": plots.best_so_far(evals, obj),
                "rounds": plots.top_quantile_per_round(evals, objective=obj),
                "soft_prompts": plots.soft_prompt_map(evals, objective=obj)}
        if len(self.evals("instructzero")) >= 2:
            L, S, K = self.kernel_matrices()
            order = np.argsort([-(e["mean"] if e["mean"] is not None else -np.inf) for e in self.evals("instructzero")])
            figs["kernels"] = plots.kernel_heatmaps(L, S, K, order=order)
        return figs


def replay(path: str | os.PathLike) -> Replay:
    """Read a run back from its record (a run folder or the record file itself); no model is loaded."""
    path = Path(path)
    return Replay(RunRecord.open(path / RECORD_NAME if path.is_dir() else path))


# ------------------------------------------------------------------------------------------------------------------
# Compare: many tasks x seeds, one Markdown table.


def compare(cfg: Config, tasks: list[str], seeds: list[int], out: str | os.PathLike,
            progress: bool = True) -> list[RunResult]:
    """Run every (task, seed) into ``out/<task>-seed<seed>/`` (finished ones are read back, interrupted ones resumed).

    Seed-major: every task once before any task twice, so a study stopped early still covers every task.
    """
    out = Path(out)
    results = []
    for seed in seeds:
        for task in tasks:
            sub = out / f"{Path(task).stem}-seed{seed}"
            resume = (sub / RECORD_NAME).exists()
            results.append(run(dataclasses.replace(cfg, task=task, seed=seed), sub, resume=resume, progress=progress))
    return results


def compare_table(results: list[RunResult], objective: str) -> str:
    """A Markdown table of test scores (mean +- sd over seeds) per task and method, for one objective."""
    methods = [m for m in METHODS if any(m in r.methods for r in results)]
    tasks = list(dict.fromkeys(r.config.task for r in results))
    opt = sorted({r.objective for r in results})
    lines = [f"Test {objective} (mean +- sd over seeds; BO optimised {', '.join(opt)} on dev)", "",
             "| task | " + " | ".join(METHOD_NAMES.get(m, m) for m in methods) + " | seeds | minutes of work |",
             "|---|" + "---|" * (len(methods) + 2)]
    per_method: dict[str, list[float]] = {m: [] for m in methods}
    for task in tasks:
        rs = [r for r in results if r.config.task == task]
        cells = []
        for m in methods:
            vals = [r.methods[m].test[objective] for r in rs if m in r.methods and objective in r.methods[m].test]
            per_method[m].append(float(np.mean(vals)) if vals else float("nan"))
            cells.append(_mean_sd(vals))
        minutes = sum(r.work_seconds for r in rs) / 60
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {len(rs)} | {minutes:.1f} |")
    lines.append("| **average** | " + " | ".join(_mean_sd([v for v in per_method[m] if np.isfinite(v)])
                                                for m in methods) + " | | |")
    return "\n".join(lines)


METHOD_NAMES = {"instructzero": "InstructZero", "matern": "BO (plain Matern)", "uniform": "Uniform",
                "ape": "APE-style", "manual": "Manual"}


def _mean_sd(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"  # one seed: no spread to show
    return f"{np.mean(vals):.3f} +- {float(np.std(vals, ddof=1)):.3f}"


# ------------------------------------------------------------------------------------------------------------------
# Command line glue (izkit run, izkit compare).


def config_from_args(args: argparse.Namespace, task: str) -> Config:
    baselines = () if args.baselines in ("", "none") else tuple(b.strip() for b in args.baselines.split(",") if b)
    common = dict(seed=getattr(args, "seed", 0), objective=args.objective, baselines=baselines,
                  generator=args.generator, blackbox=args.blackbox, blackbox_model=args.blackbox_model,
                  base_url=args.base_url, device=args.device, root=args.root, request_timeout=args.timeout,
                  max_retries=args.retries, screen=args.screen)
    cfg = Config.quick(task, **common) if args.quick else Config(task=task, **common)
    if args.budget is not None:
        cfg = cfg.with_budget(args.budget)
    return cfg


def resume_config(args: argparse.Namespace, out: Path) -> Config:
    """The config recorded in ``out``: ``--resume`` needs only ``--task``; flags given as well must agree with it.

    Flags left at their defaults are not compared; those in ``RESUME_MAY_CHANGE`` (timeout, retries, device) may change.
    """
    from izkit.cli import build_parser

    path = out / RECORD_NAME
    if not path.exists():
        raise RecordError(f"{out}: no run record ({RECORD_NAME}) to resume there; start a new run with --out {out}")
    recorded = RunRecord.open(path).header.get("config") or {}
    names = {f.name for f in dataclasses.fields(Config)}
    if set(recorded) != names:
        extra = "; ".join(part for part in (
            "unknown: " + ", ".join(sorted(set(recorded) - names)) if set(recorded) - names else "",
            "missing: " + ", ".join(sorted(names - set(recorded))) if names - set(recorded) else "") if part)
        raise RecordError(f"{path}: its header's config (settings {extra}) was not written by this izkit version "
                          f"({__version__}); start a new run with --out")
    cfg = Config.from_dict(recorded)
    if Path(args.task).stem != Path(cfg.task).stem:
        raise RecordError(f"{path}: this record is a run of task {cfg.task!r}, not {args.task!r}")
    asked = config_from_args(args, cfg.task).to_dict()
    default = config_from_args(build_parser().parse_args(["run", "--task", cfg.task]), cfg.task).to_dict()
    mine = cfg.to_dict()
    for key, value in asked.items():
        if value == default[key] or value == mine[key]:
            continue
        if key not in RESUME_MAY_CHANGE:
            raise RecordError(f"{path}: this record was made with {key}={mine[key]!r}, but the flags ask for "
                              f"{key}={value!r}; resume with only --task and --resume, or start a new run with --out")
        cfg = dataclasses.replace(cfg, **{key: value})
    return cfg


def main_run(args: argparse.Namespace) -> int:
    if args.resume:
        out = Path(args.resume)
        cfg = resume_config(args, out)
    else:
        cfg = config_from_args(args, args.task)
        out = Path(args.out or f"runs/{Path(args.task).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        result = run(cfg, out, resume=bool(args.resume))
    except (Exception, KeyboardInterrupt) as err:
        _say_how_to_resume(out, args.task, err)
        raise
    print(result.summary())
    write_figures(result.record_path, out)
    print(f"record and figures in {out}/")
    return 0


def _say_how_to_resume(out: Path, task: str, err: BaseException) -> None:
    """After a failed or interrupted run: how much the record keeps and the command that continues it."""
    path = out / RECORD_NAME
    if not path.exists() or isinstance(err, RecordError):
        return
    try:
        n = len(RunRecord.open(path).evals())
    except (RecordError, OSError):
        return
    print(f"the record {path} keeps the {n} evaluations finished so far; continue the run with\n"
          f"    izkit run --task {task} --resume {out}", file=sys.stderr)


def write_figures(record_path: Path, out: Path) -> list[Path]:
    """Draw the run's figures from its record (no model needed) and save them as PNG files in ``out``."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = replay(record_path).figures()
    paths = []
    for name, fig in figs.items():
        paths.append(out / f"{name}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def main_compare(args: argparse.Namespace) -> int:
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if not tasks or not seeds:
        raise ValueError("--tasks and --seeds must each name at least one")
    for task in tasks:
        load_task(task, root=args.root)  # fail now, not after the first tasks have run
    out = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    results = compare(config_from_args(args, tasks[0]), tasks, seeds, out)
    objectives = sorted({o for r in results for m in r.methods.values() for o in m.test},
                        key=lambda o: o != results[0].objective)
    text = "\n\n".join(compare_table(results, o) for o in objectives)
    (out / "table.md").write_text(text + "\n")
    write_compare_figure(results, objectives[0], out / "compare.png")
    print(text)
    print(f"\ntable, figure and records in {out}/")
    return 0


def write_compare_figure(results: list[RunResult], objective: str, path: Path) -> None:
    """Bars of mean test score per task and method, with the spread over seeds."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if any(m in r.methods for r in results)]
    tasks = list(dict.fromkeys(r.config.task for r in results))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(tasks) * len(methods) / 3), 4.2))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        vals = [[r.methods[m].test.get(objective, np.nan) for r in results if r.config.task == t and m in r.methods]
                for t in tasks]
        ax.bar(np.arange(len(tasks)) + j * width, [np.nanmean(v) if v else np.nan for v in vals], width,
               yerr=[np.nanstd(v) if len(v) > 1 else 0 for v in vals], label=METHOD_NAMES.get(m, m), capsize=2)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, rotation=20, ha="right")
    ax.set_ylabel(f"test {objective}")
    ax.legend(frameon=False, ncols=min(len(methods), 3))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
