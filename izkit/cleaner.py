"""The instruction cleaner: the generator's raw continuation cut down to one instruction sentence.

The generator (``izkit.generator``) prompts the open model with exemplars followed by a lead such as ``The
instruction was to`` and lets it continue. A small model rarely stops where the instruction ends: it goes on to a
second sentence, echoes the prompt (``Input: ... Output: ...``), opens with quotes, repeats the lead, or loops ("find
the word find the word ..."). The black box would read all of that as the instruction, so every continuation is cut,
by these rules, in this order:

1. skip blank lines before the text, and an echoed lead at its start (after any opening quote);
2. keep the first line;
3. cut before an echoed ``Input:``, ``Output:`` or ``Instruction:``;
4. keep the first sentence (a '.', '!' or '?' followed by a space; "e.g." and initials such as "J." end none);
5. cut where the text starts to loop, repeating its last words for at least :data:`REPEAT_NGRAM` words; a loop that
   leaves fewer than :data:`MIN_LOOP_WORDS` words is no instruction (:data:`EMPTY_PLACEHOLDER`);
6. strip quotes, spaces and a trailing ',', ';' or ':';
7. after a prompt that ends in a request rather than a cue (its last words a whole sentence, e.g. izkit.prompts'
   ``sentence``), the answer is read as one: a leading clause restating the request ("To turn each input into its
   output, you need to ...") is dropped, and an answer that only announces what follows ("follow these steps", "use
   the following instruction:"), a bare label or list number ("Input:", "1."), or one whose every word is the
   request's own ("Turn each input above into its output.", "No code, no explanation.") is no instruction
   (:data:`EMPTY_PLACEHOLDER`).

The cleaner never returns an empty string: where nothing is left the raw text squashed to one line is kept, and a
blank continuation gives :data:`EMPTY_PLACEHOLDER`, each with a warning.

:func:`instruction_complete` tells the decoder when a row can stop early: once more text could not change what
:func:`clean_instruction` keeps. Both take the same ``lead``: the prompt's last words, which the model may echo.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

DEFAULT_LEAD = "The instruction was to"  # the last words of the paper's prompt (and of APE's forward template)
EMPTY_PLACEHOLDER = "(no instruction generated)"  # returned, with a warning, when the model wrote only whitespace
REPEAT_NGRAM = 4  # an instruction ends where it starts repeating itself for this many words (a loop)
MIN_LOOP_WORDS = 3  # what is left before a loop must have this many words to count as an instruction

_QUOTES = "\"'`“”‘’«»"
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "dr.", "no.", "st.", "approx.")
_ECHO_MARKERS = ("Input:", "Output:", "Instruction:")  # the prompt's own labels: the model is echoing a demo
_WORD_EDGES = _QUOTES + ".,;:!?()[]"  # ignored when words are compared for repeats


def clean_instruction(raw: str, lead: str = DEFAULT_LEAD) -> str:
    """Turn the generator's raw continuation into one instruction sentence (the module docstring's rules).

    Examples: ``' "reverse the word." Input: up'`` -> ``'reverse the word.'``; ``' The instruction was to add one.
    Then two.'`` -> ``'add one.'``; ``' find the word find the word find the word'`` -> ``'find the word'``;
    ``' be to be to be to'`` -> :data:`EMPTY_PLACEHOLDER`.
    """
    text = _after_lead(raw, lead).split("\n", 1)[0].strip()  # the first non-blank line
    for marker in _ECHO_MARKERS:
        pos = text.find(marker)
        if pos >= 0:
            text = text[:pos].strip()
    text = _first_sentence(text)
    if _is_request(lead):
        text = _answer(text, lead)
        if not text:
            logger.debug("the answer %r restates or announces, and states no instruction", raw)
            return EMPTY_PLACEHOLDER
    loop = _repeat_start(text)
    if loop is not None:
        text = text[:loop]
    text = text.strip().strip(_QUOTES).strip()
    if text and text[-1] in _QUOTES + ",;:":
        text = text.rstrip(_QUOTES + ",;:").strip()
    if loop is not None and len(text.split()) < MIN_LOOP_WORDS:  # "be to be to ...": a loop, not an instruction
        logger.debug("the generator looped (%r); returning %r", raw, EMPTY_PLACEHOLDER)
        return EMPTY_PLACEHOLDER
    if text:
        return text
    squashed = " ".join(raw.split())
    if squashed:
        logger.warning("cleaning left nothing of the generated text %r; keeping it as is", raw)
        return squashed
    logger.warning("the generator produced only whitespace (%r); returning %r", raw, EMPTY_PLACEHOLDER)
    return EMPTY_PLACEHOLDER


def instruction_complete(raw: str, lead: str = DEFAULT_LEAD, loops: bool = False) -> bool:
    """True once more text could not change :func:`clean_instruction` of ``raw``: the first line has ended, an echoed
    ``Input:``/``Output:`` has begun, or the first sentence has ended (a sentence end followed by whitespace); with
    ``loops``, also once the text loops where no further text can move the loop's start (:func:`_loop_settled`).

    Loops end only greedy rows early (``loops=True``): a sampled row that left the batch sooner would shift the random
    draws of the rows still decoding, so every other sampled instruction would change too."""
    after = _after_lead(raw, lead)  # trailing whitespace kept: it is what confirms a sentence end
    first = after.split("\n", 1)[0]
    if "\n" in after or any(marker in first for marker in _ECHO_MARKERS):
        return True
    if len(_first_sentence(first)) < len(first):
        return True
    return loops and _lead_settled(raw, lead) and _loop_settled(first)


def _lead_settled(raw: str, lead: str) -> bool:
    """Whether more text could still change if ``raw`` opens with an echoed ``lead`` (it is a prefix of it)."""
    bare = raw.lstrip().lstrip(_QUOTES).lstrip().lower()
    return not lead or len(bare) > len(lead) or not lead.lower().startswith(bare)


def _loop_settled(text: str, n: int = REPEAT_NGRAM) -> bool:
    """True when ``text`` loops (:func:`_repeat_start`) and no further text can move where the loop starts.

    Only whole words count (a last word not yet followed by a space may still grow). Words are tried in order, as
    :func:`_repeat_start` tries them: the first that starts a whole repeat settles the cut; one that so far repeats
    its period but is not yet a whole repeat might still become an earlier loop, so nothing is settled yet."""
    words = text.split()
    if text and not text[-1].isspace():
        words = words[:-1]  # the last word may still grow
    words = [w.lower().strip(_WORD_EDGES) for w in words]
    for j in range(1, len(words)):
        pending = False
        for p in range(1, j + 1):
            length = max(p, n)
            seen = min(length, len(words) - j)
            if all(words[j + t] == words[j + t - p] for t in range(seen)):
                if seen == length:
                    return True  # the earliest loop, whole
                pending = True
        if pending:
            return False  # word j may yet start a loop when more words come
    return False


def lead_of(template: str) -> str:
    """The last words of a prompt template, after its last placeholder: what the model may echo before the
    instruction. ``"{demos}\\n\\nThe instruction was to?"`` -> ``"The instruction was to"`` (a chat turn's question
    mark dropped)."""
    return template.rsplit("}", 1)[-1].strip().rstrip("?").rstrip()


def _after_lead(raw: str, lead: str) -> str:
    """``raw`` without leading whitespace and without an echoed ``lead`` at its start (after any opening quote)."""
    text = raw.lstrip()
    if lead:
        bare = text.lstrip(_QUOTES).lstrip()
        if bare.lower().startswith(lead.lower()):
            text = bare[len(lead) :].lstrip()
    return text


_RESTATED = re.compile(r"^to\s[^,]{1,80},\s*you\s+(?:(?:need|have)\s+to\s+|must\s+|should\s+|can\s+|simply\s+|"
                       r"just\s+)*", re.IGNORECASE)  # "To turn each input into its output, you need to "
_ANNOUNCES = re.compile(r"(?:\bthese steps|\bthe following\b.*|\bas follows|:)\s*$", re.IGNORECASE)
_LABEL = re.compile(r"(?:\w+:|\d+[.)]?)", re.IGNORECASE)  # "Input:", "1."


def _is_request(lead: str) -> bool:
    """Whether a prompt's last words are a request (a whole sentence) rather than a cue the model completes."""
    return lead.rstrip().endswith((".", "!"))


def _words(text: str) -> set[str]:
    """Lower-case words without edge punctuation or a plural 's' (so "turns" and "turn" are one word)."""
    return {w.lower().strip(_WORD_EDGES).removesuffix("s") for w in text.split()} - {""}


def _answer(text: str, request: str) -> str:
    """Rule 7: the instruction an answer to ``request`` states, or "" when it states none."""
    text = _RESTATED.sub("", text.strip(), count=1)
    text = text[:1].upper() + text[1:]
    bare = text.strip().strip(_QUOTES).strip()
    if not bare or _LABEL.fullmatch(bare) or _ANNOUNCES.search(bare.rstrip(".")) or _words(bare) <= _words(request):
        return ""
    return text


def _first_sentence(text: str) -> str:
    """The text up to the first '.', '!' or '?' (with any closing quote) that is followed by a space and ends a
    sentence."""
    for match in re.finditer(r"[.!?][\"'”’»)]*(?=\s)", text):  # a closing quote may follow the full stop
        end = match.end()
        word = text[:end].rsplit(None, 1)[-1].lower().strip(_QUOTES + "()")
        if word in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", word):
            continue  # "e.g." or an initial such as "J." does not end a sentence
        return text[:end]
    return text


def _repeat_start(text: str, n: int = REPEAT_NGRAM) -> int | None:
    """Where a loop begins: the character offset of the first word from which the text repeats, word for word, what
    it wrote ``p`` words earlier, for one whole period and at least ``n`` words (compared without case or edge
    punctuation); None when there is no loop."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    words = [text[s:e].lower().strip(_WORD_EDGES) for s, e in spans]
    for j in range(1, len(words)):
        for p in range(1, j + 1):
            length = max(p, n)  # the repeat: words j .. j + length - 1 equal the words p earlier
            if j + length <= len(words) and all(words[j + t] == words[j + t - p] for t in range(length)):
                return spans[j][0]
    return None
