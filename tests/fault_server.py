"""A faulty OpenAI-compatible server for tests: loopback only, stdlib only, deterministic answers.

    with FaultServer(gold={"hot": "cold"}, rate=0.3, seed=1) as srv:   # 30% of the POSTs fail, kinds in turn
        box = OpenAIBlackBox("fake", base_url=srv.base_url)
        ...
    srv.faults          # Counter: how many faults of each kind were injected
    srv.requests        # every HTTP request that reached the server

Answers depend on the prompt only (the ``Instruction: v\\n\\nInput: x\\n\\nOutput:`` template): each instruction gets a
"skill" in [0, 1) from a hash of its text, and it is answered right (``gold[x]``) on input ``x`` when a second hash of
(instruction, input) falls below that skill, else with a fixed wrong word. So different instructions reach different
accuracies, and a faulty and a clean server give the same answer to the same prompt, in any order.

Faults (:data:`KINDS`) are drawn by a seeded RNG in the order requests arrive: each POST fails with probability
``rate`` (or the first ``first`` POSTs all fail), and the failing ones take the kinds in turn from a seeded shuffle
of ``kinds``, so every kind shows up once ``len(kinds)`` faults have happened. ``gone_after=N`` answers N POSTs, then
drops the next one and closes the listening socket (connections are refused from then on). ``api_key`` makes every
request without ``Authorization: Bearer <api_key>`` get a 401.

``upstream=URL`` puts the faults in front of a real OpenAI-compatible server (e.g. a ``LocalServer``): the POSTs that
draw no fault, and every GET, are forwarded there and its answer is relayed as it came.

As a script it serves until a signal ends it (the tests of izkit.serving.serve use it as a stand-in for ``transformers serve``):

    python tests/fault_server.py --port 8123 [--rate 0.3 --seed 1] [--upstream URL] [--ignore-term]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("429_retry_after", "429", "500", "503", "hang", "drop", "bad_json", "no_choices")
PROMPT = re.compile(r"Instruction: (?P<instruction>.*)\n\nInput: (?P<input>.*)\n\nOutput:", re.S)
WRONG = "banana"  # the answer when an instruction "fails" an input


def _unit(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (sha256, so the same in every process, unlike ``hash``)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12


def _prompt_of(body: bytes) -> str:
    """The prompt of a chat or completions request body ('' when it has none)."""
    try:
        req = json.loads(body)
        return req["prompt"] if "prompt" in req else req["messages"][-1]["content"]
    except (ValueError, KeyError, TypeError, IndexError):
        return ""


def answer_for(prompt: str, gold: dict[str, str]) -> str:
    """The server's answer to a prompt: right on input x when hash(v, x) < skill(v), else :data:`WRONG`."""
    m = PROMPT.search(prompt)
    if m is None:
        return WRONG
    v, x = m["instruction"], m["input"]
    right = _unit(f"{v}\0{x}") < _unit(f"skill\0{v}")
    return gold.get(x, WRONG) if right else WRONG


class FaultServer:
    """An OpenAI-compatible server on 127.0.0.1 that fails on purpose; a context manager (start/stop).

    Args:
        gold: input -> right answer (e.g. from a task's examples).
        rate: the share of POSTs that fail.
        kinds: the faults to inject (any of :data:`KINDS`).
        seed: seeds which requests fail and the order of the kinds.
        first: the first ``first`` POSTs fail (on top of ``rate``).
        gone_after: answer this many POSTs, then go away for good.
        api_key: when set, a request with another key (or none) gets HTTP 401.
        hang_s: how long a "hang" holds the request before dropping it (set it past the client's timeout).
        retry_after: the Retry-After header of "429_retry_after", in seconds.
        port: the port (0: a free one); pass a stopped server's port to bring "the same" server back.
        upstream: the base URL (``http://host:port/v1``) of a real server that answers the requests without a fault,
            instead of :func:`answer_for`.
        upstream_timeout: seconds to wait for the upstream's answer.
    """

    def __init__(self, gold: dict[str, str] | None = None, rate: float = 0.0, kinds: tuple[str, ...] = KINDS,
                 seed: int = 0, first: int = 0, gone_after: int | None = None, api_key: str | None = None,
                 hang_s: float = 3.0, retry_after: str = "1", port: int = 0, upstream: str | None = None,
                 upstream_timeout: float = 300.0):
        bad = set(kinds) - set(KINDS)
        if bad:
            raise ValueError(f"unknown fault kinds {sorted(bad)}; choose from {KINDS}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate is the share of POSTs that fail, in [0, 1]; got {rate}")
        self.upstream = upstream.rstrip("/") if upstream else None
        self.upstream_timeout = upstream_timeout
        self.gold, self.rate, self.kinds, self.first = dict(gold or {}), rate, tuple(kinds), first
        self.gone_after, self.api_key, self.hang_s, self.retry_after = gone_after, api_key, hang_s, retry_after
        self.rng = random.Random(seed)
        self.deck: list[str] = []  # the kinds still to deal before the next shuffle
        self.lock = threading.Lock()
        self.stopped = threading.Event()  # set on stop: ends hangs at once
        # what happened, for the tests to check
        self.requests = 0  # every HTTP request
        self.posts = 0  # POSTs (the ones that may fail)
        self.faults: Counter[str] = Counter()  # kind -> faults injected
        self.unauthorized = 0  # 401s sent
        self.answered: list[tuple[str, str]] = []  # (path, prompt) of every good answer, in order
        self.gone = False

        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                with server.lock:
                    server.requests += 1
                if not server._authorized(self):
                    return
                if server.upstream is not None:
                    return self._raw(*server._forward(self.path, None))
                if self.path.rstrip("/").endswith("/models"):
                    models = [{"id": "fake", "object": "model", "owned_by": "izkit"}]
                    self._json(200, {"object": "list", "data": models})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = server._draw()
                if fault == "gone":
                    return  # no answer; the listening socket is being closed
                if not server._authorized(self):
                    return
                if fault is not None:
                    return self._fault(fault)
                if server.upstream is not None:
                    status, data = server._forward(self.path, body)
                    if status == 200:
                        with server.lock:
                            server.answered.append((self.path, _prompt_of(body)))
                    return self._raw(status, data)
                try:
                    req = json.loads(body)
                    payload = server._complete(self.path, req)
                except (ValueError, KeyError, TypeError, IndexError) as err:
                    return self._json(400, {"error": {"message": f"bad request: {err}", "type": "invalid_request"}})
                if payload is None:
                    return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                self._json(200, payload)

            def _fault(self, kind: str):
                if kind in ("429_retry_after", "429"):
                    extra = {"Retry-After": server.retry_after} if kind == "429_retry_after" else {}
                    self._json(429, {"error": {"message": "simulated rate limit", "type": "rate_limit"}}, extra)
                elif kind in ("500", "503"):
                    self._json(int(kind), {"error": {"message": f"simulated {kind}", "type": "server_error"}})
                elif kind == "hang":
                    server.stopped.wait(server.hang_s)  # past the client's timeout; then drop without a word
                elif kind == "bad_json":
                    self._raw(200, b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "mess')
                elif kind == "no_choices":
                    self._json(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                                     "choices": []})
                # "drop": return without a response; the server closes the socket

            def _json(self, status: int, payload: dict, headers: dict | None = None):
                self._raw(status, json.dumps(payload).encode(), headers)

            def _raw(self, status: int, data: bytes, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # loopback only
        self.httpd.daemon_threads = True  # a hung handler never blocks the test process
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- behaviour -------------------------------------------------------------------------------------------------

    def _draw(self) -> str | None:
        """This POST's fate: None (answer it), a fault kind, or "gone"."""
        with self.lock:
            self.requests += 1
            self.posts += 1
            if self.gone_after is not None and self.posts > self.gone_after:
                if not self.gone:
                    self.gone = True
                    threading.Thread(target=self.stop, daemon=True).start()  # not from the serving thread
                return "gone"
            roll = self.rng.random()  # one draw per POST, whatever happens, so the schedule depends on arrivals only
            if self.posts > self.first and roll >= self.rate:
                return None
            if not self.deck:
                self.deck = list(self.kinds)
                self.rng.shuffle(self.deck)
            kind = self.deck.pop()
            self.faults[kind] += 1
            return kind

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.api_key is None or handler.headers.get("Authorization") == f"Bearer {self.api_key}":
            return True
        with self.lock:
            self.unauthorized += 1
        handler._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                      "code": "invalid_api_key"}})
        return False

    def _complete(self, path: str, req: dict) -> dict | None:
        """The OpenAI-shaped answer to a chat or completions request (None for another path)."""
        usage = {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
        head = {"id": "fake-1", "created": 0, "model": req["model"], "usage": usage}
        if path.endswith("/chat/completions"):
            prompt = req["messages"][-1]["content"]
            msg = {"role": "assistant", "content": " " + answer_for(prompt, self.gold)}
            out = {**head, "object": "chat.completion", "choices": [{"index": 0, "message": msg,
                                                                       "finish_reason": "stop"}]}
        elif path.endswith("/completions"):
            prompt = req["prompt"]
            out = {**head, "object": "text_completion", "choices": [
                {"index": 0, "text": " " + answer_for(prompt, self.gold), "finish_reason": "stop", "logprobs": None}]}
        else:
            return None
        with self.lock:
            self.answered.append((path, prompt))
        return out

    def _forward(self, path: str, body: bytes | None) -> tuple[int, bytes]:
        """Ask the upstream server (GET when ``body`` is None); its status and body, or a 502 naming it."""
        url = self.upstream + path[path.index("/v1") + 3:] if "/v1" in path else self.upstream + path
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.upstream_timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (urllib.error.URLError, OSError) as err:
            msg = f"the upstream server {self.upstream} did not answer: {err}"
            return 502, json.dumps({"error": {"message": msg, "type": "bad_gateway"}}).encode()

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> FaultServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop for good: end hangs, stop serving, close the listening socket (idempotent)."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve on 127.0.0.1 until SIGTERM / SIGINT (or SIGKILL) ends the process."""
    p = argparse.ArgumentParser(description="a faulty OpenAI-compatible server on 127.0.0.1, for tests")
    p.add_argument("--port", type=int, default=0, help="the port (default: a free one, printed)")
    p.add_argument("--rate", type=float, default=0.0, help="the share of POSTs that fail")
    p.add_argument("--seed", type=int, default=0, help="seeds which POSTs fail")
    p.add_argument("--upstream", default=None, help="a real server's base URL to forward good requests to")
    p.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (a server that will not stop)")
    args = p.parse_args(argv)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    srv = FaultServer(rate=args.rate, seed=args.seed, port=args.port, upstream=args.upstream).start()
    print(f"fault server on {srv.base_url}", flush=True)
    try:
        threading.Event().wait()  # until a signal ends the process
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
