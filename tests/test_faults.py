"""Faults: OpenAIBlackBox and whole runs against a server that fails on purpose (tests/fault_server.py).

- every fault kind alone is survived, with the clean server's answers;
- a quick run with 30% of the requests failing ends exactly where a run against a clean server ends;
- a server gone for good mid-run: a clear BlackBoxError, nothing finished is lost, a resume completes the run;
- a wrong key (401) fails at once, a wrong URL after the retries, both naming the endpoint.

The generator (the embedded Gemma 3 270M, greedy) is loaded once; its instructions are remembered per (prompt, soft
prompts) so the many runs here pay for each proposal once. A run that scored differently would propose other soft
prompts, miss the memo and show up as a different result, so the memo hides nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from fault_server import KINDS, WRONG, FaultServer

from izkit import cli
from izkit.blackbox import BlackBoxError, OpenAIBlackBox
from izkit.cache import AnswerCache
from izkit.config import Config
from izkit.loop import Run
from izkit.pipeline import Pipeline
from izkit.records import RECORD_NAME, RunRecord
from izkit.serving.loopback import free_port
from izkit.tasks import Example, load_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASK = load_task("antonyms")
GOLD = {e.input: e.answers[0] for e in TASK.induce + TASK.execute}
EXAMPLES = [Example(x, (GOLD[x],)) for x in ("hot", "big", "fast", "happy")]
INSTRUCTIONS = ["Write the opposite.", "Say it."]  # the fake server gets 4 and 1 of EXAMPLES right
QUICK_FAULTS = dict(sdk_retries=0, max_retries=2, backoff=0.01, timeout=1.0)  # our own retries, no SDK ones
TIMEOUT = 1.0  # seconds per request in the runs below; a "hang" holds its request twice as long
SPLITS = TASK.splits(5, 5, 10, 0)  # what Config.quick uses with seed 0: (kappa, n_dev, n_test)


# ----------------------------------------------------------------------------------------------------------------------
# Fixtures: the generator once, caches in a temporary folder


@pytest.fixture(scope="module", autouse=True)
def isolated(tmp_path_factory, embedded):
    """IZKIT_CACHE in a temporary folder (no answer reaches the user's cache), the embedded model still found."""
    import izkit.models
    from izkit.generator import SoftPromptGenerator

    model_dir = izkit.models.embedded_model_dir()
    real_chunk = SoftPromptGenerator._generate_chunk
    memo: dict[tuple, list[str]] = {}

    def remembered_chunk(self, texts, soft, sampling, seed, lead, heads=None):
        digest = None if soft is None else hashlib.sha256(soft.detach().cpu().numpy().tobytes()).hexdigest()
        key = (id(self.model), self.max_new_tokens, tuple(texts), digest, repr(sampling), seed, lead,
               None if heads is None else tuple(heads))
        if key not in memo:
            memo[key] = real_chunk(self, texts, soft, sampling, seed, lead, heads)
        return list(memo[key])

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IZKIT_CACHE", str(tmp_path_factory.mktemp("izkit-cache")))
        mp.setattr(izkit.models, "embedded_model_dir", lambda rebuild=False: model_dir)
        mp.setattr(SoftPromptGenerator, "_generate_chunk", remembered_chunk)
        yield


def quick(base_url: str, **overrides) -> Config:
    return Config.quick(task="antonyms", blackbox="openai", blackbox_model="fake", base_url=base_url,
                        objective="accuracy", request_timeout=TIMEOUT, max_retries=3, baselines=(), device="cpu",
                        **overrides)


def make_run(cfg: Config, out, cache_path, resume: bool = False) -> Run:
    """A Run with the config's own OpenAIBlackBox, but a fresh answer cache (so no cache hides a fault)."""
    pipeline = Pipeline.from_config(cfg)  # the generator comes from load_causal_lm's memo
    pipeline.blackbox.cache = AnswerCache(cache_path)
    pipeline.blackbox.backoff = 0.05  # our retries only; the SDK's own 2 retries keep their defaults
    return Run(cfg, out, resume=resume, progress=False, pipeline=pipeline)


def outcome(result, record: RunRecord) -> dict:
    """What must not depend on faults: per eval the instruction and its scores; the best; the test scores."""
    m = result.methods["instructzero"]
    evals = [(e["round"], e["index"], e["instruction"], e["scores"], e["predictions"]) for e in record.evals()]
    return {"evals": evals, "best": m.best_instruction, "best_dev": m.best_dev, "test": m.test, "n": m.n_evals}


def dev_prompts(srv: FaultServer) -> list[str]:
    dev = {e.input for e in SPLITS.dev}
    return [p for _, p in srv.answered if p.split("\n\nInput: ")[1].split("\n\nOutput:")[0] in dev]


def clean_run(tmp: Path, **overrides) -> dict:
    """The quick run against a clean server: what every faulty run must reproduce."""
    with FaultServer(GOLD) as srv:
        run = make_run(quick(srv.base_url, **overrides), tmp / "run", tmp / "answers.sqlite")
        result = run.execute()
    assert not srv.faults and srv.answered
    return {"outcome": outcome(result, run.record), "dev_posts": len(dev_prompts(srv)), "overrides": overrides}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return clean_run(tmp_path_factory.mktemp("reference"))  # the default selection: halving


@pytest.fixture(scope="module")
def reference_best(tmp_path_factory):
    """The paper's allocation, where every answer of the run is a dev answer of an eval line (halving's answers
    after the search are confirm lines, each kept as it comes: tests/test_selection.py kills a run inside them)."""
    return clean_run(tmp_path_factory.mktemp("reference-best"), selection="best")


@pytest.fixture(scope="module")
def clean_answers():
    with FaultServer(GOLD) as srv:
        box = OpenAIBlackBox("fake", base_url=srv.base_url, cache=None, **QUICK_FAULTS)
        return box.score(INSTRUCTIONS, EXAMPLES)


# ----------------------------------------------------------------------------------------------------------------------
# The server itself


def test_fault_server_answers_depend_on_the_instruction_only(clean_answers):
    # the instructions reach different accuracies, and every answer is either right or the fixed wrong word
    assert list(clean_answers.means) == [1.0, 0.25]
    assert {p for row in clean_answers.predictions for p in row} <= set(GOLD.values()) | {WRONG}
    with FaultServer(GOLD, rate=0.5, kinds=("500",), seed=3) as srv:  # the same answers in any order, after faults
        box = OpenAIBlackBox("fake", base_url=srv.base_url, cache=None, concurrency=1, **{**QUICK_FAULTS,
                                                                                          "max_retries": 8})
        again = box.score(INSTRUCTIONS[::-1], EXAMPLES[::-1])
    assert srv.faults["500"] > 0
    assert again.predictions == [row[::-1] for row in clean_answers.predictions[::-1]]


def test_fault_server_lists_models_and_checks_the_key():
    import urllib.error
    import urllib.request

    with FaultServer(api_key="sk-right") as srv:
        ask = urllib.request.Request(srv.base_url + "/models", headers={"Authorization": "Bearer sk-right"})
        with urllib.request.urlopen(ask, timeout=5) as r:
            assert [m["id"] for m in json.load(r)["data"]] == ["fake"]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(srv.base_url + "/models", timeout=5)  # no key
    assert info.value.code == 401 and srv.unauthorized == 1 and srv.requests == 2
    assert srv.base_url.startswith("http://127.0.0.1:") and srv.httpd.server_address[0] == "127.0.0.1"


# ----------------------------------------------------------------------------------------------------------------------
# Each fault alone


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_alone_is_survived_with_the_clean_answers(kind, api, clean_answers):
    # the first 4 requests fail; with 2 in flight, each of the first two questions fails twice before its answer
    with FaultServer(GOLD, kinds=(kind,), first=4, hang_s=2 * QUICK_FAULTS["timeout"], retry_after="0") as srv:
        box = OpenAIBlackBox("fake", base_url=srv.base_url, api=api, cache=None, concurrency=2, **QUICK_FAULTS)
        res = box.score(INSTRUCTIONS, EXAMPLES)
    assert srv.faults == {kind: 4}
    assert srv.posts == 4 + len(INSTRUCTIONS) * len(EXAMPLES)
    assert res.predictions == clean_answers.predictions
    assert (res.scores == clean_answers.scores).all()
    assert res.usage.requests == len(INSTRUCTIONS) * len(EXAMPLES)  # answers received, failed attempts not counted


@pytest.mark.parametrize("kind, message", [("no_choices", "no choices"), ("bad_json", "not valid JSON"),
                                           ("503", "simulated 503")])
def test_a_fault_that_persists_ends_in_a_clear_error(kind, message):
    with FaultServer(GOLD, rate=1.0, kinds=(kind,)) as srv:
        box = OpenAIBlackBox("fake", base_url=srv.base_url, cache=None, concurrency=1, **QUICK_FAULTS)
        with pytest.raises(BlackBoxError) as info:
            box.score(INSTRUCTIONS[:1], EXAMPLES[:1])
    text = str(info.value)
    assert srv.base_url in text and "after 3 attempts" in text and message in text
    assert srv.faults[kind] == 3  # retried like a 5xx, then given up


# ----------------------------------------------------------------------------------------------------------------------
# A whole run with 30% of the requests failing


def test_run_with_30_percent_faults_ends_like_a_clean_run(reference, tmp_path):
    with FaultServer(GOLD, rate=0.3, seed=1, hang_s=2 * TIMEOUT) as srv:
        run = make_run(quick(srv.base_url), tmp_path / "run", tmp_path / "answers.sqlite")
        result = run.execute()
    print(f"\n30% faults: {srv.posts} requests, {sum(srv.faults.values())} faults injected: {dict(srv.faults)}")
    assert set(srv.faults) == set(KINDS), srv.faults  # every kind happened, and was survived
    assert sum(srv.faults.values()) >= 0.15 * srv.posts
    assert outcome(result, run.record) == reference["outcome"]


# ----------------------------------------------------------------------------------------------------------------------
# The server gone for good


def test_server_gone_mid_run_loses_nothing_and_a_resume_completes_it(reference_best, tmp_path):
    reference = reference_best
    out, cache_path = tmp_path / "run", tmp_path / "answers.sqlite"
    cut = reference["dev_posts"] - 3  # it goes away while the last new instruction is being scored
    gone = FaultServer(GOLD, gone_after=cut)
    with gone:
        cfg = quick(gone.base_url, **reference["overrides"])
        run = make_run(cfg, out, cache_path)
        with pytest.raises(BlackBoxError) as info:
            run.execute()
    assert gone.base_url in str(info.value) and "did not answer" in str(info.value)
    assert len(gone.answered) == cut

    # nothing finished is lost: every instruction whose dev answers all came back has its eval line
    record = RunRecord.open(out / RECORD_NAME)
    dev = [e.input for e in SPLITS.dev]
    answered = set(dev_prompts(gone))
    complete = {v for v in {p.split("\n\nInput: ")[0].removeprefix("Instruction: ") for p in answered}
                if all(f"Instruction: {v}\n\nInput: {x}\n\nOutput:" in answered for x in dev)}
    recorded = {e["instruction"] for e in record.evals()}
    lost = complete - recorded
    print(f"\nserver gone after {cut} answers: {len(record.evals())} evaluations kept, {len(lost)} lost")
    assert not lost and recorded == complete
    assert 0 < len(record.evals()) < len(reference["outcome"]["evals"])
    assert not record.done
    assert len(AnswerCache(cache_path)) == cut  # the unfinished instruction's answers are kept too

    # a resume against the live server (same address) completes it, asking nothing twice
    with FaultServer(GOLD, port=gone.port) as back:
        resumed = make_run(cfg, out, cache_path, resume=True)
        result = resumed.execute()
    assert not {p for _, p in back.answered} & {p for _, p in gone.answered}
    assert outcome(result, resumed.record) == reference["outcome"]
    assert resumed.record.done


def run_argv(base_url: str, out, *extra: str) -> list[str]:
    return ["run", "--task", "antonyms", "--quick", "--baselines", "none", "--blackbox", "openai",
            "--blackbox-model", "fake", "--base-url", base_url, "--objective", "accuracy", "--device", "cpu",
            "--timeout", "2", "--retries", "1", *extra]


def test_cli_server_gone_exits_2_names_the_url_and_says_how_to_resume(reference, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IZKIT_CACHE", str(tmp_path / "cache"))  # the CLI's default answer cache, fresh
    out = tmp_path / "run"
    gone = FaultServer(GOLD, gone_after=7)
    with gone:
        code = cli.main(run_argv(gone.base_url, out, "--out", str(out)))
    err = capsys.readouterr().err
    assert code == 2
    assert f"izkit run: error: {gone.base_url} did not answer" in err
    n = len(RunRecord.open(out / RECORD_NAME).evals())
    assert f"keeps the {n} evaluations finished so far" in err and f"--resume {out}" in err
    with FaultServer(GOLD, port=gone.port) as back:  # the same flags, with --resume
        code = cli.main(run_argv(back.base_url, out, "--resume", str(out)))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert reference["outcome"]["best"] in captured.out and (out / "best_so_far.png").is_file()


# ----------------------------------------------------------------------------------------------------------------------
# Wrong key, wrong address


def test_wrong_key_fails_at_once_naming_the_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with FaultServer(GOLD, api_key="sk-right") as srv:
        box = OpenAIBlackBox("fake", base_url=srv.base_url, cache=None, concurrency=1)  # default retries
        t = time.perf_counter()
        with pytest.raises(BlackBoxError, match=r"refused the request \(HTTP 401\)") as info:
            box.score(INSTRUCTIONS, EXAMPLES)
        seconds = time.perf_counter() - t
    assert srv.base_url in str(info.value) and "Incorrect API key" in str(info.value)
    assert srv.posts == srv.unauthorized == 1  # no retry, and the rest not even asked
    assert seconds < 2.0


def test_cli_wrong_key_exits_2_with_http_401(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("IZKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with FaultServer(GOLD, api_key="sk-right") as srv:
        code = cli.main(run_argv(srv.base_url, tmp_path / "run", "--out", str(tmp_path / "run")))
    err = capsys.readouterr().err
    assert code == 2 and f"{srv.base_url} refused the request (HTTP 401)" in err
    assert srv.unauthorized >= 1 and srv.posts == srv.unauthorized and not srv.answered


def test_wrong_base_url_fails_after_the_retries_naming_the_url(caplog):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    box = OpenAIBlackBox("fake", base_url=url, cache=None, concurrency=1, **QUICK_FAULTS)
    with caplog.at_level("INFO", logger="izkit.blackbox"):
        with pytest.raises(BlackBoxError, match="did not answer .* after 3 attempts.*Connection") as info:
            box.score(INSTRUCTIONS[:1], EXAMPLES[:1])
    assert str(info.value).startswith(url)
    retries = [r.getMessage() for r in caplog.records if url in r.getMessage()]
    assert len(retries) == 2 and "retry 1 in" in retries[0] and "retry 2 in" in retries[1]  # then it gave up
