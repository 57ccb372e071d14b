"""One InstructZero run's settings: a plain dataclass with the paper's method and spend (Chen et al., ICML 2024, sec. 4).

``Config(task="antonyms")`` has the paper's search: d = 10, N = 5 soft tokens, kappa = 5 exemplars, 20 dev examples,
25 Sobol soft prompts, then rounds of 25, and the paper's spend of black-box answers (150 instructions x 20 dev
examples = 3,000). It spends them by successive halving (izkit.selection: 450 candidates on 2 examples each, the best
promoted up to 100 induce examples), with the GP also fitted on preimages: the allocation the answers study measured
best on held-out induce examples (bench/RESULTS.md). ``Config(...).as_paper()`` (``--paper``) is the paper's own
allocation, the best of 150 on the 20 dev examples. :meth:`Config.quick` is small enough for tests and notebooks. A
config is written into every run record's header and read back with :meth:`Config.from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from izkit.methods import LABELS, METHOD, NAMES, PAPER
from izkit.methods import method as method_row

DTYPES = ("float32", "bfloat16")  # the local models' number formats (izkit.models.default_dtype picks one)

METHODS, METHOD_NAMES = NAMES, LABELS  # the methods' table is izkit.methods; these names stay for older imports
LAYOUTS = ("soft-first", "after-demos", "before-cue")  # where the generator's soft tokens sit (izkit.generator)
OBJECTIVES = ("accuracy", "loglik")  # what BO maximises on dev (accuracy: the paper's execution accuracy)
CHOICES: dict[str, tuple[Any, ...]] = {  # the settings with a fixed set of values; the CLI offers the same ones
    "blackbox": ("local", "openai"), "api": ("chat", "completions"), "similarity": ("matern", "agreement"),
    "projection": ("uniform", "normal"), "batch": ("ei", "authors"), "generator_prompt": ("plain", "chat", "sentence"),
    "gp_inputs": ("raw", "unit"), "score_standardize": (None, "column", "global"), "gp_noise": ("fitted", "known"),
    "dtype": (None, *DTYPES), "objective": (None, *OBJECTIVES), "selection": ("best", "halving"),
    "halving_ties": ("first", "last", "random"),
    "layout": LAYOUTS}
PAIR_CPUS, PAIR_GPUS = 1.0, 0.0  # what each (task, seed) of ``izkit compare --ray`` asks of Ray (izkit.studies.fanout)


@dataclass
class Config:
    """One InstructZero run. The search is the paper's, its answers spent by halving (:meth:`as_paper`: the paper's
    allocation); :meth:`quick` is small enough for tests and notebooks."""

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
    objective: str | None = None  # "accuracy" (the paper's, and the default) or "loglik" (local or echo endpoints)
    similarity: str = "matern"  # S in eq. 9: "matern" on score vectors (authors' code) or "agreement" (eq. 8)
    baselines: tuple[str, ...] = ("manual", "reference")  # any of "matern", "uniform", "ape", "manual", "reference"
    generator: str | None = None  # the open model that writes instructions; None: the embedded default
    generator_url: str | None = None  # a server that decodes the generator's prompt embeddings (vLLM, izkit.serving.remote);
    #                                   then only ``generator``'s tokenizer and embedding table are loaded here
    generator_prompt: str = "plain"  # "plain": the paper's completion prompt; "chat": in the model's chat template,
    #                                  ending 'The instruction was to?' (the authors' framing for a chat model);
    #                                  "sentence": a chat turn asking for one imperative sentence (izkit.prompts)
    layout: str = "soft-first"  # where the soft tokens sit: "soft-first" after BOS, before the demos (paper eq. 2;
    #                             the authors' code puts BOS after them), "after-demos" or "before-cue" (the demos'
    #                             KV cache is then shared by every candidate: izkit.generator)
    blackbox: str = "local"  # "local" (a model in this process) or "openai" (any OpenAI-compatible endpoint)
    blackbox_model: str | None = None  # local: a model path/id (None: the generator's); openai: the model name
    base_url: str | None = None  # the OpenAI-compatible endpoint (None: OpenAI itself)
    api: str = "chat"  # "chat" or "completions" for an OpenAI-compatible black box
    request_timeout: float = 60.0  # seconds per request to an OpenAI-compatible black box
    max_retries: int = 3  # our retries of a failed request (429, 5xx, timeout, dropped), each after the SDK's own 2
    device: str | None = None  # None: CUDA when available, else CPU
    dtype: str | None = None  # the local models' number format: "float32", "bfloat16", or None ($IZKIT_DTYPE, else
    #                           bfloat16 on a GPU or a CPU with native bfloat16, float32 on other CPUs)
    answer_cache: str | None = "default"  # the black box's answer cache: "default" (the izkit cache folder), a sqlite
    #                                       file's path, or None (ask the black box every time)
    root: str | None = None  # a folder of tasks instead of data/
    ape_temperature: float = 0.9  # sampling temperature of the APE-style baseline (top-p 0.95)
    acq_restarts: int = 64  # L-BFGS-B starts for the acquisition optimisation
    acq_raw_samples: int = 1024  # Sobol points screened to pick those starts
    screen: int = 2  # BO candidates drawn per missing instruction in each pass; the batch keeps the best-ranked new
    #                  ones (1: one candidate per slot, the paper's top-q, then more passes while instructions repeat)
    batch: str = "ei"  # BO batch rule: "ei" (EI's top maximisers) or "authors" (one local search per top-q point)
    gp_inputs: str = "raw"  # the GP's soft prompts: "raw" in [-1, 1]^d or "unit" scaled to the unit cube
    score_standardize: str | None = None  # S's score vectors as they are (None), or standardised "column"/"global"
    gp_noise: str = "fitted"  # the GP's noise: "fitted" or "known" (each dev mean's variance over n_dev examples)
    residual: bool = False  # a stationary s_r l(z, z') beside eq. 9, giving prior variance back away from the data
    max_draws: float = 10  # candidates a search may draw per instruction, counted over its rounds (a round may use
    #                        what earlier ones saved; Round.draw_cap); a round that runs out is short, its proposal
    #                        line says so, and a halving search stops there (its answers left widen the rungs:
    #                        izkit.selection.widest_first)
    test_curve: bool = False  # also score each round's incumbent on test (a study's best-so-far test figure); the
    #                           search never sees these scores
    selection: str = "halving"  # how a search keeps its instruction: "halving", successive halving at a budget of
    #                             answers (izkit.selection), or "best" mean on the n_dev dev examples (the paper)
    answers: int | None = None  # black-box answers each method spends on dev-side examples; None: the paper's spend,
    #                             (n_init + n_rounds * batch_size) instructions x n_dev (3,000), set when made
    halving_first: int = 2  # halving: examples every candidate is scored on while the search runs (the first dev ones)
    halving_eta: float = 3.0  # halving: the best 1/eta of a rung go on to eta times more examples
    halving_top: int = 100  # halving: examples the last rung is judged on (dev, then the spare induce examples)
    halving_ties: str = "first"  # halving: which of equal means goes on: the "first" scored, the "last" (a BO's
    #                              later, EI-guided proposals) or in a seeded "random" order (izkit.seeds.ties_seed)
    halving_singles: bool = True  # halving: a single instruction (hand-written, manual) is also scored on the last
    #                               rung's examples, so its kept mean is on the same examples as a search's pick
    preimages: bool = True  # BO: the GP also learns from soft prompts whose instruction is scored already (PRESTO)
    sampled: float = 0.0  # a soft-prompt search's share of each round sampled APE-style instead (a mixed pool)

    def __post_init__(self) -> None:
        if self.answers is None:  # the paper's spend: 25 + 5 x 25 = 150 instructions, each on the 20 dev examples
            self.answers = (self.n_init + self.n_rounds * self.batch_size) * self.n_dev

    @property
    def candidates(self) -> int:
        """Distinct instructions each search scores: ``answers // n_dev`` with the paper's allocation (3,000 / 20 =
        150), or as many as successive halving fits in ``answers`` (``izkit.selection.most_candidates``)."""
        if self.selection == "halving":
            from izkit.selection import most_candidates

            return most_candidates(self.answers, self.halving_first, self.halving_eta, self.halving_top)
        return self.answers // self.n_dev

    @property
    def search_examples(self) -> int:
        """Dev examples each candidate is scored on while the search runs (the GP sees these score vectors)."""
        return min(self.halving_first, self.n_dev) if self.selection == "halving" else self.n_dev

    @property
    def round_sizes(self) -> list[int]:
        """Candidates in each round: the initial design, then batches of ``batch_size`` until :attr:`candidates`
        (the last one cut to fit; the paper's 150 are 25 + 5 x 25)."""
        sizes, left = [], self.candidates
        n_rounds = math.ceil(max(0, left - self.n_init) / self.batch_size)
        for size in [self.n_init] + [self.batch_size] * n_rounds:
            if left <= 0:
                break
            sizes.append(min(size, left))
            left -= sizes[-1]
        return sizes

    @classmethod
    def quick(cls, task: str, **overrides: Any) -> Config:
        """A preset for tests, notebooks and a first look: the answers of 4 + 2 x 4 instructions on 5 dev examples
        (60), halving's last rung on 10 induce examples."""
        base = dict(n_init=4, n_rounds=2, batch_size=4, n_dev=5, n_test=10, acq_restarts=8, acq_raw_samples=128,
                    halving_top=10)
        return cls(task=task, **{**base, **overrides})

    @classmethod
    def from_flags(cls, task: str, given: dict[str, Any], *, quick: bool = False, instructions: int | None = None,
                   paper: bool = False) -> Config:
        """The config a command line describes, validated: ``given`` are the settings its flags set (the rest are
        Config's defaults, or :meth:`quick`'s), then ``--budget`` (``instructions``, :meth:`with_instructions`) and
        ``--paper`` (:meth:`as_paper`)."""
        cfg = cls.quick(task, **given) if quick else cls(task=task, **given)
        if instructions is not None:
            if given.get("answers") is not None:
                raise ValueError(f"give the budget in answers (--answers {given['answers']}) or the paper's way in "
                                 f"instructions (--budget {instructions}, that many x n_dev answers), not both")
            cfg = cfg.with_instructions(instructions)
        cfg = cfg.as_paper() if paper else cfg
        cfg.validate()
        return cfg

    def changes(self) -> dict[str, Any]:
        """The settings that differ from Config's defaults for this task: what a command line set, presets included
        (``izkit run --resume`` checks them against the record, izkit.resume.with_flags)."""
        default = Config(task=self.task).to_dict()
        return {k: v for k, v in self.to_dict().items() if k != "task" and v != default[k]}

    def with_instructions(self, n: int) -> Config:
        """The answers of ``n`` instructions on the n_dev dev examples each: the paper's way of stating its budget
        (``--budget n``; 150 is 3,000 answers). The batch size stays; the initial design is cut to ``n`` if larger and
        ``n_rounds`` says how many rounds the paper's allocation takes (the last may be smaller)."""
        if n < 1:
            raise ValueError(f"--budget must be at least 1, got {n} (instructions)")
        n_init = min(self.n_init, n)
        n_rounds = math.ceil((n - n_init) / self.batch_size)
        return dataclasses.replace(self, n_init=n_init, n_rounds=n_rounds, answers=n * self.n_dev)

    def resolved_objective(self) -> str:
        """The objective BO maximises: the one asked for, else accuracy (execution accuracy, as in the paper)."""
        obj = self.objective or OBJECTIVES[0]
        if obj not in OBJECTIVES:
            raise ValueError(f"objective must be 'accuracy' or 'loglik', got {obj!r}")
        return obj

    def methods(self) -> list[str]:
        """InstructZero, then the baselines asked for, in the order they run."""
        return [METHOD] + [m for m in NAMES[1:] if m in self.baselines]

    def as_paper(self) -> Config:
        """InstructZero as the paper runs it, at this config's answers (Algorithm 1: answers / n_dev instructions,
        each on the n_dev dev examples, the best kept; no mixed pool, no preimages): ``--paper``. Its rounds may draw
        ``PAPER_MAX_DRAWS`` candidates per instruction, so that it scores every instruction of its budget."""
        return dataclasses.replace(self, selection="best", sampled=0.0, preimages=False,
                                   max_draws=max(self.max_draws, PAPER_MAX_DRAWS)).with_instructions(
            self.answers // self.n_dev)

    def for_method(self, method: str) -> Config:
        """The settings ``method`` runs with: the run's own, but for ``paper`` (with halving), ``as_paper()``: the
        row a run with the default selection is compared against."""
        return self.as_paper() if method_row(method).paper_allocation and self.selection != "best" else self

    def validate(self) -> None:
        """A ValueError naming the first setting that is out of range or inconsistent with the others."""
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {getattr(self, name)!r}")
        if self.blackbox == "openai" and not self.blackbox_model:
            raise ValueError("a black box 'openai' needs --blackbox-model (the model name the endpoint serves)")
        bad = [b for b in self.baselines if b not in NAMES[1:]]
        if bad:
            raise ValueError(f"unknown baseline {bad[0]!r}; choose from {', '.join(NAMES[1:])}")
        for name in ("d", "n_tokens", "kappa", "n_dev", "n_test", "n_init", "batch_size", "screen", "max_draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.selection == "halving" and not (1 <= self.halving_first <= self.halving_top and self.halving_eta > 1):
            raise ValueError(f"halving needs 1 <= halving_first <= halving_top and halving_eta > 1, got "
                             f"{self.halving_first}, {self.halving_top}, {self.halving_eta}")
        if PAPER in self.baselines and self.selection == "best":
            raise ValueError("baseline 'paper' is InstructZero with the paper's allocation of answers, which is this "
                             "run's own (--paper, --selection best): drop --paper or the baseline")
        if PAPER in self.baselines and self.answers < self.n_dev:
            raise ValueError(f"baseline 'paper' needs at least n_dev = {self.n_dev} answers, got {self.answers}")
        if not 0 <= self.sampled < 1:
            raise ValueError(f"--sampled is the share of each round sampled APE-style, in [0, 1), got {self.sampled}")
        if self.answers < 1:
            raise ValueError(f"--answers must be at least 1, got {self.answers}")
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


PAPER_MAX_DRAWS = 10  # as_paper(): candidates a round may draw per instruction (izkit's setting before 2026-12-08)
BASE_URL_ENV, BLACKBOX_MODEL_ENV = "IZKIT_BASE_URL", "IZKIT_BLACKBOX_MODEL"


def blackbox_from_env() -> dict[str, Any]:
    """The course's switch to an OpenAI-compatible black box: Config fields from ``$IZKIT_BASE_URL`` and
    ``$IZKIT_BLACKBOX_MODEL`` (both set), or ``{}`` when neither is set (the embedded model answers).

    The notebooks pass it to their configs, ``Config.quick(task, **blackbox_from_env())``, so a teacher points the
    whole course at a server without editing a cell (notebooks/README.md). The generator stays the local model.
    """
    url, model = os.environ.get(BASE_URL_ENV, "").strip(), os.environ.get(BLACKBOX_MODEL_ENV, "").strip()
    if not url and not model:
        return {}
    if not (url and model):
        given, missing = (BASE_URL_ENV, BLACKBOX_MODEL_ENV) if url else (BLACKBOX_MODEL_ENV, BASE_URL_ENV)
        raise ValueError(f"${given} is set but ${missing} is not: set both (the endpoint and the model name it serves) "
                         f"or neither")
    return {"blackbox": "openai", "base_url": url, "blackbox_model": model}
