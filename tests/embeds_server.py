"""A loopback stand-in for ``vllm serve MODEL --enable-prompt-embeds``, for the contract test of izkit.serving.remote.

It speaks what izkit's remote generator needs of vLLM's OpenAI-compatible server: ``GET /v1/models``, and
``POST /v1/completions`` whose ``prompt_embeds`` is one base64 string or a list of them, each a ``torch.save``d
tensor of shape (positions, hidden size), with ``prompt`` empty. It decodes every row on its own (no batch, no
padding) with transformers' ``generate``, greedy at temperature 0 (else sampled from the request's ``seed``, one seed
for every row of a request, as vLLM does), stopping at EOS or ``max_tokens``, and answers one choice per row in the
rows' order. Nothing of izkit's decoding runs here: only the wire format is shared.

    with EmbedsServer(model, tokenizer) as srv:
        RemoteDecoder(srv.base_url)...
"""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class EmbedsServer:
    def __init__(self, model, tokenizer, name: str = "served-model"):
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.rows: list[tuple[int, ...]] = []  # the shape of every row received
        self.seeds: list[int | None] = []  # the seed of every request received
        self.lock = threading.Lock()  # one decoding at a time, as the model is shared with the test
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    return self.reply(200, {"object": "list", "data": [{"id": server.name, "object": "model",
                                                                         "owned_by": "test"}]})
                self.reply(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.rstrip("/") != "/v1/completions" or "prompt_embeds" not in body:
                    return self.reply(400, {"error": {"message": "prompt embeddings are not enabled"}})
                embeds = body["prompt_embeds"]
                embeds = [embeds] if isinstance(embeds, str) else embeds
                server.seeds.append(body.get("seed"))
                texts = [server.complete(e, body["max_tokens"], body.get("temperature", 1.0), body.get("seed"))
                         for e in embeds]
                self.reply(200, {"id": "cmpl-test", "object": "text_completion", "created": 0, "model": server.name,
                                 "choices": [{"index": i, "text": t, "finish_reason": "stop", "logprobs": None}
                                             for i, t in enumerate(texts)]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def complete(self, encoded: str, max_tokens: int, temperature: float, seed: int | None) -> str:
        row = torch.load(io.BytesIO(base64.b64decode(encoded)), weights_only=True)
        assert row.dim() == 2 and row.shape[1] == self.model.config.hidden_size, row.shape
        with self.lock, torch.inference_mode():
            self.rows.append(tuple(row.shape))
            emb = self.model.get_input_embeddings().weight
            x = row.to(device=emb.device, dtype=emb.dtype)[None]  # (1, L, D)
            if temperature:
                torch.manual_seed(seed if seed is not None else 0)
            draw = {"do_sample": True, "temperature": temperature} if temperature else {"do_sample": False}
            out = self.model.generate(inputs_embeds=x, attention_mask=torch.ones(x.shape[:2], dtype=torch.long),
                                      max_new_tokens=max_tokens, **draw,
                                      eos_token_id=self.model.generation_config.eos_token_id,
                                      pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.decode(out[0], skip_special_tokens=True)

    def __enter__(self) -> "EmbedsServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
