"""Instruction generation from soft prompts: InstructZero steps 1 and 2 (Chen et al., ICML 2024, sec. 3.1).

Step 1. A low-dimensional soft prompt ``z`` in ``[-1, 1]^d`` (paper: d = 10) is mapped by a fixed random matrix
``A`` (``d x N*D``) to ``N`` soft tokens of width ``D`` (the open model's hidden size; paper: N = 5):
``p = z A`` reshaped to ``(N, D)``. ``A`` is drawn once per run and never trained: :class:`RandomProjection`.

Step 2. The open-source LLM ``g`` reads ``[soft tokens ; embedded exemplar text]`` and its greedy continuation is the
instruction ``v = g([p ; exemplars])`` (paper eq. 2). The exemplar text is ``kappa`` demos ``Input: x\\nOutput: y``
joined by blank lines, followed by ``The instruction was to``. :class:`SoftPromptGenerator` turns a whole batch of
``z`` into instructions in one batched decoding pass over ``inputs_embeds`` with an attention mask (:func:`decode`:
the same tokens as ``model.generate``, but rows that have finished leave the batch).

Two details that matter:

- The text is embedded by the model's embedding *module* (``model.get_input_embeddings()``), not by indexing its raw
  weight: Gemma multiplies by ``sqrt(D)`` inside the module, and soft tokens must live on the same scale.
- The sequence is ``[BOS ; soft tokens ; text]``. Gemma (like most decoder LMs) uses its first position as an
  attention sink: every later position puts a large share of its attention there. A soft token in that position
  would be "looked at" by everything, but mostly as a sink, and the model never saw anything but BOS there in
  training; putting BOS first keeps the sink intact and lets the soft tokens act like ordinary context.

The APE-style baseline (sampled instructions, no soft prompt) and the Manual baseline (one greedy instruction) use the
same code with no soft tokens: :meth:`SoftPromptGenerator.generate_plain` and ``generate(None, exemplars)``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

DEMO_TEMPLATE = "Input: {input}\nOutput: {output}"  # one exemplar (paper sec. 3.1)
DEMO_SEPARATOR = "\n\n"  # between exemplars
INSTRUCTZERO_TEMPLATE = "{demos}\n\nThe instruction was to"  # the paper's prompt after the soft tokens
APE_TEMPLATE = (  # the forward-generation template of APE (Zhou et al., 2023)
    "I gave a friend an instruction and five inputs. The friend read the instruction and wrote an output for every "
    "one of the inputs. Here are the input-output pairs:\n\n{demos}\n\nThe instruction was to"
)
EMPTY_PLACEHOLDER = "(no instruction generated)"  # returned, with a warning, when the model wrote only whitespace
Z_TOLERANCE = 1e-6  # values this far outside [-1, 1] are clipped silently; further out is an error

_NEWLINE_IDS: dict[int, tuple[Any, list[int]]] = {}  # id(tokenizer) -> (tokenizer, ids of tokens with a newline)


# ----------------------------------------------------------------------------------------------------------------------
# Step 1: the random projection


class RandomProjection:
    """The fixed random matrix ``A`` of InstructZero step 1: ``z (B, d) -> soft tokens (B, n_tokens, hidden_size)``.

    Args:
        d: the soft prompt's dimension (paper: 10).
        n_tokens: number of soft tokens N (paper: 5; 3 and 10 also tried).
        hidden_size: the open model's hidden size D (Gemma 3 270M: 640).
        kind: "uniform": entries of ``A`` uniform in [-1, 1], as in the paper. "normal": entries normal with standard
            deviation ``scale``; use :meth:`for_model` to pick ``scale`` so the soft tokens spread like real
            embeddings.
        seed: seeds ``A`` (same seed, same matrix).
        scale: standard deviation of the normal entries (ignored for "uniform").

    With ``z`` uniform in [-1, 1]^d (variance 1/3 per coordinate) a soft-token entry ``sum_i z_i A_ij`` has variance
    ``d * sigma_A^2 / 3``: about ``d / 9`` for uniform entries (std 1.05 for d = 10, close to Gemma's embedding std of
    about 1.0, but far from models whose embeddings have std 0.02), and ``target^2`` for normal entries with
    ``sigma_A = target * sqrt(3 / d)``.
    """

    def __init__(
        self,
        d: int = 10,
        n_tokens: int = 5,
        hidden_size: int = 640,
        kind: str = "uniform",
        seed: int = 0,
        scale: float = 1.0,
    ) -> None:
        if d < 1 or n_tokens < 1 or hidden_size < 1:
            raise ValueError(f"d, n_tokens and hidden_size must be positive, got {d}, {n_tokens}, {hidden_size}")
        if kind not in ("uniform", "normal"):
            raise ValueError(f"kind must be 'uniform' or 'normal', got {kind!r}")
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        self.d, self.n_tokens, self.hidden_size = d, n_tokens, hidden_size
        self.kind, self.seed, self.scale = kind, seed, float(scale)
        gen = torch.Generator().manual_seed(seed)
        shape = (d, n_tokens * hidden_size)
        if kind == "uniform":
            self.A = torch.rand(shape, generator=gen, dtype=torch.float64).mul_(2).sub_(1).float()  # (d, N*D)
        else:
            self.A = torch.randn(shape, generator=gen, dtype=torch.float64).mul_(self.scale).float()  # (d, N*D)

    @classmethod
    def for_model(
        cls,
        model: Any,
        d: int = 10,
        n_tokens: int = 5,
        kind: str = "normal",
        seed: int = 0,
        n_sample: int = 4096,
    ) -> RandomProjection:
        """A projection sized for ``model``; for "normal", scaled so soft tokens spread like the model's embeddings.

        The spread is the standard deviation of the embedding *module's* output over ``n_sample`` token ids drawn at
        random (seeded) from the vocabulary: Gemma scales by ``sqrt(D)`` inside the module, so the raw weight's
        spread would be 25x too small.
        """
        emb = model.get_input_embeddings()
        hidden = int(emb.weight.shape[1])
        if kind == "uniform":
            return cls(d=d, n_tokens=n_tokens, hidden_size=hidden, kind=kind, seed=seed)
        target = embedding_std(model, n_sample=n_sample, seed=seed)
        return cls(d=d, n_tokens=n_tokens, hidden_size=hidden, kind=kind, seed=seed, scale=target * math.sqrt(3.0 / d))

    def check_z(self, z: Any) -> torch.Tensor:
        """``z`` as a float32 tensor of shape (B, d), or a ValueError naming the expected shape/bounds and the fault."""
        try:
            zt = torch.as_tensor(np.asarray(z, dtype=np.float64) if not torch.is_tensor(z) else z).double()
        except (TypeError, ValueError) as err:  # ragged rows, strings, None: numpy's message does not say what
            raise ValueError(f"z must be numbers of shape (B, {self.d}) (or ({self.d},)), got {type(z).__name__} "
                             f"that is not one: {err}") from None
        if zt.numel() == 0:
            raise ValueError(f"z is empty: shape {tuple(zt.shape)}; pass at least one soft prompt")
        if zt.ndim == 1:
            zt = zt[None]  # a single soft prompt (d,) -> (1, d)
        if zt.ndim != 2 or zt.shape[1] != self.d:
            raise ValueError(f"z must have shape (B, {self.d}) (or ({self.d},)), got shape {tuple(zt.shape)}")
        bad = ~torch.isfinite(zt) | (zt.abs() > 1 + Z_TOLERANCE)  # (B, d)
        if bad.any():
            b, i = (int(x) for x in bad.nonzero()[0])
            raise ValueError(
                f"z must lie in [-1, 1]^{self.d}; z[{b}, {i}] = {zt[b, i].item()!r} is out of bounds "
                f"({int(bad.sum())} value(s) in all)"
            )
        return zt.clamp(-1.0, 1.0).float()  # (B, d)

    def __call__(self, z: Any) -> torch.Tensor:
        """Soft tokens ``p = z A`` (step 1): (B, d) -> (B, n_tokens, hidden_size), float32 on the CPU."""
        zt = self.check_z(z)  # (B, d)
        return (zt @ self.A).view(zt.shape[0], self.n_tokens, self.hidden_size)  # (B, N, D)

    def __repr__(self) -> str:
        return (
            f"RandomProjection(d={self.d}, n_tokens={self.n_tokens}, hidden_size={self.hidden_size}, "
            f"kind={self.kind!r}, seed={self.seed}, scale={self.scale:.4g})"
        )


@torch.inference_mode()
def embedding_std(model: Any, n_sample: int = 4096, seed: int = 0) -> float:
    """Standard deviation of the embedding module's output over ``n_sample`` random (seeded) token ids."""
    emb = model.get_input_embeddings()
    vocab = int(emb.weight.shape[0])
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randperm(vocab, generator=gen)[: min(n_sample, vocab)]  # (n,)
    out = emb(ids.to(emb.weight.device)[None])  # (1, n, D)
    return float(out.float().std())


# ----------------------------------------------------------------------------------------------------------------------
# Cleaning the model's continuation into one instruction

_QUOTES = "\"'`“”‘’«»"
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "dr.", "no.", "st.", "approx.")
_ECHO_MARKERS = ("Input:", "Output:", "Instruction:")


def clean_instruction(raw: str, lead: str = "The instruction was to") -> str:
    """Turn the generator's raw continuation into one instruction sentence.

    Rules, in order: skip blank lines before the text; if the text starts by echoing the prompt's last words
    (``lead``, after any quote), drop them; keep the first line; cut before an echoed ``Input:``/``Output:``; keep
    the first sentence (abbreviations such as "e.g." do not end one); strip quotes and spaces. If nothing is left,
    the raw text squashed to one line is returned; if the raw text is blank, :data:`EMPTY_PLACEHOLDER` is returned
    and a warning logged (never a silent empty string).
    """
    text = _first_line(raw, lead)
    for marker in _ECHO_MARKERS:
        pos = text.find(marker)
        if pos >= 0:
            text = text[:pos].strip()
    text = _first_sentence(text)
    text = text.strip().strip(_QUOTES).strip()
    if text and text[-1] in _QUOTES + ",;:":
        text = text.rstrip(_QUOTES + ",;:").strip()
    if text:
        return text
    squashed = " ".join(raw.split())
    if squashed:
        logger.warning("cleaning left nothing of the generated text %r; keeping it as is", raw)
        return squashed
    logger.warning("the generator produced only whitespace (%r); returning %r", raw, EMPTY_PLACEHOLDER)
    return EMPTY_PLACEHOLDER


def _after_lead(raw: str, lead: str) -> str:
    """``raw`` without leading whitespace and without an echoed ``lead`` at its start (after any opening quote)."""
    text = raw.lstrip()
    if lead:
        bare = text.lstrip(_QUOTES).lstrip()
        if bare.lower().startswith(lead.lower()):
            text = bare[len(lead) :].lstrip()
    return text


def _first_line(raw: str, lead: str) -> str:
    """The first non-blank line, without an echoed ``lead`` at its start."""
    return _after_lead(raw, lead).split("\n", 1)[0].strip()


def instruction_complete(raw: str, lead: str = "The instruction was to") -> bool:
    """True once more text could not change :func:`clean_instruction` of ``raw``: the first line has ended, an echoed
    ``Input:``/``Output:`` has begun, or the first sentence has ended (a sentence end followed by whitespace)."""
    after = _after_lead(raw, lead)  # trailing whitespace kept: it is what confirms a sentence end
    first = after.split("\n", 1)[0]
    if "\n" in after or any(marker in first for marker in _ECHO_MARKERS):
        return True
    return len(_first_sentence(first)) < len(first)


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


# ----------------------------------------------------------------------------------------------------------------------
# Step 2: the generator


@dataclass
class Sampling:
    """Decoding settings for sampled instructions (the APE-style baseline); greedy decoding needs none."""

    temperature: float = 0.9  # softmax temperature (APE samples, rather than decodes greedily)
    top_p: float = 0.95  # nucleus sampling mass
    seed: int = 0  # same seed and same batch -> same instructions; chunk k of a call uses seed + k
    num_per_call: int = 25  # rows per decoding pass (the batch size when sampling)


def kv(module: Any, cache: Any) -> dict[str, Any]:
    """The keyword argument that hands `cache` to `module.forward`: transformers renamed `past_key_values` to `cache`
    during 5.x (the old name warns on every call, and goes in 5.40), so ask the forward which one it takes."""
    return {_cache_keyword(type(module)): cache}


@functools.lru_cache(maxsize=None)
def _cache_keyword(cls: type) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


@torch.inference_mode()
def decode(
    model: Any,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop_now: torch.Tensor,
    input_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    is_done: Callable[[list[int]], bool] | None = None,
    sampling: Sampling | None = None,
    seed: int | None = None,
    past_key_values: Any | None = None,
    past_mask: torch.Tensor | None = None,
) -> list[list[int]]:
    """Decode a left-padded batch with a KV cache; a row leaves the batch as soon as it stops.

    ``model.generate`` keeps computing rows that have already stopped until the longest one ends; with one-line
    answers (3 tokens on average, up to ``max_new_tokens``) that is most of the decode work. Here finished rows are
    dropped from the batch and from the KV cache, and the LM head runs only at the last position. Greedy decoding
    gives the tokens ``model.generate(do_sample=False)`` gives (checked in the tests).

    Args:
        model: a causal LM.
        attention_mask: (B, T) 0 on the left padding.
        max_new_tokens: the most tokens per row.
        stop_now: (V,) bool, tokens that end a row at once (EOS; for one-line answers also every newline token).
        input_ids / inputs_embeds: (B, T) ids or (B, T, D) embeddings of the prompts (exactly one of them).
        is_done: a rule on a row's tokens so far that ends it early (the generator stops once the first sentence
            of the instruction is complete: the rest would be cleaned away).
        sampling: None for greedy; else temperature and top-p sampling.
        seed: seeds a private torch.Generator for sampling (the global RNG is not touched).
        past_key_values, past_mask: a KV cache already holding (B, P) earlier tokens of every row, e.g. a prompt
            prefix shared by many rows and computed once, and its (B, P) attention mask; the prompts then continue
            it. Padding may sit anywhere: positions count only the unmasked tokens.

    Returns:
        B lists of generated ids, each ending with its stop token when one came.
    """
    from transformers import DynamicCache

    mask = attention_mask if past_mask is None else torch.cat([past_mask, attention_mask], dim=1)  # (B, P + T)
    dev = mask.device
    batch = mask.shape[0]
    stop_now = stop_now.to(dev)  # (V,)
    gen = None
    if sampling is not None:
        gen = torch.Generator(device=dev).manual_seed(sampling.seed if seed is None else seed)
    cache = past_key_values if past_key_values is not None else DynamicCache(config=model.config)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, -attention_mask.shape[1] :]  # (B, T): positions skip the padding
    out = model(
        input_ids=input_ids,
        inputs_embeds=inputs_embeds,
        attention_mask=mask,
        position_ids=pos,
        use_cache=True,
        **kv(model, cache),
        # the last position as an index tensor, not the int 1: the int slices a non-contiguous (B, 1, D) view, which
        # torch.matmul turns into a bmm against B copies of the (D, V) LM head (10x slower for B = 128 here)
        logits_to_keep=torch.tensor([attention_mask.shape[1] - 1], device=dev),
    )  # logits (B, 1, V)
    active = torch.arange(batch, device=dev)  # (a,) rows still decoding
    next_pos = pos[:, -1] + 1  # (a,)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    for step in range(max_new_tokens):
        logits = out.logits[:, -1].float()  # (a, V)
        nxt = _sample(logits, sampling, gen) if sampling is not None else logits.argmax(dim=-1)  # (a,)
        for r, t in zip(active.tolist(), nxt.tolist()):
            tokens[r].append(t)
        done = stop_now[nxt]  # (a,)
        if is_done is not None:
            extra = [is_done(tokens[r]) for r in active.tolist()]
            done = done | torch.tensor(extra, dtype=torch.bool, device=dev)
        if step == max_new_tokens - 1:
            break
        keep = (~done).nonzero().flatten()  # (a',) indices into the active rows
        if keep.numel() == 0:
            break
        if keep.numel() < active.numel():  # drop finished rows from the batch and the KV cache
            for layer in cache.layers:
                layer.batch_select_indices(keep)
            active, mask, next_pos, nxt = active[keep], mask[keep], next_pos[keep], nxt[keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)  # (a, P + T + step + 1)
        out = model(
            input_ids=nxt[:, None], attention_mask=mask, position_ids=next_pos[:, None], use_cache=True,
            **kv(model, cache),
        )  # logits (a, 1, V)
        next_pos = next_pos + 1
    return tokens


def _sample(logits: torch.Tensor, sampling: Sampling, gen: torch.Generator | None) -> torch.Tensor:
    """Temperature and nucleus (top-p) sampling: (a, V) logits -> (a,) token ids."""
    probs = torch.softmax(logits / max(sampling.temperature, 1e-5), dim=-1)  # (a, V)
    if sampling.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)  # (a, V)
        outside = sorted_p.cumsum(dim=-1) - sorted_p >= sampling.top_p  # (a, V) beyond the nucleus
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)  # (a, V)
    return torch.multinomial(probs, 1, generator=gen)[:, 0]  # (a,)


def newline_token_ids(tokenizer: Any) -> list[int]:
    """Ids of every vocabulary token that contains a newline (extra stop ids for one-line answers), cached."""
    hit = _NEWLINE_IDS.get(id(tokenizer))
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_tokens)
    ids = [
        i
        for i, p in enumerate(pieces)
        if p is not None
        and p not in special
        and (p in ("<0x0A>", "<0x0D>") or "\n" in p or "\r" in p or "Ċ" in p)  # "Ċ": byte-level BPE's newline
    ]
    _NEWLINE_IDS[id(tokenizer)] = (tokenizer, ids)
    return ids


def _is_example_list(exemplars: Any) -> bool:
    return len(exemplars) > 0 and hasattr(exemplars[0], "answers")


class SoftPromptGenerator:
    """The open model ``g`` of InstructZero step 2: soft prompts + exemplars -> instructions.

    Args:
        model, tokenizer: a causal LM and its tokenizer (e.g. from :func:`izkit.models.load_causal_lm`).
        projection: the step-1 matrix; None to allow only the plain (no soft prompt) path.
        template: the prompt after the soft tokens, with ``{demos}`` (default: the paper's;
            :data:`APE_TEMPLATE` is the APE forward template).
        demo_template: one exemplar, with ``{input}`` and ``{output}`` (``answers[0]`` is shown).
        max_new_tokens: longest instruction, in tokens.
        batch_size: rows per decoding pass; larger requests are cut into chunks (a progress bar shows when there
            are more than 3).

    ``last_raw`` keeps the raw continuations of the latest call, for inspection.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        projection: RandomProjection | None = None,
        template: str = INSTRUCTZERO_TEMPLATE,
        demo_template: str = DEMO_TEMPLATE,
        max_new_tokens: int = 32,
        batch_size: int = 32,  # rows per pass: 64 rows took 2.2x as long as two passes of 32 on 2 CPU cores
    ) -> None:
        if "{demos}" not in template:
            raise ValueError(f"template must contain '{{demos}}', got {template!r}")
        hidden = int(model.get_input_embeddings().weight.shape[1])
        if projection is not None and projection.hidden_size != hidden:
            raise ValueError(
                f"the projection makes tokens of width {projection.hidden_size} but the model's hidden size is "
                f"{hidden}; build it with RandomProjection.for_model(model)"
            )
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size and max_new_tokens must be positive, got {batch_size}, {max_new_tokens}")
        self.model, self.tokenizer, self.projection = model, tokenizer, projection
        self.template, self.demo_template = template, demo_template
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.lead = template.rsplit("}", 1)[-1].strip()  # the prompt's last words, e.g. "The instruction was to"
        self.last_raw: list[str] = []
        self.calls = 0  # batched decoding passes made (for tests and benchmarks)

    # -- prompt text ---------------------------------------------------------------------------------------------------

    def prompt_text(self, exemplars: Sequence[Any]) -> str:
        """The text part of the prompt: the demos joined by blank lines, inside the template."""
        if not exemplars:
            raise ValueError("need at least one exemplar to induce an instruction from")
        demos = DEMO_SEPARATOR.join(self.demo_template.format(input=e.input, output=e.answers[0]) for e in exemplars)
        return self.template.format(demos=demos)

    # -- public API ----------------------------------------------------------------------------------------------------

    def generate(
        self,
        z: Any,
        exemplars: Sequence[Any] | Sequence[Sequence[Any]],
        sampling: Sampling | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        """B soft prompts -> B instructions (step 2), greedy unless ``sampling`` is given.

        Args:
            z: (B, d) soft prompts in [-1, 1] (a (d,) vector counts as B = 1), or None for one instruction from the
                exemplars alone (the Manual baseline).
            exemplars: the kappa demos shared by all rows, or one list of demos per row (B lists).
            sampling: sample instead of greedy decoding (same seed -> same result).
            batch_size: rows per decoding pass (default: the generator's).
            progress: show a tqdm bar; default when there are more than 3 chunks.

        Returns:
            B cleaned instructions (see :func:`clean_instruction`).
        """
        if z is None:
            return self.generate_plain(exemplars, n=1, sampling=sampling, batch_size=batch_size, progress=progress)
        if self.projection is None:
            raise ValueError("this generator has no projection; pass z=None or build it with a RandomProjection")
        soft = self.projection(z)  # (B, N, D)
        texts = self._texts(exemplars, soft.shape[0])
        return self._run(texts, soft, sampling, batch_size, progress)

    def generate_plain(
        self,
        exemplars: Sequence[Any] | Sequence[Sequence[Any]],
        n: int = 1,
        sampling: Sampling | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        """n instructions with no soft prompt: ``[BOS ; text]`` (the APE-style baseline when sampling).

        Greedy decoding gives n copies of the same instruction; pass ``sampling`` (e.g. ``Sampling()``) for n
        different ones. ``exemplars`` may be one demo list or n of them (APE draws a demo subset per sample).
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        texts = self._texts(exemplars, n)
        if sampling is not None and batch_size is None:
            batch_size = sampling.num_per_call
        return self._run(texts, None, sampling, batch_size, progress)

    # -- internals -----------------------------------------------------------------------------------------------------

    def _texts(self, exemplars: Any, n_rows: int) -> list[str]:
        if _is_example_list(exemplars):
            return [self.prompt_text(exemplars)] * n_rows
        if len(exemplars) != n_rows:
            raise ValueError(
                f"got {len(exemplars)} exemplar lists for {n_rows} rows; pass one shared list of examples or one "
                f"list per row"
            )
        return [self.prompt_text(e) for e in exemplars]

    def embed(self, texts: Sequence[str], soft: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``[pad.. ; BOS ; soft tokens ; text]`` embeddings and their attention mask.

        Args:
            texts: B prompt texts (embedded by the model's embedding module, without special tokens).
            soft: (B, N, D) soft tokens, or None for none.

        Returns:
            inputs_embeds (B, L, D) in the model's dtype and device, attention_mask (B, L).
        """
        emb = self.model.get_input_embeddings()
        device, dtype = emb.weight.device, emb.weight.dtype
        tok = self.tokenizer
        n_soft = 0 if soft is None else soft.shape[1]
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        text_ids = tok(list(texts), add_special_tokens=False)["input_ids"]
        lengths = [len(bos) + n_soft + len(t) for t in text_ids]
        width = max(lengths)
        ids = torch.full((len(texts), width), pad_id, dtype=torch.long)  # (B, L)
        mask = torch.zeros((len(texts), width), dtype=torch.long)  # (B, L)
        is_soft = torch.zeros((len(texts), width), dtype=torch.bool)  # (B, L)
        for b, (t, length) in enumerate(zip(text_ids, lengths)):
            start = width - length  # left padding
            ids[b, start:] = torch.tensor(bos + [pad_id] * n_soft + t, dtype=torch.long)
            mask[b, start:] = 1
            is_soft[b, start + len(bos) : start + len(bos) + n_soft] = True
        with torch.inference_mode():
            embeds = emb(ids.to(device)).clone()  # (B, L, D), scaled as the model scales its own tokens
            if soft is not None:
                embeds[is_soft.to(device)] = soft.reshape(-1, soft.shape[-1]).to(device=device, dtype=dtype)
        return embeds, mask.to(device)

    def _run(
        self,
        texts: list[str],
        soft: torch.Tensor | None,
        sampling: Sampling | None,
        batch_size: int | None,
        progress: bool | None,
    ) -> list[str]:
        size = batch_size or self.batch_size
        starts = list(range(0, len(texts), size))
        show = progress if progress is not None else len(starts) > 3
        if show:
            from tqdm.auto import tqdm

            starts_iter = tqdm(starts, desc="instructions", unit="batch")
        else:
            starts_iter = starts
        raw: list[str] = []
        for k, s in enumerate(starts_iter):
            chunk_soft = None if soft is None else soft[s : s + size]  # (b, N, D)
            seed = None if sampling is None else sampling.seed + k
            raw.extend(self._generate_chunk(texts[s : s + size], chunk_soft, sampling, seed))
        self.last_raw = raw
        return [clean_instruction(r, self.lead) for r in raw]

    def _generate_chunk(
        self, texts: list[str], soft: torch.Tensor | None, sampling: Sampling | None, seed: int | None
    ) -> list[str]:
        embeds, mask = self.embed(texts, soft)  # (b, L, D), (b, L)
        stop_now = torch.zeros(len(self.tokenizer), dtype=torch.bool)  # (V,)
        eos = self.tokenizer.eos_token_id
        stop_now[list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])] = True
        self.calls += 1
        rows = decode(
            self.model,
            mask,
            self.max_new_tokens,
            stop_now,
            inputs_embeds=embeds,
            is_done=lambda ids: instruction_complete(self.tokenizer.decode(ids, skip_special_tokens=True), self.lead),
            sampling=sampling,
            seed=seed,
        )
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)
