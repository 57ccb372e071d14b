"""Tests for izkit.serving.serve and the OpenAIBlackBox path: a real `transformers serve` on loopback, and a faulty fake server.

The fake server (stdlib http.server, 127.0.0.1 only, a daemon thread stopped after each test) answers like an
OpenAI-compatible endpoint but can fail the first N requests with 500/429, fail everything after the first K, or
leave logprobs out, so retries, errors and the cache can be checked without a model.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from izkit.serving import child
from izkit.blackbox import BlackBoxError, OpenAIBlackBox
from izkit.cache import AnswerCache
from izkit.serving.serve import LocalServer, ServerError, free_port, resolve_model_folder
from izkit.tasks import Example

ANTONYMS = [Example(x, (y,)) for x, y in [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad")]]
GOLD = {e.input: e.answers[0] for e in ANTONYMS}
SENTINEL = "sk-izkit-sentinel-5d1f0c"
FAST = dict(sdk_retries=0, max_retries=2, backoff=0.01, timeout=5.0)  # bounded retries for failure tests


# ----------------------------------------------------------------------------------------------------------------------
# A fake OpenAI-compatible server


class FakeServer:
    """Answers the antonym of the prompt's input; ``fail_first`` requests fail, then ``fail_after`` successes."""

    def __init__(self, fail_first: int = 0, status: int = 500, fail_after: int | None = None, logprobs: bool = True):
        self.fail_first, self.status, self.fail_after, self.logprobs = fail_first, status, fail_after, logprobs
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.successes = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    n = len(fake.requests)
                    fail = n <= fake.fail_first or (fake.fail_after is not None and fake.successes >= fake.fail_after)
                    if not fail:
                        fake.successes += 1
                if fail:
                    self._send(fake.status, {"error": {"message": "simulated failure", "type": "server_error"}})
                else:
                    self._send(200, fake.answer(self.path, body))

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after-ms", "10")
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def answer(self, path: str, body: dict) -> dict:
        usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
        if path.endswith("/chat/completions"):
            prompt = body["messages"][0]["content"]
            word = GOLD.get(re.search(r"Input: (\w+)", prompt).group(1), "?")
            msg = {"role": "assistant", "content": f" {word}\nInput: more"}
            return {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"], "usage": usage,
                    "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]}
        prompt = body["prompt"]
        if body.get("echo"):
            # echo the prompt as whitespace-separated tokens with logprob -1 per prompt token, -0.5 per answer token
            toks = re.findall(r"\s*\S+", prompt)
            offsets = np.cumsum([0] + [len(t) for t in toks[:-1]]).tolist()
            n_prompt = len(prompt) - len(prompt.split("Output:")[-1])
            lps = [None] + [(-0.5 if o >= n_prompt else -1.0) for o in offsets[1:]]
            logprobs = {"tokens": toks, "text_offset": offsets, "token_logprobs": lps, "top_logprobs": None}
            choice = {"index": 0, "text": prompt, "finish_reason": "length",
                      "logprobs": logprobs if self.logprobs else None}
        else:
            word = GOLD.get(re.search(r"Input: (\w+)", prompt).group(1), "?")
            choice = {"index": 0, "text": f" {word}\n\nInput:", "finish_reason": "length", "logprobs": None}
        return {"id": "x", "object": "text_completion", "created": 0, "model": body["model"], "usage": usage,
                "choices": [choice]}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# ----------------------------------------------------------------------------------------------------------------------
# OpenAIBlackBox against the fake server


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_fake_server_answers_are_parsed_and_cut_at_the_first_newline(api):
    with FakeServer() as fake:
        box = OpenAIBlackBox("fake-model", base_url=fake.base_url, api=api, cache=None, **FAST)
        res = box.score(["Give the antonym."], ANTONYMS)
    assert res.predictions == [["cold", "small", "slow", "sad"]]
    np.testing.assert_allclose(res.scores, [[1, 1, 1, 1]])
    assert res.usage.requests == 4 and res.usage.prompt_tokens == 40
    assert all(r["temperature"] == 0 and "stop" not in r for r in fake.requests)  # the first line is cut here


@pytest.mark.parametrize("status", [500, 429])
def test_retries_get_through_a_server_that_fails_the_first_requests(status):
    # 3 failures: the SDK's 1 retry is spent twice, then our own retry gets the answer
    with FakeServer(fail_first=3, status=status) as fake:
        box = OpenAIBlackBox("fake-model", base_url=fake.base_url, api="completions", cache=None, concurrency=1,
                             sdk_retries=1, max_retries=2, backoff=0.01, timeout=5.0)
        res = box.score(["Give the antonym."], ANTONYMS[:1])
    assert res.predictions == [["cold"]]
    assert len(fake.requests) == 4


def test_no_retry_after_a_client_error():
    with FakeServer(fail_first=100, status=400) as fake:
        box = OpenAIBlackBox("fake-model", base_url=fake.base_url, api="completions", cache=None, **FAST)
        with pytest.raises(BlackBoxError, match=r"refused the request \(HTTP 400\)"):
            box.score(["Give the antonym."], ANTONYMS[:1])
    assert len(fake.requests) == 1


def test_failure_midway_keeps_every_answer_already_received(tmp_path):
    cache_path = tmp_path / "answers.sqlite"
    with FakeServer(fail_after=3) as fake:
        box = OpenAIBlackBox("fake-model", base_url=fake.base_url, api="completions", concurrency=1,
                             cache=cache_path, **FAST)
        with pytest.raises(BlackBoxError) as info:
            box.score(["Give the antonym.", "Say the opposite."], ANTONYMS)
    message = str(info.value)
    assert fake.base_url in message and "simulated failure" in message and "after 3 attempts" in message
    assert len(AnswerCache(cache_path)) == 3  # the three answers received before the failure
    with FakeServer() as healthy:  # a new server (another port) for the same model: only the rest is asked
        box = OpenAIBlackBox("fake-model", base_url=healthy.base_url, api="completions", cache=cache_path, **FAST)
        res = box.score(["Give the antonym.", "Say the opposite."], ANTONYMS)
    assert len(healthy.requests) == 8 - 3 and res.usage.cache_hits == 3
    assert res.predictions == [["cold", "small", "slow", "sad"]] * 2


def test_server_down_gives_a_clear_error():
    port = free_port()  # nothing listens there
    box = OpenAIBlackBox("m", base_url=f"http://127.0.0.1:{port}/v1", api="completions", cache=None, **FAST)
    with pytest.raises(BlackBoxError, match=rf"127\.0\.0\.1:{port}/v1 did not answer .* after 3 attempts.*Connection"):
        box.score(["Give the antonym."], ANTONYMS[:2])


def test_loglik_through_echoed_logprobs_and_a_clear_error_without_them():
    with FakeServer() as fake:
        box = OpenAIBlackBox("fake-model", base_url=fake.base_url, api="completions", objective="loglik", cache=None,
                             **FAST)
        res = box.score(["Give the antonym."], ANTONYMS[:2])
    assert res.objective == "loglik"
    np.testing.assert_allclose(res.scores, [[-0.5, -0.5]])  # only the answer's tokens count
    assert fake.requests[0]["echo"] is True and fake.requests[0]["max_tokens"] == 0
    assert fake.requests[0]["prompt"].endswith("Output: cold")
    with FakeServer(logprobs=False) as bare:
        box = OpenAIBlackBox("fake-model", base_url=bare.base_url, api="completions", objective="loglik", cache=None,
                             **FAST)
        with pytest.raises(BlackBoxError, match="cannot give log-likelihoods.*objective='accuracy'"):
            box.score(["Give the antonym."], ANTONYMS)
    assert len(bare.requests) == 1  # one probe, not one request per example


def test_score_works_inside_a_running_event_loop():
    async def notebook_cell():  # Jupyter runs cells inside an event loop
        return box.score(["Give the antonym."], ANTONYMS[:2])

    with FakeServer() as fake:
        box = OpenAIBlackBox("fake-model", base_url=fake.base_url, api="chat", cache=None, **FAST)
        res = asyncio.run(notebook_cell())
    assert res.predictions == [["cold", "small"]]


def test_the_key_goes_only_into_the_authorization_header(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    with FakeServer() as fake:
        box = OpenAIBlackBox("fake-model", base_url=fake.base_url, api="completions", cache=tmp_path / "a.sqlite",
                             **FAST)
        res = box.score(["Give the antonym."], ANTONYMS[:2])
    assert fake.headers[0]["authorization"] == f"Bearer {SENTINEL}"  # the SDK did get the key
    _assert_no_secret(tmp_path, res, box)


def _assert_no_secret(folder, result, box) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, "expected the cache files to exist"
    for p in files:  # answers.sqlite and its -wal / -shm companions
        assert SENTINEL.encode() not in p.read_bytes(), p
    assert SENTINEL not in json.dumps(result.to_dict()) and SENTINEL.encode() not in pickle.dumps(result)
    assert SENTINEL not in repr(vars(box)) and SENTINEL not in repr(box)


# ----------------------------------------------------------------------------------------------------------------------
# A real `transformers serve` with the embedded model


SERVED = "gemma-3-270m"  # the cheapest embedded model: these tests are about the server, not the answers' quality


def test_resolve_model_folder_errors(tmp_path):
    with pytest.raises(ServerError, match="not a local folder nor an embedded model"):
        resolve_model_folder(tmp_path / "missing")
    with pytest.raises(ServerError, match="no config.json"):
        resolve_model_folder(tmp_path)


def test_resolve_model_folder_takes_an_embedded_model_by_name():
    from izkit.models import embedded_model_dir

    assert resolve_model_folder(SERVED) == resolve_model_folder(SERVED.upper()) == embedded_model_dir(SERVED)
    assert resolve_model_folder(None) == embedded_model_dir()  # the default, whichever it is


@pytest.fixture(scope="module")
def server():
    # one torch thread in the server: on the shared 2-core machine busy-waiting OpenMP threads stall otherwise
    with LocalServer(SERVED, startup_timeout=240, env={"OMP_NUM_THREADS": "1"}) as srv:
        yield srv


def test_server_starts_on_loopback_and_lists_models(server):
    assert server.alive()
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    with urllib.request.urlopen(server.base_url + "/models", timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["object"] == "list"
    assert "--continuous-batching" in server.command()


def test_real_server_chat_and_completions(server, tmp_path):
    instructions = ["Write the antonym of the word.", "zebra purple mountain quickly"]
    results = {}
    for api in ["completions", "chat"]:
        box = OpenAIBlackBox(server.model_id, base_url=server.base_url, api=api, max_tokens=6, concurrency=8,
                             timeout=300.0, cache=tmp_path / f"{api}.sqlite")
        results[api] = box.score(instructions, ANTONYMS[:3])
        assert results[api].usage.requests == 6
    assert results["completions"].predictions[0][0] == "cold"
    assert results["chat"].predictions == results["completions"].predictions  # the plain template: same prompt
    assert results["completions"].means[0] > results["completions"].means[1]


def test_real_server_memory_is_bounded(server):
    # runs after requests were answered. Left to size its continuous-batching buffers, transformers takes 60% of the
    # machine's free RAM on a CPU (12 GB here, and the OOM killer once two servers ran); LocalServer caps them
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()  # the watcher's: the server
    assert len(children) == 1
    status = Path(f"/proc/{children[0]}/status").read_text()
    rss_gb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024**2
    assert rss_gb < 5.0, f"the model server holds {rss_gb:.1f} GB"
    assert "--cb-num-blocks" in server.command() and "--cb-max-batch-tokens" in server.command()


def test_real_server_cannot_give_loglik(server):
    box = OpenAIBlackBox(server.model_id, base_url=server.base_url, api="completions", objective="loglik", cache=None)
    with pytest.raises(BlackBoxError, match="cannot give log-likelihoods"):
        box.score(["Write the antonym of the word."], ANTONYMS[:2])


def test_secret_never_reaches_cache_or_results_with_the_real_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    box = OpenAIBlackBox(server.model_id, base_url=server.base_url, api="completions", max_tokens=4,
                         timeout=300.0, cache=tmp_path / "answers.sqlite")
    res = box.score(["Write the antonym of the word."], ANTONYMS[:2])
    _assert_no_secret(tmp_path, res, box)
    assert SENTINEL not in server.log_tail(1000)


def test_server_stop_and_down_keeps_what_was_computed(server, tmp_path):
    # runs last among the real-server tests: it stops the module's server
    cache_path = tmp_path / "answers.sqlite"
    box = OpenAIBlackBox(server.model_id, base_url=server.base_url, api="completions", max_tokens=4,
                         cache=cache_path, sdk_retries=0, max_retries=1, backoff=0.01, timeout=120.0)
    box.score(["Write the antonym of the word."], ANTONYMS[:2])
    pid, port, base_url = server.pid, server.port, server.base_url
    server.stop()
    assert not server.alive()
    assert child.group_members(pid) == []  # the whole process group is gone (a zombie left to init counts as gone)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    with pytest.raises(BlackBoxError, match=re.escape(base_url) + ".*did not answer"):
        box.score(["Write the antonym of the word."], ANTONYMS)
    res = box.score(["Write the antonym of the word."], ANTONYMS[:2])  # still answerable: both in the cache
    assert res.usage.cache_hits == 2 and res.usage.requests == 0


def test_server_that_dies_raises_with_its_log(tmp_path):
    bad = tmp_path / "broken-model"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ServerError, match="exited with code .* last lines of its log"):
        LocalServer(bad, startup_timeout=120).start()
