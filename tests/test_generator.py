"""Tests for izkit.generator: the random projection (step 1) and batched instruction generation (step 2)."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from izkit.generator import (
    APE_TEMPLATE,
    decode,
    EMPTY_PLACEHOLDER,
    RandomProjection,
    Sampling,
    SoftPromptGenerator,
    clean_instruction,
    instruction_complete,
    embedding_std,
    kv,
    newline_token_ids,
)
from izkit.tasks import Example

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEMOS = [Example(x, (y,)) for x, y in [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"),
                                       ("happy", "sad")]]
OTHER_DEMOS = [Example(x, (y,)) for x, y in [("cat", "cats"), ("mouse", "mice")]]


def _z(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 10, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # (n, 10)


# ----------------------------------------------------------------------------------------------------------------------
# RandomProjection


def test_projection_shape_seed_and_uniform_bounds():
    p = RandomProjection(d=10, n_tokens=5, hidden_size=16, kind="uniform", seed=3)
    assert p.A.shape == (10, 5 * 16)
    assert p.A.abs().max() <= 1.0 and p.A.min() < -0.9 and p.A.max() > 0.9  # U[-1, 1], as in the paper
    assert torch.equal(p.A, RandomProjection(d=10, n_tokens=5, hidden_size=16, seed=3).A)
    assert not torch.equal(p.A, RandomProjection(d=10, n_tokens=5, hidden_size=16, seed=4).A)
    z = _z(4, 0)
    out = p(z)
    assert out.shape == (4, 5, 16)
    torch.testing.assert_close(out[1].reshape(-1), z[1] @ p.A)  # p = z A, row by row
    assert p(z[0]).shape == (1, 5, 16)  # a single (d,) soft prompt


@pytest.mark.parametrize(
    "z, match",
    [
        (torch.zeros(2, 9), r"shape \(B, 10\).*got shape \(2, 9\)"),
        (torch.zeros(2, 3, 10), r"shape \(B, 10\)"),
        (torch.zeros(0, 10), "empty"),
        (torch.tensor([[0.0] * 9 + [1.5]]), r"\[-1, 1\]\^10; z\[0, 9\] = 1\.5"),
        (torch.tensor([[float("nan")] + [0.0] * 9]), r"z\[0, 0\] = nan"),
    ],
)
def test_projection_rejects_bad_z(z, match):
    p = RandomProjection(hidden_size=8)
    with pytest.raises(ValueError, match=match):
        p(z)


def test_projection_tolerates_rounding_at_the_bounds():
    p = RandomProjection(hidden_size=8)
    z = torch.ones(1, 10, dtype=torch.float64) * (1 + 1e-9)
    assert p.check_z(z).max().item() == 1.0  # clipped, not rejected


def test_normal_projection_matches_the_embedding_modules_spread(embedded):
    model, _ = embedded
    target = embedding_std(model)
    raw = float(model.get_input_embeddings().weight.std())
    assert target > 5 * raw  # Gemma scales by sqrt(640) inside the module: the raw weight would be far off
    p = RandomProjection.for_model(model, kind="normal", seed=1)
    assert p.hidden_size == 640 and p.kind == "normal"
    soft = p(_z(64, 1))  # (64, 5, 640)
    assert abs(float(soft.std()) / target - 1) < 0.2


# ----------------------------------------------------------------------------------------------------------------------
# Cleaning the continuation


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


def test_clean_instruction_never_returns_empty_silently(caplog):
    with caplog.at_level(logging.WARNING, logger="izkit.generator"):
        assert clean_instruction("   \n\n ") == EMPTY_PLACEHOLDER
        assert clean_instruction("") == EMPTY_PLACEHOLDER
        assert clean_instruction(' "" ') == '""'  # nothing left after cleaning: the raw text, flagged
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


# ----------------------------------------------------------------------------------------------------------------------
# Generation with the embedded model


@pytest.fixture(scope="module")
def gen(embedded):
    model, tokenizer = embedded
    return SoftPromptGenerator(model, tokenizer, RandomProjection.for_model(model, kind="uniform"), max_new_tokens=16)


def test_prompt_text_follows_the_paper(gen):
    text = gen.prompt_text(DEMOS[:2])
    assert text == "Input: hot\nOutput: cold\n\nInput: big\nOutput: small\n\nThe instruction was to"
    ape = SoftPromptGenerator(gen.model, gen.tokenizer, None, template=APE_TEMPLATE).prompt_text(DEMOS[:1])
    assert ape.startswith("I gave a friend an instruction and five inputs.") and ape.endswith(
        "pairs:\n\nInput: hot\nOutput: cold\n\nThe instruction was to"
    )
    with pytest.raises(ValueError, match="demos"):
        SoftPromptGenerator(gen.model, gen.tokenizer, None, template="no placeholder")


def test_embed_puts_bos_first_then_soft_tokens_then_text_with_left_padding(gen):
    soft = gen.projection(_z(2, 5))  # (2, 5, 640)
    texts = [gen.prompt_text(DEMOS), gen.prompt_text(OTHER_DEMOS)]
    embeds, mask = gen.embed(texts, soft)  # (2, L, 640), (2, L)
    emb = gen.model.get_input_embeddings()
    bos = emb(torch.tensor([[gen.tokenizer.bos_token_id]]))[0, 0]  # (640,)
    n_pad = int((mask[1] == 0).sum())
    assert mask[0].all() and n_pad > 0 and not mask[1, :n_pad].any()  # the shorter prompt is padded on the left
    for b, start in [(0, 0), (1, n_pad)]:
        torch.testing.assert_close(embeds[b, start], bos)
        torch.testing.assert_close(embeds[b, start + 1 : start + 6], soft[b])
    last = emb(torch.tensor([[gen.tokenizer("The instruction was to", add_special_tokens=False)["input_ids"][-1]]]))
    torch.testing.assert_close(embeds[0, -1], last[0, 0])  # the text is embedded by the module (scaled)


def test_batched_generation_equals_one_at_a_time_and_is_deterministic(gen):
    z = _z(4, 11)
    calls = gen.calls
    batched = gen.generate(z, DEMOS)
    assert gen.calls == calls + 1  # one model.generate call for the whole batch
    single = [gen.generate(z[i], DEMOS)[0] for i in range(4)]
    assert batched == single
    assert gen.generate(z, DEMOS) == batched  # same z -> same instructions
    assert all(isinstance(v, str) and v.strip() for v in batched)


def test_different_soft_prompts_give_different_instructions(gen):
    out = gen.generate(_z(6, 2), DEMOS)
    assert len(set(out)) >= 2


def test_per_row_exemplars_are_left_padded_and_match_single_calls(gen):
    z = _z(2, 7)
    batched = gen.generate(z, [DEMOS, OTHER_DEMOS])
    assert batched == [gen.generate(z[0], DEMOS)[0], gen.generate(z[1], OTHER_DEMOS)[0]]
    with pytest.raises(ValueError, match="3 exemplar lists for 2 rows"):
        gen.generate(z, [DEMOS, DEMOS, DEMOS])


def test_chunks_give_the_same_instructions(gen):
    z = _z(3, 4)
    calls = gen.calls
    chunked = gen.generate(z, DEMOS, batch_size=2, progress=False)
    assert gen.calls == calls + 2
    assert chunked == gen.generate(z, DEMOS)


def test_plain_path_greedy_and_seeded_sampling(gen):
    manual = gen.generate(None, DEMOS)
    assert len(manual) == 1 and manual == gen.generate_plain(DEMOS, n=1)
    s = Sampling(seed=5, num_per_call=4)
    first = gen.generate_plain(DEMOS, n=4, sampling=s)
    assert len(first) == 4 and all(v.strip() for v in first)
    assert gen.generate_plain(DEMOS, n=4, sampling=s) == first  # same seed -> same samples
    assert len(set(first)) >= 2  # sampling, not greedy


def test_generator_checks_its_inputs(gen):
    with pytest.raises(ValueError, match="width 16 but the model's hidden size is 640"):
        SoftPromptGenerator(gen.model, gen.tokenizer, RandomProjection(hidden_size=16))
    with pytest.raises(ValueError, match="no projection"):
        SoftPromptGenerator(gen.model, gen.tokenizer, None).generate(_z(1, 0), DEMOS)
    with pytest.raises(ValueError, match="at least one exemplar"):
        gen.prompt_text([])


def test_newline_tokens_cover_single_and_multiple_newlines(gen):
    ids = newline_token_ids(gen.tokenizer)
    for text in ["\n", "\n\n", "\n\n\n"]:
        assert gen.tokenizer.encode(text, add_special_tokens=False)[0] in ids
    assert gen.tokenizer.encode(" cold", add_special_tokens=False)[0] not in ids


def test_early_stop_gives_the_instructions_of_a_full_length_decode(gen):
    z = _z(4, 21)
    stopped = gen.generate(z, DEMOS)
    embeds, mask = gen.embed([gen.prompt_text(DEMOS)] * 4, gen.projection(z))
    stop = torch.zeros(len(gen.tokenizer), dtype=torch.bool)
    stop[gen.tokenizer.eos_token_id] = True
    full = decode(gen.model, mask, gen.max_new_tokens, stop, inputs_embeds=embeds)  # no early stop
    raw = gen.tokenizer.batch_decode(full, skip_special_tokens=True)
    assert stopped == [clean_instruction(r) for r in raw]
    assert sum(len(r) for r in gen.tokenizer(gen.last_raw)["input_ids"]) < sum(len(r) for r in full)


def test_kv_hands_the_cache_by_the_name_the_forward_takes():
    class New(torch.nn.Module):  # transformers from the rename on
        def forward(self, input_ids=None, cache=None, use_cache=None):
            return cache

    class Old(torch.nn.Module):  # transformers 5.0 and 4.x
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):
            return past_key_values

    assert kv(New(), "C") == {"cache": "C"} and New()(**kv(New(), "C")) == "C"
    assert kv(Old(), "C") == {"past_key_values": "C"} and Old()(**kv(Old(), "C")) == "C"


def test_decode_runs_in_inference_mode_and_raises_no_deprecation_warning(gen):
    embeds, mask = gen.embed([gen.prompt_text(DEMOS)], gen.projection(_z(1, 2)))
    stop = torch.zeros(len(gen.tokenizer), dtype=torch.bool)
    modes: list[bool] = []
    hook = gen.model.register_forward_hook(lambda *_: modes.append(torch.is_inference_mode_enabled()))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = decode(gen.model, mask, 4, stop, inputs_embeds=embeds)
    finally:
        hook.remove()
    assert len(rows[0]) == 4  # the cache was used for three steps after the prompt
    assert modes == [True] * 4  # decoding builds no autograd graph, whoever calls it
    assert not [w for w in caught if "past_key_values" in str(w.message)], [str(w.message) for w in caught]


def test_decode_matches_model_generate_on_soft_prompts(gen):
    soft = gen.projection(_z(3, 9))  # (3, 5, 640)
    embeds, mask = gen.embed([gen.prompt_text(DEMOS), gen.prompt_text(OTHER_DEMOS), gen.prompt_text(DEMOS[:2])], soft)
    eos = gen.tokenizer.eos_token_id
    with torch.inference_mode():
        ref = gen.model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=10, do_sample=False,
                                 eos_token_id=eos, pad_token_id=gen.tokenizer.pad_token_id)  # (3, <= 10)
    stop = torch.zeros(len(gen.tokenizer), dtype=torch.bool)
    stop[eos] = True
    rows = decode(gen.model, mask, 10, stop, inputs_embeds=embeds)
    for r, row in enumerate(rows):
        assert row == ref[r, : len(row)].tolist()
