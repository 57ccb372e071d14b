"""The methods a run compares, in one table: what each is called, how it is drawn, what kind it is, how it is made.

Every other module reads this table (config's choices, the strategies, the figures' colours and lines, the reports,
notebook 9's simulations, bench/) and asks a method for its attributes instead of comparing names:

    name          label                  kind    soft prompts  GP kernel         role
    instructzero  InstructZero           search  yes           eq. 9 (coupled)   the method (izkit's allocation)
    paper         InstructZero (paper)   search  yes           eq. 9 (coupled)   the method, the paper's allocation
    matern        BO (plain Matern)      search  yes           Matern-5/2        a baseline
    uniform       Uniform                search  yes           none              random search (the paired baseline)
    ape           APE-style              search  no            none              a baseline (APE's template, sampled)
    manual        Manual (generator)     single  no            none              the generator's greedy instruction
    reference     Hand-written           single  no            none              the task's hand-written instruction

``paper`` is not another search: it is InstructZero run with ``Config.as_paper()`` (Algorithm 1's allocation, the
best of answers / 20 instructions on the 20 dev examples) beside a run whose own allocation is successive halving,
and :attr:`Method.paper_allocation` says so. This module imports nothing from izkit, so any module may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One row of the table (see the module docstring)."""

    name: str  # in records, flags (--baselines) and the ``method`` field of every record line
    label: str  # in tables, legends and notebooks
    color: str  # its colour in every figure (matplotlib's cycle; InstructZero red)
    kind: str  # "search": rounds of candidates over the answers; "single": one instruction, no rounds
    strategy: str  # its class in izkit.strategies (a BO one is made with its name and ``coupled``)
    coupled: bool | None = None  # BO's GP kernel: eq. 9 (True), a plain Matern-5/2 (False); None: no GP
    soft_prompts: bool = False  # whether it searches soft prompts z (a GP's inputs, the soft-prompt map)
    paper_allocation: bool = False  # run with Config.as_paper() (Algorithm 1) beside a run with halving
    human: bool = False  # the task's hand-written instruction: needs ``reference_instruction`` in the task files
    random: bool = False  # random search at the same answers: the paired baseline a study's headline is against
    line: tuple[str, float, int] = ("-", 1.6, 3)  # a search's best-so-far line: style, width, z-order
    seed_offset: int = 0  # its random streams start this far from BO's (0: paired with BO's, izkit.seeds)

    @property
    def is_search(self) -> bool:
        return self.kind == "search"

    @property
    def is_method(self) -> bool:
        """InstructZero itself, in either allocation (eq. 9's GP over soft prompts)."""
        return self.coupled is True


TABLE: tuple[Method, ...] = (  # the order they run in, and the order of every table's columns
    Method("instructzero", "InstructZero", "C3", "search", "BayesOpt",
           coupled=True, soft_prompts=True, line=("-", 2.6, 5)),
    Method("paper", "InstructZero (paper)", "C5", "search", "BayesOpt",
           coupled=True, soft_prompts=True, paper_allocation=True, line=("-", 1.8, 4)),
    Method("matern", "BO (plain Matern)", "C1", "search", "BayesOpt",
           coupled=False, soft_prompts=True, line=("--", 1.8, 4)),
    Method("uniform", "Uniform", "C0", "search", "Uniform", soft_prompts=True, random=True,
           line=("-", 1.6, 3), seed_offset=7919),  # a prime: random draws apart from BO's streams
    Method("ape", "APE-style", "C2", "search", "APE", line=("-.", 1.6, 3)),
    Method("manual", "Manual (generator)", "C4", "single", "Manual"),
    Method("reference", "Hand-written", "C7", "single", "Reference", human=True),
)
BY_NAME: dict[str, Method] = {m.name: m for m in TABLE}
NAMES: tuple[str, ...] = tuple(BY_NAME)
LABELS: dict[str, str] = {m.name: m.label for m in TABLE}
COLORS: dict[str, str] = {m.name: m.color for m in TABLE}
SEARCHES: tuple[str, ...] = tuple(m.name for m in TABLE if m.is_search)  # the methods that write many candidates
METHOD = TABLE[0].name  # the method a run is about: every other row is compared with it
RANDOM = next(m.name for m in TABLE if m.random)  # random search, a study's headline comparison
HUMAN = next(m.name for m in TABLE if m.human)  # the hand-written instruction
PAPER = next(m.name for m in TABLE if m.paper_allocation)  # InstructZero with the paper's allocation


def method(name: str) -> Method:
    """The row of ``name``; a ValueError lists the names there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(NAMES)}") from None


def label(name: str) -> str:
    """A method's label, or the name itself for one this izkit does not know (a record from another version)."""
    return BY_NAME[name].label if name in BY_NAME else name
