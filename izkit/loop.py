"""The InstructZero loop, paper Algorithm 1, top to bottom, for InstructZero and each baseline.

    Z_0 <- 25 Sobol points in [-1, 1]^d                               (initial design)
    for round r = 0 .. 5:
        v_i = g([A z_i ; exemplars])          for z_i in Z_r          (generator.py: soft prompt -> instruction)
        h_i = H(v_i) on the dev set, per example                      (blackbox: zero-shot scores, eq. 1)
        fit a GP with the instruction-coupled kernel (eq. 9) on all (z, h) so far      (surrogate.py, gp.py)
        Z_{r+1} <- top 25 maximisers of expected improvement (eq. 10)                  (acquisition.py)
    report the best instruction on dev, scored on the held-out test split

Each method is a strategy (``izkit.strategies``) that proposes a round from a :class:`izkit.strategies.Round` (the
settings, the generator and exemplars, the method's evaluations so far); this file records and scores it. Everything is
written to a run record as it happens (``izkit.records``): a killed run resumes without asking the black box anything
twice, and ends where an uninterrupted run with the same seed ends.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from izkit import __version__
from izkit.config import Config
from izkit.methods import PAPER, label
from izkit.pipeline import Pipeline
from izkit.records import LOCK_NAME, RECORD_NAME, RunRecord, locked_run
from izkit.resume import plan_run
from izkit.strategies import Proposal, Round, Strategy, drawn_before, is_search, strategy_for
from izkit.surrogate import proposal_preimages
from izkit.tasks import load_task

logger = logging.getLogger(__name__)


@dataclass
class MethodResult:
    """What one method found: its best instruction on dev and that instruction's test scores."""

    method: str
    best_instruction: str
    best_dev: float  # the optimised objective's mean on dev
    n_evals: int
    test: dict[str, float] = field(default_factory=dict)  # objective -> mean on the test split
    n_distinct: int = 0  # distinct instructions among the evaluations: the budget every method spends
    answers: int = 0  # black-box answers spent on dev-side examples (search and selection): what an API bills
    kept_on: int = 0  # induce examples behind best_dev: halving's last rung, or the examples its eval line scored
    minutes: float = 0.0  # the method's recorded work: proposing, scoring, halving, testing (every session)


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
        """A plain-text table: method, answers, the kept score and on how many examples, test scores, instruction."""
        objs = sorted({o for m in self.methods.values() for o in m.test}, key=lambda o: o != self.objective)
        head = (f"{'method':<21} {'answers':>7} {'minutes':>7} {'kept on ' + self.objective + ' (examples)':>27} "
                + " ".join(f"{'test ' + o:>13}" for o in objs))
        how = ("the best on dev" if self.config.selection == "best" else
               f"successive halving up to {self.config.halving_top} induce examples"
               + (f" ({label(PAPER)}: the best on dev)" if PAPER in self.methods else ""))
        lines = [f"task {self.config.task}, seed {self.config.seed}, optimised: {self.objective} on dev; kept: {how}; "
                 f"answers: black-box answers spent on dev-side examples", head]
        for m in self.methods.values():
            tests = " ".join(f"{m.test.get(o, float('nan')):>13.3f}" for o in objs)
            name = label(m.method)
            kept = f"{m.best_dev:.3f} ({m.kept_on})"  # a single row: the last rung's examples (--halving-singles)
            lines.append(f"{name:<21} {m.answers:>7} {m.minutes:>7.1f} {kept:>27} {tests}  {m.best_instruction!r}")
        lines.append(f"time: {self.work_seconds / 60:.1f} min of recorded work (proposing, scoring, testing; every "
                     f"session of the run), {self.seconds / 60:.1f} min in this call")
        return "\n".join(lines)


class Run:
    """One run: all methods of a config on one task, recorded to ``out/record.jsonl``.

    ``Run(cfg, out).execute()`` starts or resumes and returns a :class:`RunResult`. What it does with the record in
    ``out`` is :func:`izkit.resume.plan_run`'s one rule, asked once here: with ``resume=True`` a recorded run is
    continued (a finished one read back) after checking that it was made with the same config, and a folder with
    nothing recorded (no record, an empty one, or one cut off inside its header) starts anew; ``flags``: the settings
    ``izkit run --resume``'s command line set (``Config.changes``), and the record gives the rest. ``pipeline`` may be
    given (tests pass fakes); otherwise the models are loaded from the config on first use, so a finished run reads back
    with no model.
    """

    def __init__(self, cfg: Config, out: str | os.PathLike, resume: bool = False, progress: bool = True,
                 pipeline: Pipeline | None = None, flags: dict[str, Any] | None = None):
        self.out = Path(out)
        path = self.out / RECORD_NAME
        created = not self.out.exists()
        check_writable(self.out)
        try:
            with locked_run(self.out):  # before the record is read: opening it may cut a torn tail, which is a write
                self.plan = plan_run(self.out, cfg, resume, flags)  # validates the config
                if self.plan.action == "start":
                    path.unlink(missing_ok=True)  # an empty or headerless record holds nothing to keep
                    self.record = None  # created once the models are loaded, so the header names them
                else:
                    self.record = RunRecord.open(path)  # a torn last line is cut off, and re-done
        except BaseException:
            if created:  # a bad setting, or --resume of a folder that was not there: leave no folder behind
                (self.out / LOCK_NAME).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.out.rmdir()
            raise
        self.cfg = cfg = self.plan.config  # the one config, resolved and validated by plan_run: trusted from here on
        self.objective = self.plan.objective
        self.progress = progress
        self.task = load_task(cfg.task, root=cfg.root)
        self.splits = self.task.splits(cfg.kappa, cfg.n_dev, cfg.n_test, cfg.seed)
        self._pipeline = pipeline

    @property
    def pipeline(self) -> Pipeline:
        """The models, loaded on first use; a new run's record header is written right after."""
        if self._pipeline is None:
            self._pipeline = Pipeline.from_config(self.cfg, self.splits, self.task.metric, self.objective)
        if self.record is None:
            self.record = RunRecord.create(self.out / RECORD_NAME, {
                "izkit_version": __version__,
                "config": self.cfg.to_dict(),
                "objective": self.objective,
                "metric": self.task.metric,
                "task_files": [str(self.task.induce_path), str(self.task.execute_path)],
                "models": self._pipeline.ids,
                "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            })
        return self._pipeline

    # -- Algorithm 1 ----------------------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        """Run (or finish) every method, then score each method's best instruction on the test split."""
        t0 = time.perf_counter()
        with locked_run(self.out):
            methods = self.search()
            results = {m: self._test(m) for m in methods}
            if self.cfg.test_curve:
                for m in methods:
                    if is_search(m):
                        self._test_curve(m)
            if not self.record.done:
                self.record.append({"kind": "done", "seconds": time.perf_counter() - t0})
        return RunResult(self.cfg, self.objective, results, self.record.path, time.perf_counter() - t0,
                         self.record.work_seconds())

    def search(self, methods: list[str] | None = None) -> list[str]:
        """Every round of each method (default: the config's), with no test scoring; returns the methods run.

        :meth:`execute` is this and then the test split. Dev-only studies (bench/studies/bench_exploration.py) call it.
        """
        asked = list(methods) if methods is not None else self.cfg.methods()
        unknown = [m for m in asked if m not in self.cfg.methods()]
        if unknown:
            raise ValueError(f"methods {unknown} are not in this run's config (it has {self.cfg.methods()})")
        kept = [m for m in asked if not strategy_for(m).needs_reference or self.task.reference_instruction]
        if len(kept) < len(asked):
            logger.warning("%s has no reference_instruction in its metadata: the hand-written row is left out",
                           self.task.induce_path)
        with locked_run(self.out):
            self._reload()
            for method in kept:
                self._run_method(method, strategy_for(method, self.cfg.for_method(method)))
        return kept

    def _reload(self) -> None:
        """The record as it is on disk now (another process may have added to it while this one held no lock); a new
        run loads the models and writes its header first."""
        if self.record is None:
            self.pipeline
        else:
            self.record = RunRecord.open(self.record.path)

    def _run_method(self, method: str, strategy: Strategy) -> None:
        """Every round of one method: propose (or read the proposal back), then score what is not scored yet."""
        cfg = self.cfg.for_method(method)
        sizes = cfg.round_sizes if strategy.kind == "search" else [1]
        scored = Counter(e["round"] for e in self.record.evals(method))
        done = next((r for r, size in enumerate(sizes) if scored[r] < size), len(sizes))  # rounds already recorded
        # One step a round, not an evaluation: proposing (GP fit, EI, drawing candidates) is most of a round's time
        # and grows with the data, so a bar over evaluations promised "1 min left" before a minute of proposing.
        bar = _bar(total=len(sizes), initial=done, desc=method, unit="round", disable=not self.progress)
        halving_search = cfg.selection == "halving" and strategy.kind == "search"
        for rnd, size in enumerate(sizes):
            if rnd >= done:
                bar.set_postfix_str(f"round {rnd}: proposing {size}; {self.record.answers(method):,} answers so far")
            proposal = self._proposal(method, rnd, lambda r=rnd, n=size: strategy.propose(self._round(method, r, n)))
            if rnd >= done:
                bar.set_postfix_str(f"round {rnd}: scoring {len(proposal['instructions'])} (drawn "
                                   f"{proposal.get('drawn', size)})")
            self._score(method, rnd, proposal)
            if rnd >= done:
                bar.update(1)
            if halving_search and len(proposal["instructions"]) < size and rnd < len(sizes) - 1:
                # A short round: max_draws candidates per new instruction (over the search) did not find this round's
                # size, so the generator has few left to write; later rounds would mostly re-draw. Halving spends
                # the answers left.
                logger.info("%s: round %d found %d new instructions of %d in %d draws; the search stops there and "
                            "halving spends the answers left", method, rnd, len(proposal["instructions"]), size,
                            proposal.get("drawn", size))
                bar.set_postfix_str(f"stopped after round {rnd}: {len(proposal['instructions'])} new of {size}")
                break
        else:
            bar.set_postfix_str(f"{len(sizes)} rounds, {self.record.answers(method):,} answers")
        bar.close()
        if halving_search or (cfg.selection == "halving" and cfg.halving_singles):
            self._select(method, single=strategy.kind == "single")

    def _select(self, method: str, single: bool = False) -> dict[str, Any] | None:
        """Successive halving over the method's candidates (izkit.selection): the search scored each on the first
        ``search_examples`` dev examples; the best go on to the rest of dev, then the spare induce examples (never
        the test split). Every answer is a ``confirm`` line, so a resumed run asks only what is missing, in the same
        groups; the outcome is one ``selection`` line. A ``single`` instruction (``halving_singles``) goes straight
        to the last rung's examples, so its kept mean is on the same examples as a search's pick."""
        from izkit.seeds import ties_seed
        from izkit.selection import Rung, halving_rungs, successive_halving, widest_first

        line = self.record.find("selection", method=method)
        if line is not None:
            return line
        cfg, evals = self.cfg, [e for e in self.record.evals(method) if e["mean"] is not None]
        if not evals:
            return None  # nothing scored: the test step reports the method as it does without halving
        pool = self.splits.dev + self.task.spare_induce(cfg.kappa, cfg.n_dev, cfg.seed)
        top = min(cfg.halving_top, len(pool))
        if top < cfg.halving_top:
            logger.warning("%s: %d induce examples for halving's last rung, not %d", self.task.induce_path, top,
                           cfg.halving_top)
        first = min(cfg.search_examples, top)
        if not single and len(evals) < cfg.candidates:  # the search stopped short: its answers widen the rungs
            first = widest_first(len(evals), cfg.answers, first, cfg.halving_eta, top)
        rungs = ([Rung(first, 1)] + [Rung(top, 1)] * (top > first) if single
                 else halving_rungs(len(evals), first, cfg.halving_eta, top))
        texts = [e["instruction"] for e in evals]
        known = {i: np.asarray(e["scores"], dtype=float) for i, e in enumerate(evals)}
        widened = rungs[0].candidates if rungs[0].examples > cfg.search_examples else 0  # scored again on rung 0
        bar = _bar(total=widened + sum(r.candidates for r in rungs[1:]), desc=f"{method} halving", unit="candidate",
                   disable=not self.progress)

        def score(cands: list[int], start: int, stop: int) -> np.ndarray:
            bar.update(len(cands))
            return self._confirm(method, [texts[i] for i in cands], pool, start, stop)

        n = len(evals)
        ties = (None if cfg.halving_ties == "first" else [-i for i in range(n)] if cfg.halving_ties == "last"
                else np.random.default_rng(ties_seed(cfg.seed, method)).permutation(n))  # only the order asked for
        out = successive_halving(score, rungs, known=known, ties=ties)
        bar.close()
        line = {"kind": "selection", "method": method, "instruction": texts[out.pick],
                "mean": out.means[-1][out.pick], "rungs": [[r.examples, r.candidates] for r in rungs],
                "members": [[texts[i] for i in m] for m in out.members], "answers": out.answers}
        self.record.append(line)
        return line

    def _confirm(self, method: str, texts: list[str], pool: Any, start: int, stop: int) -> np.ndarray:
        """Per-example scores (len(texts), stop - start) of instructions on ``pool[start:stop]``: from the record's
        confirm lines, else asked in fixed groups of the black box's ``instructions_per_call`` (as ``_score``)."""
        have = {c["instruction"]: c["scores"] for c in self.record.of_kind("confirm", method=method, start=start,
                                                                          stop=stop)}
        if all(t in have for t in texts):
            return np.array([have[t] for t in texts], dtype=float)  # read back: no model is loaded
        for i, row, res, seconds in self._grouped(texts, lambda i: texts[i] in have, pool[start:stop]):
            have[texts[i]] = np.asarray(res.scores[row], dtype=float).tolist()
            self.record.append({"kind": "confirm", "method": method, "instruction": texts[i], "start": start,
                                "stop": stop, "scores": have[texts[i]], "mean": float(res.means[row]),
                                "seconds": seconds})
        return np.array([have[t] for t in texts], dtype=float)

    def _grouped(self, texts: list[str], done: Callable[[int], bool], examples: Any) -> Iterator[tuple[Any, ...]]:
        """Score ``texts`` on ``examples`` in fixed groups (by index) of the black box's ``instructions_per_call`` (1
        if it names none), skipping a group whose rows are all ``done``; yields (index, row in its group, the group's
        result, seconds a row) for each row not done yet. A group with any row missing is scored whole again, so a
        resumed run asks exactly the batches an uninterrupted run asked, and gets the same answers."""
        size = max(1, int(getattr(self.pipeline.blackbox, "instructions_per_call", 1)))
        for start in range(0, len(texts), size):
            group = list(range(start, min(start + size, len(texts))))
            if all(done(i) for i in group):
                continue
            t = time.perf_counter()
            res = self.pipeline.blackbox.score([texts[i] for i in group], examples, metric=self.pipeline.metric,
                                               objective=self.objective)
            seconds = (time.perf_counter() - t) / len(group)
            for row, i in enumerate(group):
                if not done(i):
                    yield i, row, res, seconds

    def _round(self, method: str, rnd: int, size: int) -> Round:
        """What a strategy sees of this run for one round (the models are loaded here, when first needed)."""
        proposals = list(self.record.of_kind("proposal", method=method))
        return Round(method, rnd, size, self.cfg.for_method(method), self.pipeline.generator,
                     self.pipeline.exemplars, self.record.evals(method), self.task.reference_instruction,
                     proposal_preimages(proposals, rnd), drawn_before(proposals, rnd))

    def _proposal(self, method: str, rnd: int, make: Callable[[], Proposal]) -> dict[str, Any]:
        """The batch of a (method, round): from the record if it was made before, else made now and recorded."""
        line = self.record.find("proposal", method=method, round=rnd)
        if line is None:
            t = time.perf_counter()
            prop = make()
            if prop.gp is not None and self.record.find("gp", method=method, round=rnd) is None:
                self.record.append({"kind": "gp", "method": method, "round": rnd, **prop.gp})  # once, also on resume
            line = {"kind": "proposal", "method": method, "round": rnd, "z": prop.z,
                    "instructions": prop.instructions, "seconds": time.perf_counter() - t, **prop.facts}
            self.record.append(line)
        return line

    def _score(self, method: str, rnd: int, proposal: dict[str, Any]) -> None:
        """Score the proposal's instructions that the record does not hold yet; one eval line each (step 3).

        Instructions go to the black box in the fixed groups of :meth:`_grouped` (the local black box batches a
        group's dev answers together), so a resumed run asks the same batches and gets the same answers.
        """
        texts = proposal["instructions"]
        done = {e["index"] for e in self.record.evals(method) if e["round"] == rnd}
        if all(i in done for i in range(len(texts))):
            return  # all read back: no model is loaded (a finished pair of a study is read back in a moment)
        dev = self.splits.dev[: self.cfg.for_method(method).search_examples]
        for i, row, res, seconds in self._grouped(texts, done.__contains__, dev):
            z = proposal["z"][i] if proposal["z"] is not None else None
            self.record.append({
                "kind": "eval", "method": method, "round": rnd, "index": i, "z": z, "instruction": texts[i],
                "objective": res.objective, "scores": np.asarray(res.scores[row], dtype=float),
                "predictions": list(res.predictions[row]), "mean": float(res.means[row]), "seconds": seconds,
                "cache_hit": bool(res.usage.cache_hits and res.usage.requests == 0),
            })

    def _test(self, method: str) -> MethodResult:
        """The instruction the method kept (:meth:`izkit.records.RunRecord.kept`: halving's pick, or the best on
        dev), scored on the held-out test split under every objective it has.

        Ties on dev (20 examples give many under accuracy) go to the instruction evaluated first. No finer score
        breaks them: that would need a measurement on dev that it helps.
        """
        evals = self.record.evals(method)
        best = self.record.kept(method)
        best_dev = math.nan if best["mean"] is None else float(best["mean"])
        kept_on = (best["rungs"][-1][0] if best.get("kind") == "selection"
                   else 0 if best.get("scores") is None else len(best["scores"]))
        result = MethodResult(method, best["instruction"], best_dev, len(evals),
                              n_distinct=len({e["instruction"] for e in evals}), answers=self.record.answers(method),
                              kept_on=kept_on)
        objectives = [self.objective] + (["accuracy" if self.objective == "loglik" else "loglik"]
                                         if self.cfg.blackbox == "local" else [])
        for obj in objectives:
            line = self.record.find("test", method=method, objective=obj)
            if line is None or line["instruction"] != best["instruction"]:
                t = time.perf_counter()
                res = self.pipeline.blackbox.score([best["instruction"]], self.splits.test,
                                                   metric=self.pipeline.metric, objective=obj)
                line = {"kind": "test", "method": method, "objective": obj, "instruction": best["instruction"],
                        "scores": np.asarray(res.scores[0], dtype=float), "predictions": list(res.predictions[0]),
                        "mean": float(res.means[0]), "seconds": time.perf_counter() - t}
                self.record.append(line)
            result.test[obj] = line["mean"]
        result.minutes = self.record.work_seconds(method) / 60
        return result

    def _test_curve(self, method: str) -> None:
        """Each round's incumbent (the best dev instruction after that round, ties to the first) scored on test.

        One ``test_curve`` line per round, with the distinct instructions scored so far, for the best-so-far test
        figure of a study. Only reported: no proposal reads these lines. Repeated incumbents are read from the record.
        """
        evals = self.record.evals(method)
        known = {t["instruction"]: t["mean"] for kind in ("test", "test_curve")  # test scores the record already holds
                 for t in self.record.of_kind(kind, method=method, objective=self.objective)}
        for rnd in sorted({e["round"] for e in evals}):
            if self.record.find("test_curve", method=method, round=rnd) is not None:
                continue
            upto = [e for e in evals if e["round"] <= rnd]
            scored = [e for e in upto if e["mean"] is not None]
            if not scored:
                continue
            best = max(scored, key=lambda e: e["mean"])  # max keeps the first of equal means
            t = time.perf_counter()
            if best["instruction"] not in known:
                res = self.pipeline.blackbox.score([best["instruction"]], self.splits.test,
                                                   metric=self.pipeline.metric, objective=self.objective)
                known[best["instruction"]] = float(res.means[0])
            mean = known[best["instruction"]]
            self.record.append({"kind": "test_curve", "method": method, "round": rnd, "objective": self.objective,
                                "n_distinct": len({e["instruction"] for e in upto}), "instruction": best["instruction"],
                                "dev": best["mean"], "mean": mean, "seconds": time.perf_counter() - t})


def run(cfg: Config, out: str | os.PathLike, resume: bool = False, progress: bool = True) -> RunResult:
    """Run InstructZero (and the config's baselines) on one task; the record and results go to ``out``.

    ``resume=True`` continues whatever ``out`` holds by :func:`izkit.resume.plan_run`'s rule (a recorded run is
    continued or read back; nothing recorded starts anew), as ``izkit compare`` and the course's notebooks ask."""
    return Run(cfg, out, resume=resume, progress=progress).execute()


def check_writable(out: Path) -> None:
    """Fail at the start, not after minutes of work, when the output folder cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".izkit-write-test-{os.getpid()}"  # per process: two runs starting at once keep their own
        with open(probe, "wb") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as err:
        with contextlib.suppress(OSError):
            (out / f".izkit-write-test-{os.getpid()}").unlink(missing_ok=True)
        raise OSError(f"cannot write to the output folder {out}: {err.strerror or err}") from None


def _bar(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(**{"unit": "eval", "leave": True, **kwargs})
