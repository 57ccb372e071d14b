"""Make izkit's task files in the Instruction Induction format (Honovich et al., 2022) from data/sources/.

The facts (antonym pairs, plurals, animal size classes, sentence parts, ...) live in tab-separated files under
``data/sources/``, written by hand for this project; this script only reads them, builds each task's examples and
splits them. ``python data/make_tasks.py`` (optionally ``--out DIR --seed N --sources DIR``) writes
``DIR/induce/<task>.json`` and ``DIR/execute/<task>.json`` for every task in ``TASKS``.

The output is deterministic: each task draws from its own ``random.Random`` seeded with a string (string seeds hash
with SHA-512, not with Python's per-process hash), facts are used in the order of their files, and files are written
with ``json.dump(..., indent=1, ensure_ascii=False)`` plus a trailing newline, so a second run reproduces the committed
files byte for byte (tests/test_data_files.py checks it). Examples are either one fact each (a word and its plural) or
composed from facts (two animals of clearly different size classes; a subject and a predicate). The script refuses to
write a task whose facts repeat an entry, whose splits share an input, or whose splits are too small. See
data/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path

SEED = 0  # the seed the committed files were made with
OUT = Path(__file__).resolve().parent  # data/: where induce/ and execute/ go
SOURCES = OUT / "sources"  # the facts files

Maker = Callable[[Path, random.Random], list[dict]]  # (facts folder, the task's rng) -> the task's examples


# ---------------------------------------------------------------------------------------------------------------------
# Reading the facts files

def table(src: Path, name: str, *columns: str) -> list[tuple[str, ...]]:
    """The rows of ``src/<name>.tsv``, in file order, as tuples of its ``columns``.

    A facts file is UTF-8 text: lines starting with '#' are comments, the first other line names the columns, and each
    further line is one row of tab-separated fields. Fails if the header is not ``columns``, a row has the wrong number
    of fields, a field is empty or has surrounding space, or a row repeats.
    """
    path = src / f"{name}.tsv"
    numbered = [(i, line) for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
    numbered = [(i, line) for i, line in numbered if line and not line.startswith("#")]
    if not numbered or tuple(numbered[0][1].split("\t")) != columns:
        raise ValueError(f"{path}: the header must be {' | '.join(columns)} (tab-separated)")
    rows, seen = [], set()
    for i, line in numbered[1:]:
        row = tuple(line.split("\t"))
        if len(row) != len(columns):
            raise ValueError(f"{path}:{i}: {len(row)} fields, expected {len(columns)} ({' | '.join(columns)})")
        if any(not f or f != f.strip() for f in row):
            raise ValueError(f"{path}:{i}: a field is empty or has space around it")
        if row in seen:
            raise ValueError(f"{path}:{i}: the row is listed twice")
        seen.add(row)
        rows.append(row)
    return rows


def cells(text: str, what: str) -> list[str]:
    """A field that holds a list, 'a, b, c' -> ['a', 'b', 'c']; fails on any other spacing or a repeated item."""
    items = [item.strip() for item in text.split(",")]
    if ", ".join(items) != text or not all(items):
        raise ValueError(f"{what}: {text!r} must be items separated by ', '")
    return unique(items, what)


def unique(values: Iterable[str], what: str) -> list[str]:
    """The values in order; fails if one repeats (hand-written lists must not hold duplicates)."""
    values = list(values)
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what}: {v!r} is listed twice")
        seen.add(v)
    return values


def one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what}: {value!r} must be one of {', '.join(allowed)}")
    return value


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------------------------------------------------------------
# One fact per example: the letter tasks, antonyms, synonyms, plurals, translations, causes and effects, rhymes

def letter_task(fn: Callable[[str], str]) -> Maker:
    """first_word_letter, second_word_letter, letters_list: every vocabulary word -> fn(word)."""

    def make(src: Path, rng: random.Random) -> list[dict]:
        words = unique((w for (w,) in table(src, "vocabulary", "word")), "vocabulary")
        return [{"input": w, "output": fn(w)} for w in words]

    return make


def make_antonyms(src: Path, rng: random.Random) -> list[dict]:
    pairs = table(src, "antonyms", "word", "opposite")
    unique((w for pair in pairs for w in pair), "antonyms (each word once)")  # so no pair shows up reversed
    return [{"input": a, "output": b} for a, b in pairs]


def make_synonyms(src: Path, rng: random.Random) -> list[dict]:
    pairs = table(src, "synonyms", "word", "synonym")
    inputs = set(unique((a for a, _ in pairs), "synonyms (inputs)"))
    for a, b in pairs:
        if b in inputs:  # it would show up reversed
            raise ValueError(f"synonyms: the answer {b!r} of {a!r} is also an input")
    return [{"input": a, "output": b} for a, b in pairs]


def make_plurals(src: Path, rng: random.Random) -> list[dict]:
    pairs = table(src, "plurals", "singular", "plural")
    unique((s for s, _ in pairs), "singular_to_plural")
    return [{"input": s, "output": p} for s, p in pairs]


def make_translation_en_fr(src: Path, rng: random.Random) -> list[dict]:
    pairs = table(src, "translations_en_fr", "english", "french")
    unique((en for en, _ in pairs), "translation_en-fr")
    return [{"input": en, "possible_translations": cells(fr, f"French for {en!r}")} for en, fr in pairs]


def make_cause_and_effect(src: Path, rng: random.Random) -> list[dict]:
    """A cause and its effect; the loader shows both in a seeded order and asks for the cause."""
    pairs = table(src, "causes_effects", "cause", "effect")
    unique((s for pair in pairs for s in pair), "cause_and_effect sentences")
    for pair in pairs:
        for s in pair:
            if s.count(".") != 1 or not s.endswith("."):  # normalisation keeps the text before the first '.'
                raise ValueError(f"cause_and_effect: {s!r} must be one sentence ending in its only '.'")
    return [{"cause": c, "effect": e} for c, e in pairs]


def make_rhymes(src: Path, rng: random.Random) -> list[dict]:
    """Every word of a rhyme family -> the rest of its family."""
    families = [cells(f, "rhyme family") for (f,) in table(src, "rhymes", "family")]
    unique((w for f in families for w in f), "rhymes")
    return [{"input": w, "other_rhymes": [o for o in f if o != w]} for f in families for w in f]


# ---------------------------------------------------------------------------------------------------------------------
# larger_animal: a pair is only asked when the size classes are two or more apart, so the answer holds for any breed
# or species the name could mean

def make_larger_animal(src: Path, rng: random.Random) -> list[dict]:
    classes = table(src, "animal_sizes", "class", "typical_adult_mass", "animals")
    named = [(int(c), a) for c, _, names in classes for a in cells(names, f"animals of class {c}")]
    unique((a for _, a in named), "animals")
    size = {a: c for c, a in named}
    animals = sorted(size)
    pairs = [(a, b) for i, a in enumerate(animals) for b in animals[i + 1 :] if abs(size[a] - size[b]) >= 2]
    out = []
    for a, b in rng.sample(pairs, 300):
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        out.append({"input": f"{first}, {second}", "output": a if size[a] > size[b] else b})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# sum, diff, num_to_verbal: seeded numbers

def make_sum(src: Path, rng: random.Random) -> list[dict]:
    pairs = rng.sample([(a, b) for a in range(1, 100) for b in range(1, 100)], 300)
    return [{"input": f"{a} {b}", "output": str(a + b)} for a, b in pairs]


def make_diff(src: Path, rng: random.Random) -> list[dict]:
    pairs = rng.sample([(a, b) for a in range(2, 100) for b in range(1, a)], 300)
    return [{"input": f"{a} {b}", "output": str(a - b)} for a, b in pairs]


ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def verbal(n: int) -> str:
    """0 <= n < 10000 in words, e.g. 2345 -> 'two thousand three hundred forty-five'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + (f"-{ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        return f"{ONES[n // 100]} hundred" + (f" {verbal(n % 100)}" if n % 100 else "")
    return f"{ONES[n // 1000]} thousand" + (f" {verbal(n % 1000)}" if n % 1000 else "")


def make_num_to_verbal(src: Path, rng: random.Random) -> list[dict]:
    numbers = rng.sample(range(1, 100), 60) + rng.sample(range(100, 1000), 90) + rng.sample(range(1000, 10000), 150)
    rng.shuffle(numbers)
    return [{"input": str(n), "output": verbal(n)} for n in numbers]


# ---------------------------------------------------------------------------------------------------------------------
# negation and active_to_passive: sentences composed from parts

NUMBERS = ("singular", "plural")  # the values of a `number` column


def make_negation(src: Path, rng: random.Random) -> list[dict]:
    """A subject and a predicate make a sentence; the answer puts "not" (or "does not"/"do not") in it."""
    subjects = table(src, "negation_subjects", "subject", "number")
    verbs = table(src, "negation_verbs", "third_person", "base")
    states = [s for (s,) in table(src, "negation_states", "state")]  # what follows "is"/"are"
    pairs = []
    for subj, number in subjects:
        plural = one_of(number, NUMBERS, f"number of {subj!r}") == "plural"
        for third, base in verbs:
            affirm = f"{subj} {base if plural else third}."
            pairs.append((affirm, f"{subj} {'do' if plural else 'does'} not {base}."))
        for state in states:
            be = "are" if plural else "is"
            pairs.append((f"{subj} {be} {state}.", f"{subj} {be} not {state}."))
    return [{"input": a, "output": n} for a, n in rng.sample(pairs, 300)]


def make_active_to_passive(src: Path, rng: random.Random) -> list[dict]:
    """Agent + verb + an object that fits the verb; the answer is the passive with "by"."""
    agents = [a for (a,) in table(src, "passive_agents", "agent")]
    verbs = table(src, "passive_verbs", "past", "participle", "object", "number")
    unique((f"{past} {obj}" for past, _, obj, _ in verbs), "active_to_passive (verb and object)")
    participle_of: dict[str, str] = {}
    pairs = []
    for past, participle, obj, number in verbs:
        if participle_of.setdefault(past, participle) != participle:
            raise ValueError(f"active_to_passive: {past!r} has two participles")
        plural = one_of(number, NUMBERS, f"number of {obj!r}") == "plural"
        for agent in agents:
            active = cap(f"{agent} {past} {obj}.")
            passive = cap(f"{obj} {'were' if plural else 'was'} {participle} by {agent}.")
            pairs.append((active, passive))
    return [{"input": a, "output": p} for a, p in rng.sample(pairs, 300)]


# ---------------------------------------------------------------------------------------------------------------------
# taxonomy_animal: six words, two to four of them animals; the answer lists the animals in the order given

def make_taxonomy_animal(src: Path, rng: random.Random) -> list[dict]:
    words = table(src, "taxonomy_words", "word", "kind")
    unique((w for w, _ in words), "taxonomy_animal words")
    animals = [w for w, kind in words if one_of(kind, ("animal", "other"), f"kind of {w!r}") == "animal"]
    others = [w for w, kind in words if kind == "other"]
    seen: set[str] = set()
    out = []
    while len(out) < 300:
        n_animals = rng.randint(2, 4)
        drawn = rng.sample(animals, n_animals) + rng.sample(others, 6 - n_animals)
        rng.shuffle(drawn)
        text = ", ".join(drawn)
        if text in seen:
            continue
        seen.add(text)
        out.append({"input": text, "output": ", ".join(w for w in drawn if w in animals)})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# orthography_starts_with: a sentence and a letter "[x]"; the answer lists the sentence's words starting with it

SLOTS = ("subject_adjective", "subject", "verb", "object_adjective", "object", "preposition", "place", "name", "time")


def ortho_sentence(words: dict[str, list[str]], rng: random.Random) -> str:
    """One sentence from one of two templates (see orthography_words.tsv), filled with seeded choices."""
    verb, oadj, obj = rng.choice(words["verb"]), rng.choice(words["object_adjective"]), rng.choice(words["object"])
    prep, place = rng.choice(words["preposition"]), rng.choice(words["place"])
    if rng.random() < 0.5:
        subject = f"The {rng.choice(words['subject_adjective'])} {rng.choice(words['subject'])}"
        return f"{subject} {verb} the {oadj} {obj} {prep} the {place}."
    article = "an" if oadj[0] in "aeiou" else "a"
    name = rng.choice(words["name"])
    return f"{name} {verb} {article} {oadj} {obj} {prep} the {place} {rng.choice(words['time'])}."


def make_orthography_starts_with(src: Path, rng: random.Random) -> list[dict]:
    rows = table(src, "orthography_words", "slot", "words")
    words = {slot: cells(ws, f"orthography slot {slot!r}") for slot, ws in rows}
    if sorted(words) != sorted(SLOTS):
        raise ValueError(f"orthography_words: the slots must be {', '.join(SLOTS)}")
    seen: set[str] = set()
    out = []
    while len(out) < 300:
        sentence = ortho_sentence(words, rng)
        if sentence in seen:
            continue
        seen.add(sentence)
        hits: dict[str, dict[str, str]] = {}  # letter -> {lower-cased word: the word as written}, in sentence order
        for w in sentence.rstrip(".").split():
            hits.setdefault(w[0].lower(), {}).setdefault(w.lower(), w)
        letters = sorted(x for x, ws in hits.items() if set(ws) - {"the", "a", "an"})  # never an article alone
        letter = rng.choices(letters, weights=[len(hits[x]) for x in letters])[0]  # letters with more words more often
        out.append({"input": f"{sentence} [{letter}]", "output": ", ".join(hits[letter].values())})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# common_concept: a few items drawn from one concept; the answers are every concept that holds all of them

EXAMPLES_PER_CONCEPT = 5


def make_common_concept(src: Path, rng: random.Random) -> list[dict]:
    rows = table(src, "concepts", "concept", "members")
    concepts = unique((c for c, _ in rows), "concepts")
    members = {c: cells(items, c) for c, items in rows}
    seen: set[tuple[str, ...]] = set()
    out = []
    for concept in concepts:
        made = 0
        while made < EXAMPLES_PER_CONCEPT:
            items = rng.sample(members[concept], rng.choice([3, 4]))
            key = tuple(sorted(items))
            if key in seen:
                continue
            seen.add(key)
            made += 1
            others = [c for c in concepts if c != concept and set(items) <= set(members[c])]
            out.append({"items": items, "all_common_concepts": [concept] + others})
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# The tasks, the split and the files

TASKS: dict[str, Maker] = {
    "active_to_passive": make_active_to_passive,
    "antonyms": make_antonyms,
    "cause_and_effect": make_cause_and_effect,
    "common_concept": make_common_concept,
    "diff": make_diff,
    "first_word_letter": letter_task(lambda w: w[0]),
    "larger_animal": make_larger_animal,
    "letters_list": letter_task(lambda w: " ".join(w)),
    "negation": make_negation,
    "num_to_verbal": make_num_to_verbal,
    "orthography_starts_with": make_orthography_starts_with,
    "rhymes": make_rhymes,
    "second_word_letter": letter_task(lambda w: w[1]),
    "singular_to_plural": make_plurals,
    "sum": make_sum,
    "synonyms": make_synonyms,
    "taxonomy_animal": make_taxonomy_animal,
    "translation_en-fr": make_translation_en_fr,
}
MAX_EXECUTE = 100  # the paper's test set is at most 100 examples
MIN_INDUCE, MIN_EXECUTE = 100, 50


def input_key(example: dict) -> str:
    """What counts as an example's input when checking the splits for overlap."""
    if "cause" in example:  # both sentences, shown in either order
        return " || ".join(sorted([example["cause"], example["effect"]]))
    if "items" in example:  # the items, in any order
        return ", ".join(sorted(example["items"]))
    return example["input"]


def split(name: str, examples: list[dict], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Shuffle, then one third (at most MAX_EXECUTE) to execute and the rest to induce; check sizes and overlap."""
    unique((input_key(e) for e in examples), f"{name} inputs")
    examples = list(examples)
    rng.shuffle(examples)
    n_execute = min(MAX_EXECUTE, len(examples) // 3)
    execute, induce = examples[:n_execute], examples[n_execute:]
    if len(induce) < MIN_INDUCE or len(execute) < MIN_EXECUTE:
        raise ValueError(
            f"{name}: {len(induce)} induce / {len(execute)} execute, fewer than {MIN_INDUCE} / {MIN_EXECUTE}"
        )
    return induce, execute


def write_split(path: Path, examples: list[dict], reference: str) -> None:
    """One split file in the benchmark's format; the metadata also carries the task's hand-written instruction."""
    body = {"metadata": {"num_examples": len(examples), "reference_instruction": reference},
            "examples": {str(i): e for i, e in enumerate(examples, 1)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(body, f, indent=1, ensure_ascii=False)
        f.write("\n")


def make_all(out: Path = OUT, seed: int = SEED, src: Path = SOURCES) -> dict[str, tuple[int, int]]:
    """Write every task's two files under ``out`` from the facts in ``src``; returns {task: (n_induce, n_execute)}."""
    sizes = {}
    references = dict(table(src, "reference_instructions", "task", "instruction"))
    missing = sorted(set(TASKS) - set(references))
    if missing:
        raise ValueError(f"{src / 'reference_instructions.tsv'}: no reference instruction for {', '.join(missing)}")
    for name in sorted(TASKS):
        rng = random.Random(f"izkit-data:{seed}:{name}")  # one stream per task: the maker's draws, then the split's
        induce, execute = split(name, TASKS[name](src, rng), rng)
        write_split(out / "induce" / f"{name}.json", induce, references[name])
        write_split(out / "execute" / f"{name}.json", execute, references[name])
        sizes[name] = (len(induce), len(execute))
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write induce/ and execute/ (default: data/)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed (default {SEED}, the committed files)")
    parser.add_argument("--sources", type=Path, default=SOURCES, help="the facts files (default: data/sources/)")
    args = parser.parse_args(argv)
    sizes = make_all(args.out, args.seed, args.sources)
    width = max(map(len, sizes))
    for name, (n_induce, n_execute) in sizes.items():
        print(f"{name:<{width}}  induce {n_induce:>3}  execute {n_execute:>3}")


if __name__ == "__main__":
    main()
