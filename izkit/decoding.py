"""Batched decoding with a KV cache, shared by the generator (step 2) and the local black box (step 3).

- :func:`left_pad` turns token-id rows of unequal length into one left-padded batch and its attention mask;
- :func:`stop_tokens` says which generated tokens end a row: EOS at once and, for one-line answers, a line break once
  the row holds some non-space text (an answer that opens with a blank line is not cut to nothing);
- :func:`decode` runs greedy or sampled decoding over ``input_ids`` or ``inputs_embeds``, dropping each row from the
  batch and from the KV cache as soon as it stops, with the LM head only at the last position;
- :func:`shared_prefix_length` and :class:`PrefixCache`: positions that every row of a batch begins with are
  prefilled once and their KV cache copied to each row (``decode(past_key_values=...)`` continues it).

Positions count only unmasked tokens (:func:`position_ids`), so padding may sit anywhere in the batch; the KV cache is
handed to ``forward`` under the keyword its signature takes (:func:`cache_kwargs`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Sampling:
    """Settings for sampled decoding (the APE-style baseline); greedy decoding needs none."""

    temperature: float = 0.9  # softmax temperature (APE samples, rather than decodes greedily)
    top_p: float = 0.95  # nucleus sampling mass
    seed: int = 0  # same seed and same batch -> same instructions; chunk k of a call uses seed + k
    num_per_call: int = 25  # rows per decoding pass (the batch size when sampling)


# ----------------------------------------------------------------------------------------------------------------------
# Batches, positions and the KV cache


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of token ids -> ``ids (B, T)`` padded on the left with ``pad_id`` and ``mask (B, T)``, 0 on the padding.

    Left padding keeps every row's last real token in the last column, where decoding reads the next-token logits.
    """
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for b, r in enumerate(rows):
        if len(r):
            ids[b, width - len(r) :] = torch.as_tensor(list(r), dtype=torch.long)
            mask[b, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` positions that skip the padding: the k-th unmasked token of a row sits at position k - 1."""
    return (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)


def new_cache(model: Any) -> Any:
    """An empty KV cache for ``model``."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def keep_rows(cache: Any, rows: torch.Tensor) -> None:
    """Select (and possibly repeat) batch rows of a KV cache in place: ``rows (b,)`` indexes the current rows."""
    for layer in cache.layers:
        layer.batch_select_indices(rows)


def cache_kwargs(module: Any, cache: Any) -> dict[str, Any]:
    """The keyword argument that hands ``cache`` to ``module.forward``: transformers renamed ``past_key_values`` to
    ``cache`` during 5.x (the old name warns on every call, and goes in 5.40), so ask the forward which one it takes."""
    return {_cache_keyword(type(module)): cache}


@functools.lru_cache(maxsize=None)
def _cache_keyword(cls: type) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def shared_prefix_length(embeds: torch.Tensor, mask: torch.Tensor) -> int:
    """How many leading positions every row of a left-padded batch shares (same embedding, no padding), keeping at
    least the last position of each row to decode from: (B, L, D), (B, L) -> P in [0, L - 1]."""
    if embeds.shape[1] < 2 or not bool(mask[:, 0].all()):
        return 0  # a padded row shares nothing at the start
    same = (embeds == embeds[:1]).all(dim=-1).all(dim=0)  # (L,) position identical in every row
    differ = (~same[:-1]).nonzero()
    return int(differ[0]) if differ.numel() else embeds.shape[1] - 1


class PrefixCache:
    """The KV cache of the latest shared prefix, prefilled once and handed out as a fresh copy per batch.

    ``rows(prefix, n)`` gives a cache holding ``prefix`` (P, D) for each of ``n`` rows; the same prefix again (a run's
    rounds: same exemplars, same template) reuses the kept prefill. ``prefills`` counts the prefills made.
    """

    def __init__(self, model: Any):
        self.model = model
        self.prefills = 0
        self._kept: tuple[torch.Tensor, Any] | None = None  # (prefix (P, D), its cache with one row)

    @torch.inference_mode()
    def rows(self, prefix: torch.Tensor, n_rows: int) -> Any:
        if self._kept is None or not torch.equal(self._kept[0], prefix):
            cache = new_cache(self.model)
            self.model(inputs_embeds=prefix[None], use_cache=True, logits_to_keep=1,
                       **cache_kwargs(self.model, cache))  # (1, P) positions into the cache; no logits needed
            self._kept = (prefix.clone(), cache)
            self.prefills += 1
        cache = copy.deepcopy(self._kept[1])
        keep_rows(cache, torch.zeros(n_rows, dtype=torch.long, device=prefix.device))  # row 0, n_rows times
        return cache


# ----------------------------------------------------------------------------------------------------------------------
# Stop tokens


@dataclass(frozen=True)
class StopTokens:
    """Which generated tokens end a row, as (V,) bool tables over the vocabulary.

    A row ends at a token in ``now``; with the line rule (``newline`` set), also at a token that holds text followed
    by a line break (``ends_line``), or at any token with a line break once the row holds non-space text, i.e. once
    it has had a token outside ``blank``.
    """

    now: torch.Tensor  # (V,) EOS
    newline: torch.Tensor | None = None  # (V,) holds a line break
    blank: torch.Tensor | None = None  # (V,) only whitespace (or a special token): adds no text
    ends_line: torch.Tensor | None = None  # (V,) non-space text, then a line break, inside the token

    def to(self, device: Any) -> StopTokens:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return StopTokens(move(self.now), move(self.newline), move(self.blank), move(self.ends_line))


_VOCAB: dict[int, tuple[Any, dict[str, list[int]]]] = {}  # id(tokenizer) -> (tokenizer, token classes)
_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece's byte-fallback pieces


def eos_token_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's EOS id(s) as a list (empty when it has none)."""
    eos = tokenizer.eos_token_id
    return list(eos) if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos])


@functools.lru_cache(maxsize=1)
def _byte_level_alphabet() -> dict[str, int]:
    """Byte-level BPE's letter -> byte: printable bytes stand for themselves, the other 68 (space, newline, ...)
    are written chr(256 + k), k counting them in byte order (GPT-2's ``bytes_to_unicode``)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    letters = {chr(b): b for b in printable}
    moved = [b for b in range(256) if b not in printable]
    letters.update({chr(256 + k): b for k, b in enumerate(moved)})
    return letters


def _piece_text(piece: str, byte_level: bool) -> str:
    """The text a vocabulary piece stands for; part of a multi-byte character reads as U+FFFD (text, not space)."""
    if byte_level:
        alphabet = _byte_level_alphabet()
        if all(c in alphabet for c in piece):
            return bytes(alphabet[c] for c in piece).decode("utf-8", errors="replace")
        return piece
    ascii_byte = lambda m: chr(int(m.group(1), 16)) if int(m.group(1), 16) < 0x80 else "\ufffd"  # noqa: E731
    return _BYTE.sub(ascii_byte, piece).replace("▁", " ")  # "▁": SentencePiece's space


def _vocabulary_classes(tokenizer: Any) -> dict[str, list[int]]:
    """Ids of the tokens with a line break, of whitespace-only tokens, and of text-then-line-break tokens, cached.

    Read from the vocabulary's pieces (decoding every token on its own takes seconds): SentencePiece writes a space
    as "▁" and keeps a newline as is; byte-level BPE writes each byte as a letter (" " as "Ġ", "\\n" as "Ċ").
    """
    hit = _VOCAB.get(id(tokenizer))
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    byte_level = "Ċ" in "".join(tokenizer.convert_ids_to_tokens(tokenizer.encode("\n", add_special_tokens=False)))
    special = set(tokenizer.all_special_tokens)
    classes: dict[str, list[int]] = {"newline": [], "blank": [], "ends_line": []}
    for i, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if piece is None or piece in special:
            classes["blank"].append(i)  # decoding skips special tokens: they add no text
            continue
        text = _piece_text(piece, byte_level)
        rest = text.lstrip()  # from the first non-space character on
        if "\n" in text or "\r" in text:
            classes["newline"].append(i)
            if "\n" in rest or "\r" in rest:
                classes["ends_line"].append(i)
        if not rest:
            classes["blank"].append(i)
    _VOCAB[id(tokenizer)] = (tokenizer, classes)
    return classes


def stop_tokens(tokenizer: Any, one_line: bool = False) -> StopTokens:
    """EOS ends a row; with ``one_line``, so does the first line break that follows some non-space text."""

    def table(ids: list[int]) -> torch.Tensor:
        mask = torch.zeros(len(tokenizer), dtype=torch.bool)  # (V,)
        mask[ids] = True
        return mask

    now = table(eos_token_ids(tokenizer))  # (V,)
    if not one_line:
        return StopTokens(now)
    classes = _vocabulary_classes(tokenizer)
    return StopTokens(now, table(classes["newline"]), table(classes["blank"]), table(classes["ends_line"]))


# ----------------------------------------------------------------------------------------------------------------------
# Decoding


@torch.inference_mode()
def decode(
    model: Any,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop: StopTokens,
    input_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    is_done: Callable[[list[int]], bool] | None = None,
    sampling: Sampling | None = None,
    seed: int | None = None,
    past_key_values: Any | None = None,
    past_mask: torch.Tensor | None = None,
) -> list[list[int]]:
    """Decode a left-padded batch with a KV cache; a row leaves the batch as soon as it stops.

    ``model.generate`` keeps computing rows that have stopped until the longest one ends; here finished rows are
    dropped from the batch and from the KV cache. Greedy decoding gives the tokens ``model.generate(do_sample=False)``
    gives (checked in the tests).

    Args:
        model: a causal LM.
        attention_mask: (B, T) 0 on the left padding.
        max_new_tokens: the most tokens per row.
        stop: the tokens that end a row (:func:`stop_tokens`).
        input_ids / inputs_embeds: (B, T) ids or (B, T, D) embeddings of the prompts (exactly one of them).
        is_done: a rule on a row's tokens so far that ends it early (the generator stops once the first sentence
            of the instruction is complete: the rest would be cleaned away).
        sampling: None for greedy; else temperature and top-p sampling.
        seed: seeds a private torch.Generator for sampling (default ``sampling.seed``; the global RNG is untouched).
        past_key_values, past_mask: a KV cache already holding (B, P) earlier tokens of every row (e.g. a prompt
            prefix shared by many rows and computed once) and its (B, P) attention mask; the prompts continue it.

    Returns:
        B lists of generated ids, each ending with its stop token when one came.
    """
    mask = attention_mask if past_mask is None else torch.cat([past_mask, attention_mask], dim=1)  # (B, P + T)
    dev = mask.device
    stop = stop.to(dev)
    gen = None
    if sampling is not None:
        gen = torch.Generator(device=dev).manual_seed(sampling.seed if seed is None else seed)
    cache = past_key_values if past_key_values is not None else new_cache(model)
    pos = position_ids(mask)[:, -attention_mask.shape[1] :]  # (B, T)
    out = model(
        input_ids=input_ids,
        inputs_embeds=inputs_embeds,
        attention_mask=mask,
        position_ids=pos,
        use_cache=True,
        **cache_kwargs(model, cache),
        # the last position as an index tensor, not the int 1: the int slices a non-contiguous (B, 1, D) view, which
        # torch.matmul turns into a bmm against B copies of the (D, V) LM head
        logits_to_keep=torch.tensor([attention_mask.shape[1] - 1], device=dev),
    )  # logits (B, 1, V)
    active = torch.arange(mask.shape[0], device=dev)  # (a,) rows still decoding
    next_pos = pos[:, -1] + 1  # (a,)
    has_text = torch.zeros(mask.shape[0], dtype=torch.bool, device=dev)  # (a,) a non-space token came
    tokens: list[list[int]] = [[] for _ in range(mask.shape[0])]
    for step in range(max_new_tokens):
        logits = out.logits[:, -1].float()  # (a, V)
        nxt = _sample(logits, sampling, gen) if sampling is not None else logits.argmax(dim=-1)  # (a,)
        for r, t in zip(active.tolist(), nxt.tolist()):
            tokens[r].append(t)
        done = stop.now[nxt]  # (a,)
        if stop.newline is not None:
            done = done | stop.ends_line[nxt] | (stop.newline[nxt] & has_text)
            has_text = has_text | ~stop.blank[nxt]
        if is_done is not None:
            extra = [is_done(tokens[r]) for r in active.tolist()]
            done = done | torch.tensor(extra, dtype=torch.bool, device=dev)
        if step == max_new_tokens - 1:
            break
        keep = (~done).nonzero().flatten()  # (a',) indices into the active rows
        if keep.numel() == 0:
            break
        if keep.numel() < active.numel():  # drop finished rows from the batch and the KV cache
            keep_rows(cache, keep)
            active, mask, next_pos, nxt, has_text = active[keep], mask[keep], next_pos[keep], nxt[keep], has_text[keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)  # (a, P + T + step + 1)
        out = model(
            input_ids=nxt[:, None], attention_mask=mask, position_ids=next_pos[:, None], use_cache=True,
            **cache_kwargs(model, cache),
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
