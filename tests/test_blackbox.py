"""Tests for izkit.blackbox (step 3: scoring instructions), in process: the shared cached scoring, answer extraction,
the local black box on the embedded model, and the OpenAI black box on a fake SDK client.

The OpenAI-compatible path against a real server and a faulty fake one is in test_serve.py and test_faults.py.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from izkit.blackbox import (
    DEFAULT_TEMPLATE,
    BlackBox,
    CachedBlackBox,
    Job,
    LocalBlackBox,
    OpenAIBlackBox,
    ScoreResult,
    Usage,
    endpoint_id,
    first_line,
)
from izkit.cache import AnswerCache
from izkit.tasks import Example

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ANTONYMS = [Example(x, (y,)) for x, y in [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"),
                                          ("good", "bad"), ("light", "dark")]]
HELPFUL = "Write the antonym of the word."
NONSENSE = "zebra purple mountain quickly"


class DictBlackBox(CachedBlackBox):
    """A hand-made black box: answers come from a dict keyed by input; records what it was asked."""

    def __init__(self, answers: dict[str, str], cache=None) -> None:
        self.answers, self.cache = answers, cache
        self.model_id, self.endpoint_id, self.template, self.objective = "dict", "test", DEFAULT_TEMPLATE, "accuracy"
        self.asked: list[str] = []

    def decoding(self, objective):
        return {}

    def answer(self, objective, jobs, store, usage):
        for k, job in enumerate(jobs):
            self.asked.append(self.format_prompt(job.instruction, job.input))
            if objective == "loglik":
                store(k, {"loglik": -float(len(job.gold))})
            else:
                store(k, {"prediction": self.answers.get(job.input, "")})
            usage.requests += 1


# ----------------------------------------------------------------------------------------------------------------------
# The shared logic, on hand-made answers


def test_scores_follow_the_metric_and_keep_the_instruction_order():
    box = DictBlackBox({"hot": "Cold.", "big": "large", "fast": "very slow"})
    ex = ANTONYMS[:3]
    res = box.score(["b", "a"], ex, metric="em")
    assert isinstance(res, ScoreResult) and isinstance(box, BlackBox)
    assert res.objective == "accuracy" and res.metric == "em" and res.instructions == ["b", "a"]
    assert res.scores.shape == (2, 3)
    np.testing.assert_allclose(res.scores, [[1, 0, 0], [1, 0, 0]])  # "Cold." normalises to "cold"
    np.testing.assert_allclose(res.means, [1 / 3, 1 / 3])
    assert res.predictions[0] == ["Cold.", "large", "very slow"]
    contains = box.score(["b"], ex, metric="contains")
    np.testing.assert_allclose(contains.scores, [[1, 0, 1]])  # "very slow" contains "slow"
    assert res.best() == ("b", pytest.approx(1 / 3))
    assert res.to_dict()["objective"] == "accuracy"


def test_identical_instructions_in_one_call_are_answered_once():
    box = DictBlackBox({"hot": "cold"})
    res = box.score(["a", "a", "b", "a"], ANTONYMS[:2])
    assert len(box.asked) == 2 * 2  # two distinct instructions x two examples
    assert res.scores.shape == (4, 2) and res.usage.requests == 4
    np.testing.assert_allclose(res.scores[0], res.scores[3])


def test_loglik_result_names_its_objective_and_has_no_metric():
    res = DictBlackBox({}).score(["a"], ANTONYMS[:2], objective="loglik")
    assert res.objective == "loglik" and res.metric is None
    np.testing.assert_allclose(res.scores, [[-5.0, -6.0]])  # " cold", " small": gold answers[0] with its prefix
    assert res.predictions == [["", ""]]


def test_bad_arguments_are_named():
    box = DictBlackBox({})
    with pytest.raises(ValueError, match="objective must be one of"):
        box.score(["a"], ANTONYMS, objective="acc")
    with pytest.raises(TypeError, match="single string"):
        box.score("a", ANTONYMS)
    with pytest.raises(ValueError, match="got 0 and 6"):
        box.score([], ANTONYMS)
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        box.score(["a"], ANTONYMS, metric="bleu")


def test_cache_answers_each_question_once_across_calls_and_instances(tmp_path):
    cache = AnswerCache(tmp_path / "a.sqlite")
    box = DictBlackBox({"hot": "cold"}, cache=cache)
    first = box.score(["a", "b"], ANTONYMS[:3])
    assert len(box.asked) == 6 and first.usage.cache_hits == 0
    again = DictBlackBox({"hot": "WRONG"}, cache=AnswerCache(tmp_path / "a.sqlite"))  # a fresh process, same file
    second = again.score(["b", "a", "c"], ANTONYMS[:3])
    assert len(again.asked) == 3  # only instruction "c" was new
    assert second.usage.cache_hits == 6
    assert second.predictions[0][0] == "cold"  # read back, not recomputed
    loglik = again.score(["a"], ANTONYMS[:3], objective="loglik")
    assert loglik.usage.cache_hits == 0  # another objective is another question


def test_usage_adds_up():
    assert Usage(1, 2, 3, 4, 0.5) + Usage(1, 1, 1, 1, 0.5) == Usage(2, 3, 4, 5, 1.0)


def test_the_answer_is_the_first_non_empty_line():
    assert first_line(" cold\n\nInput: x") == "cold"
    assert first_line("\nhot") == "hot"  # an answer may open with a newline
    assert first_line(" \n\t\r\n  big  \nsmall") == "big"
    assert first_line("") == first_line(" \n \n") == ""


def test_endpoint_ids_leave_out_a_loopback_port():
    assert endpoint_id("http://127.0.0.1:41234/v1", "chat") == endpoint_id("http://localhost:9/v1/", "chat")
    assert endpoint_id("https://api.openai.com/v1", "chat") == "chat:https://api.openai.com/v1"


def test_openai_black_box_checks_its_arguments_and_holds_no_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sentinel-not-stored")
    with pytest.raises(ValueError, match="api='completions'"):
        OpenAIBlackBox("m", base_url="http://127.0.0.1:1/v1", api="chat", objective="loglik", cache=None)
    with pytest.raises(ValueError, match="api must be"):
        OpenAIBlackBox("m", api="responses", cache=None)
    box = OpenAIBlackBox("m", base_url="http://127.0.0.1:1/v1", cache=None)
    assert "sk-sentinel" not in repr(vars(box)) and "sk-sentinel" not in repr(box)


# ----------------------------------------------------------------------------------------------------------------------
# LocalBlackBox with the embedded model


@pytest.fixture(scope="module")
def local(embedded):
    model, tokenizer = embedded
    return LocalBlackBox(model, tokenizer, cache=None, max_new_tokens=8)


def test_answers_from_another_device_kind_are_cached_apart(local, monkeypatch):
    key = local.cache_key("accuracy", HELPFUL, "hot", None)
    assert local.endpoint_id == "local-transformers"  # answers cached on a CPU keep their keys
    monkeypatch.setattr(LocalBlackBox, "_device", property(lambda self: torch.device("cuda", 0)))
    assert local.endpoint_id == "local-transformers|cuda"
    assert local.cache_key("accuracy", HELPFUL, "hot", None) != key


def test_loglik_prefers_a_helpful_instruction_on_antonyms(local):
    res = local.score([HELPFUL, NONSENSE], ANTONYMS, objective="loglik")
    assert res.objective == "loglik"
    assert np.all(res.scores < 0)  # mean log-probabilities
    assert res.means[0] > res.means[1] + 0.5


def test_batched_loglik_equals_one_at_a_time_and_the_full_lm_head(local):
    instructions = [HELPFUL, NONSENSE, "Answer."]
    batched = local.score(instructions, ANTONYMS, objective="loglik")
    single_box = LocalBlackBox(local.model, local.tokenizer, cache=None, batch_size=1)
    single = single_box.score(instructions, ANTONYMS, objective="loglik")
    assert batched.usage.requests == 1 and single.usage.requests == 18
    np.testing.assert_allclose(batched.scores, single.scores, atol=1e-4)
    # reference: the full-sequence LM head, no padding
    tok = local.tokenizer
    prompt = local.format_prompt(NONSENSE, "big")
    p_ids, a_ids = tok(prompt)["input_ids"], tok(" small", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = local.model(torch.tensor([p_ids + a_ids])).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.float(), -1)  # (T, V)
    ref = np.mean([logp[len(p_ids) - 1 + i, t].item() for i, t in enumerate(a_ids)])
    assert batched.scores[1, 1] == pytest.approx(ref, abs=1e-4)


def test_loglik_without_a_boolean_logits_to_keep_gives_the_same_scores(local, monkeypatch):
    # transformers before the boolean mask (5.17 on a GPU machine raised IndexError): the last K positions instead
    from izkit.blackbox import local as local_module

    instructions, examples = [HELPFUL, NONSENSE], ANTONYMS[:5]  # answers of 1 and more tokens in one batch
    masked = local.score(instructions, examples, objective="loglik")
    monkeypatch.setattr(local_module, "bool_logits_to_keep", lambda: False)
    box = LocalBlackBox(local.model, local.tokenizer, cache=None)
    calls = []
    forward = box.model.forward

    def spy(*args, **kwargs):
        calls.append(kwargs.get("logits_to_keep"))
        return forward(*args, **kwargs)

    monkeypatch.setattr(box.model, "forward", spy)
    last_k = box.score(instructions, examples, objective="loglik")
    assert any(isinstance(k, int) and k > 1 for k in calls), calls  # the older path was taken
    np.testing.assert_allclose(last_k.scores, masked.scores, atol=1e-4)


def test_scoring_with_a_kv_cache_raises_no_deprecation_warning(local):
    # the prefix prefill, the loglik pass and the answer decoding each hand a KV cache to the model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        local.score([HELPFUL], ANTONYMS[:2], objective="loglik")
        local.score([HELPFUL], ANTONYMS[:2])
    assert not [w for w in caught if "past_key_values" in str(w.message)], [str(w.message) for w in caught]


def test_batched_answers_equal_one_at_a_time(local):
    batched = local.score([HELPFUL, NONSENSE], ANTONYMS[:4])
    single = LocalBlackBox(local.model, local.tokenizer, cache=None, max_new_tokens=8, batch_size=1).score(
        [HELPFUL, NONSENSE], ANTONYMS[:4]
    )
    assert batched.predictions == single.predictions
    assert all("\n" not in p for row in batched.predictions for p in row)
    assert batched.predictions[0][0] == "cold"  # the antonym instruction gets hot -> cold right
    assert batched.means[0] > batched.means[1]


def test_local_cache_second_run_makes_no_model_calls(local, tmp_path, monkeypatch):
    box = LocalBlackBox(local.model, local.tokenizer, cache=tmp_path / "answers.sqlite", max_new_tokens=8)
    first_acc = box.score([HELPFUL, NONSENSE], ANTONYMS[:3])
    first_ll = box.score([HELPFUL], ANTONYMS[:3], objective="loglik")
    calls = {"forward": 0}
    real_forward = local.model.forward

    def counting_forward(*a, **k):  # every model call, generation or likelihood, goes through forward
        calls["forward"] += 1
        return real_forward(*a, **k)

    monkeypatch.setattr(local.model, "forward", counting_forward)
    again = LocalBlackBox(local.model, local.tokenizer, cache=tmp_path / "answers.sqlite", max_new_tokens=8)
    second_acc = again.score([HELPFUL, NONSENSE], ANTONYMS[:3])
    second_ll = again.score([HELPFUL], ANTONYMS[:3], objective="loglik")
    assert calls == {"forward": 0}
    assert second_acc.usage.requests == 0 and second_acc.usage.cache_hits == 6
    assert second_acc.predictions == first_acc.predictions
    np.testing.assert_allclose(second_ll.scores, first_ll.scores)
    other = LocalBlackBox(local.model, local.tokenizer, cache=tmp_path / "answers.sqlite", max_new_tokens=9)
    other.score([HELPFUL], ANTONYMS[:1])
    assert calls["forward"] > 0  # other decoding settings are other questions


def test_answers_match_model_generate(local):
    """The prefix-sharing, row-dropping decoder gives model.generate's greedy answers (the first non-empty line)."""
    instructions, examples = [HELPFUL, "Repeat the word."], ANTONYMS[:3]
    res = local.score(instructions, examples)
    tok = local.tokenizer
    for i, v in enumerate(instructions):
        for j, ex in enumerate(examples):
            ids = tok(local.format_prompt(v, ex.input), return_tensors="pt")
            with torch.inference_mode():
                out = local.model.generate(**ids, max_new_tokens=local.max_new_tokens, do_sample=False,
                                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            ref = first_line(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
            assert res.predictions[i][j] == ref, (v, ex.input)


def test_prompts_split_into_a_shared_prefix_and_a_suffix(local):
    jobs = [Job(HELPFUL, "hot", ""), Job(HELPFUL, "big", ""), Job(NONSENSE, "hot", "")]
    parts = local._split(jobs)
    tok = local.tokenizer
    for job, (prefix, suffix) in zip(jobs, parts):
        assert list(prefix) + suffix == tok(local.format_prompt(job.instruction, job.input))["input_ids"]
    assert parts[0][0] == parts[1][0] != parts[2][0]  # one prefix per instruction
    assert tok.decode(parts[0][0]) == f"<bos>Instruction: {HELPFUL}\n\nInput:"
    odd = LocalBlackBox(local.model, tok, cache=None, template="Input: {input}\nTask: {instruction}\nOutput:")
    assert all(len(p) == 1 for p, _ in odd._split(jobs))  # the instruction comes after the input: share only BOS


# ----------------------------------------------------------------------------------------------------------------------
# Answer extraction: the first non-empty line, on both black boxes


class ScriptedAnswers(torch.nn.Module):
    """The embedded model with its answers replaced by a script: after token t it writes ``then[t]`` (``first``
    after any other token, e.g. the prompt's last). The prefix prefill still runs the real decoder."""

    def __init__(self, model, first: int, then: dict[int, int]) -> None:
        super().__init__()
        self.inner, self.first, self.then = model, first, then
        self.config = model.config

    @property
    def base_model(self):
        return self.inner.base_model

    @property
    def dtype(self):
        return self.inner.dtype

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids=None, cache=None, **_):
        nxt = [self.then.get(int(t), self.first) for t in input_ids[:, -1]]  # (b,)
        logits = torch.full((len(nxt), 1, self.config.vocab_size), -1e9)  # (b, 1, V)
        logits[torch.arange(len(nxt)), 0, torch.tensor(nxt)] = 0.0
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def newline_first(embedded):
    """A black box whose model answers "\\nhot\\nhot..." to every prompt."""
    model, tok = embedded
    nl, hot = tok.encode("\n", add_special_tokens=False)[0], tok.encode("hot", add_special_tokens=False)[0]
    return ScriptedAnswers(model, first=nl, then={nl: hot, hot: nl}), tok


def test_an_answer_that_opens_with_a_newline_scores(newline_first):
    model, tok = newline_first
    box = LocalBlackBox(model, tok, cache=None)
    res = box.score(["Say hot.", "Answer."], [Example("cold", ("hot",)), Example("warm", ("hot",))])
    assert res.predictions == [["hot", "hot"], ["hot", "hot"]]
    np.testing.assert_allclose(res.scores, 1.0)
    assert res.usage.completion_tokens == 4 * 3  # "\n", "hot", "\n": it stops at the newline after the text


def test_answers_cached_under_the_old_newline_rule_are_not_read(newline_first, tmp_path):
    model, tok = newline_first
    cache = AnswerCache(tmp_path / "answers.sqlite")
    box = LocalBlackBox(model, tok, cache=cache)
    fields = dict(model=box.model_id, endpoint=box.endpoint_id, template=box.template, instruction="Say hot.",
                  input="cold")
    old = AnswerCache.key(**fields, decoding={"greedy": True, "max_new_tokens": 16, "stop": "newline"},
                          objective="accuracy", answer=None)
    cache.put(old, {"prediction": ""})  # what the first-newline rule stored for "\nhot"
    res = box.score(["Say hot."], [Example("cold", ("hot",))])
    assert res.usage.cache_hits == 0 and res.predictions == [["hot"]]
    assert box.cache_key("accuracy", "Say hot.", "cold", None) != old
    assert box.decoding("accuracy")["answer_rule"] == 2
    # the likelihood of a gold answer did not change meaning: its cached values stay valid
    assert box.cache_key("loglik", "Say hot.", "cold", "hot") == AnswerCache.key(
        **fields, decoding={"answer_prefix": " "}, objective="loglik", answer="hot")


class FakeAsyncOpenAI:
    """Stands in for ``openai.AsyncOpenAI``: every completion opens with a newline; the requests are recorded."""

    requests: list[dict] = []

    def __init__(self, **_) -> None:
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._chat))
        self.completions = SimpleNamespace(create=self._text)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def _chat(self, **request):
        FakeAsyncOpenAI.requests.append(request)
        message = SimpleNamespace(content="\nhot\nInput: more")
        return SimpleNamespace(choices=[SimpleNamespace(message=message)], usage=None)

    async def _text(self, **request):
        FakeAsyncOpenAI.requests.append(request)
        return SimpleNamespace(choices=[SimpleNamespace(text="\n\n hot \n\nInput:")], usage=None)


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_openai_answers_are_the_first_non_empty_line_and_no_stop_is_sent(api, monkeypatch, tmp_path):
    import openai

    monkeypatch.setattr(openai, "AsyncOpenAI", FakeAsyncOpenAI)
    FakeAsyncOpenAI.requests = []
    box = OpenAIBlackBox("m", base_url="http://127.0.0.1:1/v1", api=api, cache=tmp_path / "a.sqlite")
    res = box.score(["Say hot."], [Example("cold", ("hot",)), Example("warm", ("hot",))])
    assert res.predictions == [["hot", "hot"]] and res.usage.requests == 2
    assert len(FakeAsyncOpenAI.requests) == 2 and not any("stop" in r for r in FakeAsyncOpenAI.requests)
    assert box.decoding("accuracy") == {"temperature": 0, "max_tokens": 16, "answer_rule": 2}  # was "stop": "\n"
