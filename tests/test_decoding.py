"""Tests for izkit.decoding: left padding, positions, the KV-cache keyword, stop tokens and batched decoding.

The stop rule is checked on a scripted fake model (no weights); agreement with ``model.generate`` on the embedded one.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch

from izkit.decoding import (
    Sampling,
    StopTokens,
    cache_kwargs,
    decode,
    left_pad,
    position_ids,
    stop_tokens,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------------------------------------------------
# Batches and positions


def test_left_pad_puts_the_padding_on_the_left():
    ids, mask = left_pad([[5, 6, 7], [8], []], pad_id=0)  # (3, 3), (3, 3)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long
    ids, mask = left_pad([(1, 2)], pad_id=9)  # tuples too
    assert ids.tolist() == [[1, 2]] and mask.tolist() == [[1, 1]]
    assert left_pad([[], []], pad_id=0)[0].shape == (2, 0)


def test_positions_skip_the_padding():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [1, 0, 1, 1]])  # (3, 4)
    assert position_ids(mask).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3], [0, 0, 1, 2]]


def test_cache_kwargs_hand_the_cache_by_the_name_the_forward_takes():
    class New(torch.nn.Module):  # transformers from the rename on
        def forward(self, input_ids=None, cache=None, use_cache=None):
            return cache

    class Old(torch.nn.Module):  # transformers 5.0 and 4.x
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):
            return past_key_values

    assert cache_kwargs(New(), "C") == {"cache": "C"} and New()(**cache_kwargs(New(), "C")) == "C"
    assert cache_kwargs(Old(), "C") == {"past_key_values": "C"} and Old()(**cache_kwargs(Old(), "C")) == "C"


# ----------------------------------------------------------------------------------------------------------------------
# The stop rule, on a scripted model

PAD, EOS, NL, HOT, SPACE, COLD_NL, A, B, C, D = range(10)  # a ten-token vocabulary
V = 10


def table(*ids: int) -> torch.Tensor:
    mask = torch.zeros(V, dtype=torch.bool)  # (V,)
    mask[list(ids)] = True
    return mask


LINE_RULE = StopTokens(now=table(EOS), newline=table(NL, COLD_NL), blank=table(PAD, EOS, NL, SPACE),
                       ends_line=table(COLD_NL))


class ScriptCache:
    """Stands in for a KV cache: remembers each row's script and follows the rows decode keeps."""

    def __init__(self) -> None:
        self.rows: torch.Tensor | None = None  # (a,) the script of each active row
        self.step = 0
        self.layers = [self]

    def batch_select_indices(self, rows: torch.Tensor) -> None:
        self.rows = self.rows[rows]


class ScriptedLM(torch.nn.Module):
    """A row whose prompt ends with token s writes SCRIPTS[s], one token per call, then EOS."""

    def __init__(self, scripts: dict[int, list[int]]) -> None:
        super().__init__()
        self.scripts = scripts

    def forward(self, input_ids=None, cache=None, **_):
        if cache.rows is None:
            cache.rows = input_ids[:, -1].clone()  # (B,)
        script = [self.scripts[int(r)] for r in cache.rows]
        nxt = torch.tensor([s[cache.step] if cache.step < len(s) else EOS for s in script])  # (a,)
        cache.step += 1
        logits = torch.full((len(nxt), 1, V), -1e9)  # (a, 1, V)
        logits[torch.arange(len(nxt)), 0, nxt] = 0.0
        return SimpleNamespace(logits=logits)


def run(scripts: dict[int, list[int]], starts: list[int], stop: StopTokens = LINE_RULE, max_new: int = 8):
    ids, mask = left_pad([[s] for s in starts], PAD)  # (B, 1)
    return decode(ScriptedLM(scripts), mask, max_new, stop, input_ids=ids, past_key_values=ScriptCache())


def test_a_newline_before_any_text_does_not_end_the_answer():
    rows = run({A: [NL, HOT, NL, C, C]}, [A])
    assert rows == [[NL, HOT, NL]]  # "\nhot\n": the first newline is skipped, the second one ends the line


def test_blank_tokens_are_no_text_and_text_then_newline_ends_at_once():
    scripts = {A: [SPACE, NL, SPACE, NL, HOT, SPACE, NL], B: [COLD_NL, HOT], C: [HOT, EOS, HOT], D: [NL] * 9}
    rows = run(scripts, [A, B, C, D])
    assert rows[0] == [SPACE, NL, SPACE, NL, HOT, SPACE, NL]
    assert rows[1] == [COLD_NL]  # "cold.\n" holds text, then a newline
    assert rows[2] == [HOT, EOS]  # EOS ends any row
    assert rows[3] == [NL] * 8  # only blank lines: runs to max_new_tokens


def test_rows_keep_their_own_state_when_others_leave_the_batch():
    scripts = {A: [HOT, NL], B: [NL, NL, HOT, NL], C: [NL, HOT, HOT, HOT, NL]}
    together = run(scripts, [A, B, C])
    assert together == [[HOT, NL], [NL, NL, HOT, NL], [NL, HOT, HOT, HOT, NL]]
    assert together == [run(scripts, [s])[0] for s in (A, B, C)]


def test_without_the_line_rule_only_eos_stops():
    rows = run({A: [HOT, NL, HOT, EOS, HOT]}, [A], stop=StopTokens(now=table(EOS)))
    assert rows == [[HOT, NL, HOT, EOS]]


def test_is_done_ends_a_row_early():
    ids, mask = left_pad([[A], [B]], PAD)
    rows = decode(ScriptedLM({A: [HOT] * 9, B: [C] * 9}), mask, 8, StopTokens(now=table(EOS)), input_ids=ids,
                  past_key_values=ScriptCache(), is_done=lambda toks: toks[-1] == HOT and len(toks) == 2)
    assert rows == [[HOT, HOT], [C] * 8]


# ----------------------------------------------------------------------------------------------------------------------
# Stop tokens of a real tokenizer


def test_token_classes_agree_with_decoding_each_token(embedded):
    _, tok = embedded
    stop = stop_tokens(tok, one_line=True)
    assert stop.now.nonzero().flatten().tolist() == [tok.eos_token_id]
    drawn = torch.randperm(len(tok), generator=torch.Generator().manual_seed(0))[:3000].tolist()
    typed = tok.encode(" \n \n\n\t hot.\n", add_special_tokens=False)
    sample = sorted(set(stop.newline.nonzero().flatten().tolist()) | set(drawn) | set(typed))
    special = set(tok.all_special_ids)
    for i in sample:
        text = tok.decode([i])
        if i in special:
            assert stop.blank[i] and not stop.newline[i]
            continue
        assert bool(stop.newline[i]) == ("\n" in text or "\r" in text), (i, text)
        assert bool(stop.blank[i]) == (text.strip() == ""), (i, text)
        assert bool(stop.ends_line[i]) == (text.strip() != "" and any(c in text.lstrip() for c in "\r\n")), (i, text)


def test_newline_tokens_cover_single_and_multiple_newlines(embedded):
    _, tok = embedded
    newline = stop_tokens(tok, one_line=True).newline  # (V,)
    for text in ["\n", "\n\n", "\n\n\n"]:
        assert newline[tok.encode(text, add_special_tokens=False)[0]]
    assert not newline[tok.encode(" cold", add_special_tokens=False)[0]]


# ----------------------------------------------------------------------------------------------------------------------
# The embedded model


def _prompts(tok, texts):
    return left_pad(tok(texts)["input_ids"], tok.pad_token_id)  # (B, T), (B, T)


def test_decode_matches_model_generate(embedded):
    model, tok = embedded
    ids, mask = _prompts(tok, ["Input: hot\nOutput: cold\n\nInput: big\nOutput:", "The opposite of up is", "Hi"])
    with torch.inference_mode():
        ref = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[:, ids.shape[1] :]
    rows = decode(model, mask, 10, stop_tokens(tok), input_ids=ids)
    for r, row in enumerate(rows):
        assert row == ref[r, : len(row)].tolist()


def test_seeded_sampling_is_repeatable_and_leaves_the_global_rng_alone(embedded):
    model, tok = embedded
    ids, mask = _prompts(tok, ["Write a word:"] * 3)
    state = torch.random.get_rng_state()
    first = decode(model, mask, 5, stop_tokens(tok), input_ids=ids, sampling=Sampling(seed=1))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert decode(model, mask, 5, stop_tokens(tok), input_ids=ids, sampling=Sampling(seed=1)) == first
    assert decode(model, mask, 5, stop_tokens(tok), input_ids=ids, sampling=Sampling(), seed=1) == first


def test_decode_runs_in_inference_mode_and_raises_no_deprecation_warning(embedded):
    model, tok = embedded
    ids, mask = _prompts(tok, ["Input: hot\nOutput:"])
    modes: list[bool] = []
    hook = model.register_forward_hook(lambda *_: modes.append(torch.is_inference_mode_enabled()))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = decode(model, mask, 4, StopTokens(now=torch.zeros(len(tok), dtype=torch.bool)), input_ids=ids)
    finally:
        hook.remove()
    assert len(rows[0]) == 4  # the cache was used for three steps after the prompt
    assert modes == [True] * 4  # decoding builds no autograd graph, whoever calls it
    assert not [w for w in caught if "past_key_values" in str(w.message)], [str(w.message) for w in caught]


def test_shared_prefix_length_counts_the_positions_every_row_begins_with():
    from izkit.decoding import shared_prefix_length

    base = torch.arange(12.0).view(1, 6, 2).repeat(3, 1, 1)  # (3, 6, 2): three identical rows
    ones = torch.ones(3, 6, dtype=torch.long)
    assert shared_prefix_length(base, ones) == 5  # all identical: the last position is kept to decode from
    differ = base.clone()
    differ[1, 4, 0] = -1.0  # row 1 differs at position 4
    assert shared_prefix_length(differ, ones) == 4
    padded = ones.clone()
    padded[2, 0] = 0  # a row padded on the left shares nothing
    assert shared_prefix_length(base, padded) == 0
