"""The generator served elsewhere: soft prompts sent as prompt embeddings to a vLLM server (InstructZero step 2).

A 7-13B generator, as in the paper, does not fit beside a study on a laptop; vLLM serves one and takes prompt
embeddings instead of text (``vllm serve MODEL --enable-prompt-embeds``). izkit still builds each generator prompt
``[BOS ; soft tokens ; embedded demo text ; cue]`` itself (:meth:`izkit.generator.SoftPromptGenerator.embed`), with
only the model's tokenizer and input-embedding table in this process (:func:`izkit.models.load_input_embeddings`),
and :class:`RemoteDecoder` sends one row per prompt, unpadded, to the server's Completions API.

The wire format (vLLM's): the request's ``prompt_embeds`` is a list of strings, each the base64 of a tensor of shape
``(positions, hidden size)`` saved by ``torch.save`` (:func:`encode_embeds`; :func:`decode_embeds` reads one back).
Greedy requests (temperature 0) give the instructions the in-process generator writes, token for token, where the
server runs the same weights in the same number format; sampled ones (APE-style) are drawn by the server with its own
random numbers, one request per row with a seed of its own (a server gives every prompt of a request the request's
seed, so APE's identical prompts would all come back as one draw), reproducible against one server, not equal to the
local draws. The
server stops a row at its EOS or at ``max_tokens``; the cleaner (:func:`izkit.cleaner.clean_instruction`) cuts the
instruction out of the continuation exactly as it cuts a local one.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import torch

from izkit.config import Config
from izkit.decoding import Sampling


def encode_embeds(embeds: torch.Tensor) -> str:
    """A ``(positions, hidden)`` tensor as vLLM's ``prompt_embeds`` takes it: base64 of its ``torch.save`` bytes."""
    if embeds.dim() != 2:
        raise ValueError(f"prompt embeddings must be (positions, hidden size), got shape {tuple(embeds.shape)}")
    buf = io.BytesIO()
    torch.save(embeds.detach().cpu().contiguous(), buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_embeds(text: str) -> torch.Tensor:
    """The tensor of one ``prompt_embeds`` string (tensors only: ``weights_only`` loading, as vLLM loads them)."""
    return torch.load(io.BytesIO(base64.b64decode(text)), weights_only=True)


class RemoteDecoder:
    """Decodes rows of prompt embeddings on an OpenAI-compatible server that takes them (vLLM's Completions API).

    Args:
        base_url: the server, e.g. ``http://gpu-box:8000/v1``.
        model: the served model's name; None: the one model the server lists (the request must name it).
        api_key: the server's key, if it asks for one (vLLM: ``--api-key``).
        timeout, max_retries: per request, as the OpenAI client takes them (default: a run's, izkit.config).
    """

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout: float = Config.request_timeout, max_retries: int = Config.max_retries):
        from openai import OpenAI

        self.base_url = base_url
        self.client = OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=max_retries)
        self._model = model
        self.requests = 0  # Completions requests sent (for tests and benchmarks)

    @property
    def model(self) -> str:
        """The served model the requests name (asked of the server once when not given)."""
        if self._model is None:
            served = [m.id for m in self.client.models.list().data]
            if len(served) != 1:
                raise ValueError(f"the generator server at {self.base_url} serves {served or 'no models'}; izkit "
                                 f"sends its prompts to a server of one model (one `vllm serve` per model)")
            self._model = served[0]
        return self._model

    def complete(self, rows: Sequence[torch.Tensor], max_new_tokens: int, sampling: Sampling | None = None,
                 seed: int | None = None) -> list[str]:
        """One continuation per row of embeddings ((positions, hidden) each, no padding), greedy unless
        ``sampling`` is given; in the rows' order. Greedy rows go in one request; sampled rows one request each, row
        ``i`` with the seed :func:`row_seed` of the pass's seed and ``i``."""
        if not rows:
            return []
        if sampling is None:
            return self._create(rows, max_new_tokens, {"temperature": 0.0})
        base = sampling.seed if seed is None else seed
        return [self._create([row], max_new_tokens, {"temperature": sampling.temperature, "top_p": sampling.top_p,
                                                     "seed": row_seed(base, i)})[0] for i, row in enumerate(rows)]

    def _create(self, rows: Sequence[torch.Tensor], max_new_tokens: int, draw: dict) -> list[str]:
        """One Completions request for ``rows``: their continuations, in order."""
        from openai import BadRequestError

        try:
            reply = self.client.completions.create(model=self.model, prompt="", max_tokens=max_new_tokens, **draw,
                                                   extra_body={"prompt_embeds": [encode_embeds(r) for r in rows]})
        except BadRequestError as err:
            raise RuntimeError(f"the generator server at {self.base_url} refused the request ({err}); if it does "
                               f"not take prompt embeddings, start it with `vllm serve MODEL --enable-prompt-embeds`"
                               ) from err
        self.requests += 1
        choices = sorted(reply.choices, key=lambda c: c.index)[: len(rows)]  # the embeddings' completions come first
        if len(choices) != len(rows):
            raise RuntimeError(f"the generator server at {self.base_url} answered {len(choices)} completions for "
                               f"{len(rows)} prompts")
        return [c.text for c in choices]

    def __repr__(self) -> str:
        return f"RemoteDecoder({self.base_url!r}, model={self._model!r})"


def row_seed(seed: int, row: int) -> int:
    """The server's seed for row ``row`` of a sampled pass seeded ``seed``: distinct rows and passes (chunk k of a
    call is seeded ``seed + k``) get distinct seeds while a pass has fewer than a million rows, within the 32-bit
    range servers take."""
    return (seed * 1_000_003 + row) % 2**31


def unpadded_rows(embeds: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """The rows of a left-padded batch ``(B, L, D)`` without their padding: B tensors of (positions, D)."""
    return [e[m.bool()] for e, m in zip(embeds, mask)]

