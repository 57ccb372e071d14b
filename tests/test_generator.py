"""Tests for izkit.generator: the random projection (step 1), batched instruction generation (step 2) and the
baselines' plain paths (Manual: InstructZero's template, greedy; APE-style: APE's template, sampled).

The cleaner's rules are tested in test_cleaner.py."""

from __future__ import annotations

import copy

import pytest
import torch

from izkit.cleaner import clean_instruction, lead_of
from izkit.decoding import decode, stop_tokens
from izkit.generator import (
    APE_TEMPLATE,
    CHAT_TEMPLATE,
    INSTRUCTZERO_TEMPLATE,
    LAYOUTS,
    RandomProjection,
    Sampling,
    SoftPromptGenerator,
    embedding_std,
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
    assert gen.prompt_text(DEMOS[:1], APE_TEMPLATE) == ape  # the same text, from the paper's generator
    # both end with the lead the cleaner drops where the model echoes it
    assert lead_of(APE_TEMPLATE) == lead_of(INSTRUCTZERO_TEMPLATE) == gen.lead == "The instruction was to"
    with pytest.raises(ValueError, match="demos"):
        SoftPromptGenerator(gen.model, gen.tokenizer, None, template="no placeholder")
    with pytest.raises(ValueError, match="demos"):
        gen.generate_plain(DEMOS, template="no placeholder")


CHAT = "{{ bos_token }}<start_of_turn>user\n{{ messages[0]['content'] }}<end_of_turn>\n<start_of_turn>model"


def test_chat_wraps_the_prompt_in_the_chat_template_with_one_bos(gen):
    tok = copy.copy(gen.tokenizer)
    tok.chat_template = CHAT  # the base model has none: a minimal one in Gemma's format
    chat = SoftPromptGenerator(gen.model, tok, gen.projection, chat=True, max_new_tokens=6)
    assert chat.template == CHAT_TEMPLATE and chat.lead == "The instruction was to"
    text = chat.prompt_text(DEMOS[:2])
    assert text == ("<start_of_turn>user\nInput: hot\nOutput: cold\n\nInput: big\nOutput: small\n\n"
                    "The instruction was to?<end_of_turn>\n<start_of_turn>model")  # BOS comes from embed()
    embeds, mask = chat.embed([text], chat.projection(_z(1, 0)))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert mask.shape[1] == 1 + 5 + len(ids) and tok.bos_token_id not in ids
    assert chat.prompt_text(DEMOS[:1], APE_TEMPLATE).startswith("<start_of_turn>user\nI gave a friend an instruction")
    out = chat.generate(_z(2, 0), DEMOS)
    assert len(out) == 2 and all(v.strip() for v in out)
    assert SoftPromptGenerator(gen.model, gen.tokenizer, gen.projection).template.endswith("was to")  # default
    with pytest.raises(ValueError, match="chat template"):
        SoftPromptGenerator(gen.model, gen.tokenizer, gen.projection, chat=True)


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


def test_the_layouts_put_the_soft_tokens_after_bos_after_the_demos_or_before_the_cue(gen):
    text = gen.prompt_text(DEMOS[:2])
    model, tok = gen.model, gen.tokenizer
    cuts = {layout: SoftPromptGenerator(model, tok, gen.projection, layout=layout).split_for_layout(text)
            for layout in ("after-demos", "before-cue")}
    assert cuts["after-demos"] == ("Input: hot\nOutput: cold\n\nInput: big\nOutput: small",
                                   "\n\nThe instruction was to")
    assert cuts["before-cue"] == ("Input: hot\nOutput: cold\n\nInput: big\nOutput: small\n\n", "The instruction was to")
    soft = gen.projection(_z(1, 3))  # (1, 5, 640)
    head, tail = cuts["before-cue"]
    embeds, mask = gen.embed([tail], soft, [head])  # (1, L, 640)
    n_head = len(tok(head, add_special_tokens=False)["input_ids"])
    n_tail = len(tok(tail, add_special_tokens=False)["input_ids"])
    assert mask.shape[1] == 1 + n_head + 5 + n_tail
    torch.testing.assert_close(embeds[0, 1 + n_head : 1 + n_head + 5], soft[0])
    with pytest.raises(ValueError, match="layout must be one of"):
        SoftPromptGenerator(model, tok, gen.projection, layout="soft-last")
    with pytest.raises(ValueError, match="ends with none"):
        SoftPromptGenerator(model, tok, gen.projection, layout="before-cue", template="{demos}\n\n")


@pytest.mark.parametrize("layout", ["after-demos", "before-cue"])
def test_the_shared_demos_give_the_instructions_of_a_full_prefill(gen, layout, monkeypatch):
    """The layouts after the demos prefill [BOS ; demos] once per run and copy its KV cache to every row: in float32
    they write what a prefill of each whole prompt writes, batched or one at a time."""
    g = SoftPromptGenerator(gen.model, gen.tokenizer, gen.projection, max_new_tokens=16, layout=layout)
    z = _z(5, 13)
    shared = g.generate(z, DEMOS, batch_size=3, progress=False)
    assert g.shared_prefills == 1  # once for both passes: the demos' cache is kept
    assert g.generate(z[:2], DEMOS) == shared[:2] and g.shared_prefills == 1
    single = [g.generate(z[i], DEMOS)[0] for i in range(5)]  # one row: nothing to share, a whole prefill
    monkeypatch.setattr("izkit.generator.MIN_SHARED_PREFIX", 10**6)
    whole = g.generate(z, DEMOS)
    assert shared == single == whole and g.shared_prefills == 1
    assert shared != gen.generate(z, DEMOS)  # another search space than the paper's layout


def test_the_papers_layout_shares_nothing_and_identical_sampled_prompts_share_all(gen, monkeypatch):
    calls = gen.shared_prefills
    gen.generate(_z(3, 1), DEMOS)
    assert gen.shared_prefills == calls  # soft tokens right after BOS: only BOS is common, a whole prefill
    s = Sampling(seed=8, num_per_call=4)
    shared = gen.generate_ape(DEMOS, n=4, sampling=s)
    assert gen.shared_prefills == calls + 1  # APE's prompt is the same for every sample
    monkeypatch.setattr("izkit.generator.MIN_SHARED_PREFIX", 10**6)
    assert gen.generate_ape(DEMOS, n=4, sampling=s) == shared  # the same samples as from whole prefills


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


def test_ape_samples_from_apes_template_and_manual_keeps_instructzeros(gen, monkeypatch):
    """The APE-style baseline prompts with APE's forward template (Zhou et al., 2023), the Manual baseline with
    InstructZero's: each path's prompt text as it reaches the model."""
    seen: list[list[str]] = []
    embed = gen.embed

    def spy(texts, soft, heads=None):
        seen.append(list(texts))
        return embed(texts, soft, heads)

    monkeypatch.setattr(gen, "embed", spy)
    s = Sampling(seed=3, num_per_call=3)
    ape = gen.generate_ape(DEMOS, n=3, sampling=s)
    assert seen == [[gen.prompt_text(DEMOS, APE_TEMPLATE)] * 3]
    assert seen[0][0].startswith("I gave a friend an instruction and five inputs.")
    assert len(ape) == 3 and all(v.strip() for v in ape)
    assert gen.generate_ape(DEMOS, n=3, sampling=s) == ape  # same seed -> same samples
    seen.clear()
    gen.generate_ape([DEMOS[:2], DEMOS[2:]], n=2, sampling=s)  # a demo list per sample, as APE draws them
    assert seen == [[gen.prompt_text(DEMOS[:2], APE_TEMPLATE), gen.prompt_text(DEMOS[2:], APE_TEMPLATE)]]
    seen.clear()
    gen.generate_plain(DEMOS, n=1)  # Manual: unchanged, InstructZero's template
    gen.generate(None, DEMOS)
    assert seen == [[gen.prompt_text(DEMOS)]] * 2 and seen[0][0].startswith("Input: hot\nOutput: cold")


def test_the_cleaner_drops_the_lead_of_the_template_in_use(gen, monkeypatch):
    """Where the model echoes the prompt's last words, the cleaner drops those of the template that was used."""
    monkeypatch.setattr(gen, "_generate_chunk", lambda texts, *rest: [" The rule is: add one. More"] * len(texts))
    assert gen.generate_plain(DEMOS, n=2, template="{demos}\n\nThe rule is:") == ["add one."] * 2
    assert gen.generate_ape(DEMOS) == ["The rule is: add one."]  # APE's lead is "The instruction was to"
    assert gen.generate_plain(DEMOS) == ["The rule is: add one."]


def test_generator_checks_its_inputs(gen):
    with pytest.raises(ValueError, match="width 16 but the model's hidden size is 640"):
        SoftPromptGenerator(gen.model, gen.tokenizer, RandomProjection(hidden_size=16))
    with pytest.raises(ValueError, match="no projection"):
        SoftPromptGenerator(gen.model, gen.tokenizer, None).generate(_z(1, 0), DEMOS)
    with pytest.raises(ValueError, match="at least one exemplar"):
        gen.prompt_text([])


def test_early_stop_gives_the_instructions_of_a_full_length_decode(gen):
    z = _z(4, 21)
    stopped = gen.generate(z, DEMOS)
    embeds, mask = gen.embed([gen.prompt_text(DEMOS)] * 4, gen.projection(z))
    full = decode(gen.model, mask, gen.max_new_tokens, stop_tokens(gen.tokenizer), inputs_embeds=embeds)  # no is_done
    raw = gen.tokenizer.batch_decode(full, skip_special_tokens=True)
    assert stopped == [clean_instruction(r) for r in raw]
    assert sum(len(r) for r in gen.tokenizer(gen.last_raw)["input_ids"]) < sum(len(r) for r in full)


def test_decode_matches_model_generate_on_soft_prompts(gen):
    soft = gen.projection(_z(3, 9))  # (3, 5, 640)
    embeds, mask = gen.embed([gen.prompt_text(DEMOS), gen.prompt_text(OTHER_DEMOS), gen.prompt_text(DEMOS[:2])], soft)
    eos = gen.tokenizer.eos_token_id
    with torch.inference_mode():
        ref = gen.model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=10, do_sample=False,
                                 eos_token_id=eos, pad_token_id=gen.tokenizer.pad_token_id)  # (3, <= 10)
    rows = decode(gen.model, mask, 10, stop_tokens(gen.tokenizer), inputs_embeds=embeds)
    for r, row in enumerate(rows):
        assert row == ref[r, : len(row)].tolist()
