"""Tests for izkit.cleaner: a raw continuation cut down to one instruction, and when a row may stop decoding."""

from __future__ import annotations

import logging
import random

import pytest

from izkit.cleaner import EMPTY_PLACEHOLDER, clean_instruction, instruction_complete, lead_of


@pytest.mark.parametrize(
    "raw, expected",
    [
        (" reverse the word.\n\nInput: up\nOutput: down", "reverse the word."),  # the usual shape
        (' "write the opposite of the word."', "write the opposite of the word."),  # leading quotes
        ("“give the antonym”", "give the antonym"),  # typographic quotes
        (" add one. Then add two. Then stop.", "add one."),  # several sentences
        ("\n\n  reverse the word.\nmore", "reverse the word."),  # newline first
        (" The instruction was to reverse the word.", "reverse the word."),  # echoed prompt
        (" reverse it Input: hot Output: cold", "reverse it"),  # echoed demo on the same line
        (" use a synonym, e.g. big for large. Done.", "use a synonym, e.g. big for large."),  # "e.g." is not an end
        (" list the animals:", "list the animals"),
        (" be to be to be to be to ...", EMPTY_PLACEHOLDER),  # a loop that leaves under 3 words: no instruction
        (" the the the the the the", EMPTY_PLACEHOLDER),
        (" find the word find the word find the word", "find the word"),  # cut where it repeats itself
        (" add one and two, add one and two, add one and two", "add one and two"),
        (" Sort The Words, sort the words, sort the", "Sort The Words"),  # compared without case or punctuation
    ],
)
def test_clean_instruction(raw, expected):
    assert clean_instruction(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        " reverse the word.\n\nInput: up\nOutput: down",
        " use a synonym, e.g. big for large. Done.",
        " add 0.5 to the number. Then stop.",
        "\n\n  reverse the word.\nmore",
        ' "The instruction was to reverse the word." And more.',
        " reverse it Input: hot Output: cold",
        " write the letter J. Smith wrote. More",
        " list the animals:\n- cat",
        " no end in sight and no newline either",
        " be to be to be to. Then more",
    ],
)
def test_stopping_when_complete_never_changes_the_cleaned_instruction(raw):
    """The generator stops a row at the first prefix that instruction_complete accepts: cleaning must agree."""
    cut = next((i for i in range(1, len(raw) + 1) if instruction_complete(raw[:i])), len(raw))
    assert clean_instruction(raw[:cut]) == clean_instruction(raw)
    if "\n" in raw.strip() or "." in raw:
        assert cut < len(raw)  # and it does stop early where it can


def test_instruction_complete_waits_for_the_end_of_the_sentence():
    assert not instruction_complete(" reverse the word")
    assert not instruction_complete(" reverse the word.")  # "word.com" may follow
    assert instruction_complete(" reverse the word. ")
    assert not instruction_complete("\n\n reverse")  # a leading newline does not end it
    assert instruction_complete(" reverse\n")
    assert not instruction_complete(" use a synonym, e.g. big")  # "e.g." does not end a sentence


@pytest.mark.parametrize(
    "instruction",
    [
        "find the opposite of the given word.",
        "write the word and then write the word backwards.",  # words come back, but not as a loop
        "say that that is the answer.",
        "use the mouse to click on the mouse button to move the mouse to the target.",
        "add the following numbers to the following numbers: 1, 2, 3, 4, 5, 6, 7, 8",
        "take the first letter of each word, then the first letter of the next.",
    ],
)
def test_the_repetition_guard_leaves_normal_instructions_alone(instruction):
    assert clean_instruction(" " + instruction) == instruction


def test_a_loop_is_cut_only_once_it_repeats_four_words():
    assert clean_instruction(" be to be to be to ") == EMPTY_PLACEHOLDER  # a loop, and "be to" is no instruction
    assert clean_instruction(" be to be to be today") == "be to be to be today"
    assert clean_instruction(" be to be to") == "be to be to"  # 2 words repeated: too short to call a loop
    assert not instruction_complete(" be to be to be to be to be to")  # a loop runs on: rows keep their draws
    assert instruction_complete(" be to be to be to be to be to ", loops=True)  # greedy rows stop at a whole loop
    assert not instruction_complete(" be to be to be t", loops=True)  # "t" may yet grow: not a whole loop yet
    assert not instruction_complete(" be to be to", loops=True)  # not yet a loop of four words


@pytest.mark.parametrize("words", [[" be", " to"], [" be", " to", " a"], [" a", " b", " c", "d"],
                                   [" the", " instruction", " was", " to", " write"]])
def test_a_settled_loop_is_cut_where_any_continuation_would_cut_it(words):
    """Greedy rows stop as soon as instruction_complete(loops=True) says so: whatever the model would have written
    next, cleaning gives the same instruction. Checked on 3,000 random texts made of few words (loops galore),
    each continued 10 ways (with sentence ends, line breaks, echoed labels and word endings)."""
    rng = random.Random(0)
    endings = words + ["s", ".", " .", "\n", " Input:"]
    settled = 0
    for _ in range(3000):
        raw = "".join(rng.choice(words) for _ in range(rng.randint(1, 20)))
        raw = (" The instruction was to" + raw) if rng.random() < 0.3 else raw
        if not instruction_complete(raw, loops=True):
            continue
        settled += not instruction_complete(raw)
        for _ in range(10):
            more = raw + "".join(rng.choice(endings) for _ in range(rng.randint(1, 12)))
            assert clean_instruction(more) == clean_instruction(raw), (raw, more)
    assert settled > 50  # the loop rule itself was exercised, not only the sentence rule


def test_clean_instruction_never_returns_empty_silently(caplog):
    with caplog.at_level(logging.WARNING, logger="izkit.cleaner"):
        assert clean_instruction("   \n\n ") == EMPTY_PLACEHOLDER
        assert clean_instruction("") == EMPTY_PLACEHOLDER
        assert clean_instruction(' "" ') == '""'  # nothing left after cleaning: the raw text, flagged
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


def test_the_lead_is_the_templates_last_words_and_only_it_is_dropped():
    assert lead_of("{demos}\n\nThe instruction was to") == "The instruction was to"
    assert lead_of("{demos}\n\nThe instruction was to?") == "The instruction was to"  # a chat turn's question
    assert lead_of("I gave a friend ...\n\n{demos}\n\nThe rule is:") == "The rule is:"
    assert clean_instruction(" The rule is: add one.", "The rule is:") == "add one."
    assert clean_instruction(" The rule is: add one.") == "The rule is: add one."  # another lead is not dropped
    assert instruction_complete(" The rule is: add one. ", "The rule is:")


@pytest.mark.parametrize("raw, kept", [
    ("To transform each input above into its output, you need to add the two numbers together.",
     "Add the two numbers together."),
    ("To turn each input into its output, you simply replace each word with its plural.",
     "Replace each word with its plural."),
    ("Write a function that takes two integers and returns their sum.",
     "Write a function that takes two integers and returns their sum."),
    ("Translate each input above into French.", "Translate each input above into French."),
    ("Turn each input above into its output.", EMPTY_PLACEHOLDER),  # the request's own words
    ("No code, no explanation.", EMPTY_PLACEHOLDER),
    ("To convert each input above into its output, you need to follow these steps:\n\n1. Split", EMPTY_PLACEHOLDER),
    ("To turn each input into its output, you can use the following instruction:\n\n", EMPTY_PLACEHOLDER),
    ("Input:", EMPTY_PLACEHOLDER),
    ("1. Convert", EMPTY_PLACEHOLDER),
])
def test_an_answer_to_the_sentence_prompts_request_is_read_as_an_answer(raw, kept):
    """Rule 7: after a prompt ending in a request (izkit.prompts' sentence), a restated request is dropped and an
    answer that restates, announces or echoes states no instruction; the paper's cue prompt keeps its rules."""
    from izkit.prompts import INSTRUCTZERO_TEMPLATE, SENTENCE_TEMPLATE

    assert clean_instruction(raw, lead_of(SENTENCE_TEMPLATE)) == kept
    cue = clean_instruction(raw, lead_of(INSTRUCTZERO_TEMPLATE))
    assert cue != EMPTY_PLACEHOLDER and not (kept != raw.strip() and cue == kept)  # rule 7 is the request's alone
