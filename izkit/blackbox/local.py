"""A local transformers model as the black box ``f`` of InstructZero step 3, batched across instructions x examples.

Three things make a batch cheap:

- the prompt prefix ``<bos>Instruction: v\\n\\nInput:`` is the same for every example of an instruction: it runs
  through the model once per batch and its KV cache is shared by the rows;
- "accuracy": greedy decoding where a row leaves the batch as soon as it stops (:func:`izkit.decoding.decode`): at
  EOS, or at the first line break after some non-space text, since the answer is the first non-empty line;
- "loglik": one forward pass over ``suffix + " " + answer`` with the LM head only at the positions that predict
  answer tokens (a boolean ``logits_to_keep``): with a vocabulary of 100k-260k entries, the full-sequence LM head
  would cost more than the rest of the model. transformers releases before the boolean mask (5.17 has none) get
  the last K positions of every row instead, K the batch's longest answer + 1 (:func:`bool_logits_to_keep`).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch

from izkit.blackbox.base import (
    ANSWER_PREFIX,
    ANSWER_RULE,
    DEFAULT_TEMPLATE,
    CachedBlackBox,
    Job,
    Store,
    Usage,
    check_objective,
    check_template,
    first_line,
)
from izkit.cache import AnswerCache, resolve_cache
from izkit.decoding import cache_kwargs, decode, keep_rows, left_pad, new_cache, position_ids, stop_tokens

Parts = list[tuple[tuple[int, ...], list[int]]]  # per job: (shared prefix ids, suffix ids)


@functools.cache
def bool_logits_to_keep() -> bool:
    """Whether this transformers takes a boolean (b, T) mask as ``logits_to_keep`` (the LM head only where it is
    True, flattened to (n, V)); earlier 5.x releases index the sequence axis with it and raise an IndexError."""
    from transformers import modeling_utils

    return hasattr(modeling_utils, "slice_logits_to_keep")


class LocalBlackBox(CachedBlackBox):
    """An in-process transformers model as the black box.

    Args:
        model, tokenizer: a causal LM and its tokenizer (e.g. :func:`izkit.models.load_causal_lm`).
        objective: the default objective, "accuracy" or "loglik".
        template: the black-box prompt, with ``{instruction}`` and ``{input}``.
        max_new_tokens: longest answer, in tokens.
        batch_size: answers per batch. Jobs are grouped by instruction, then by length, so a batch holds few
            prompt prefixes and little padding.
        cache: an AnswerCache, a path, "default" (``cache_dir()/answers.sqlite``) or None (no cache).

    ``stats`` counts the work done (tokens through the model, LM-head rows), for FLOP estimates.
    ``instructions_per_call`` tells the loop how many instructions to score per call: 8 x 20 dev answers make one
    batch of 256 (bench/README.md has the figure).
    """

    instructions_per_call = 8

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        objective: str = "accuracy",
        template: str = DEFAULT_TEMPLATE,
        max_new_tokens: int = 16,
        batch_size: int = 256,
        cache: AnswerCache | str | os.PathLike | None = "default",
    ) -> None:
        check_objective(objective)
        check_template(template)
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size and max_new_tokens must be positive, got {batch_size}, {max_new_tokens}")
        self.model, self.tokenizer = model, tokenizer
        self.objective, self.template = objective, template
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.cache = resolve_cache(cache)
        info = getattr(model, "izkit_info", None)
        if info is not None:
            self.model_id = f"{info.name}|{info.dtype}"
        else:
            self.model_id = f"{getattr(model.config, '_name_or_path', type(model).__name__)}|{model.dtype}"
        self.stop = stop_tokens(tokenizer, one_line=True)
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.stats = {"tokens": 0, "logit_positions": 0}  # work done: tokens through the model, LM-head rows

    def decoding(self, objective: str) -> dict[str, Any]:
        if objective == "loglik":
            return {"answer_prefix": ANSWER_PREFIX}
        return {"greedy": True, "max_new_tokens": self.max_new_tokens, "stop": "newline after text",
                "answer_rule": ANSWER_RULE}

    @property
    def _device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def endpoint_id(self) -> str:  # type: ignore[override]
        """"local-transformers" on a CPU (the key every answer cached before devices were told apart has), with the
        device kind after it elsewhere: a GPU's arithmetic may answer differently, so its answers are cached apart."""
        kind = self._device.type
        return "local-transformers" if kind == "cpu" else f"local-transformers|{kind}"

    def _split(self, jobs: list[Job]) -> Parts:
        """Each job's prompt as token ids (shared prefix, suffix), exactly as the whole prompt tokenises.

        The prefix is the template up to ``{input}`` with the instruction filled in
        (``<bos>Instruction: v\\n\\nInput:``), the same for every example of an instruction. Where the split would
        tokenise differently from the whole prompt, the prefix is just the first token.
        """
        tok = self.tokenizer
        head, tail = self.template.split("{input}", 1)
        shareable = "{instruction}" in head and "{instruction}" not in tail
        prompts = [self.format_prompt(j.instruction, j.input) for j in jobs]
        full = tok(prompts)["input_ids"]
        heads = [head.format(instruction=j.instruction).rstrip() if shareable else "" for j in jobs]
        uniq = list(dict.fromkeys(heads))
        head_ids = dict(zip(uniq, tok(uniq)["input_ids"])) if shareable else {}
        rest_ids = tok([p[len(h) :] for p, h in zip(prompts, heads)], add_special_tokens=False)["input_ids"]
        out = []
        for f, h, r in zip(full, heads, rest_ids):
            pre = head_ids.get(h)
            if not (pre and pre + r == f):
                pre, r = f[:1], f[1:]  # fallback: share only the first token (BOS)
            if not r:
                pre, r = pre[:-1], pre[-1:]  # the suffix must hold the position that predicts what follows
            out.append((tuple(pre), r))
        return out

    def _batches(self, parts: Parts, extra: list[int]) -> list[list[int]]:
        """Batches of job indices, grouped by prefix (so prefixes are shared) and by length within a group."""
        order = sorted(range(len(parts)), key=lambda k: (parts[k][0], len(parts[k][1]) + extra[k]))
        return [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]

    def _prefill_prefixes(self, prefixes: list[tuple[int, ...]]) -> tuple[Any, torch.Tensor]:
        """Run each distinct prefix through the model once; return the KV cache expanded to one row per job.

        Returns:
            (cache holding (b, P) tokens per row, its (b, P) attention mask with the padding on the left).
        """
        uniq = list(dict.fromkeys(prefixes))
        cache = new_cache(self.model)
        if max(len(p) for p in uniq) == 0:  # nothing to share (a one-token prompt)
            return cache, torch.zeros((len(prefixes), 0), dtype=torch.long, device=self._device)
        ids, mask = left_pad(uniq, self._pad, self._device)  # (G, P), (G, P)
        self.model.base_model(  # the decoder only: no logits are needed here
            input_ids=ids,
            attention_mask=mask,
            position_ids=position_ids(mask),
            use_cache=True,
            **cache_kwargs(self.model.base_model, cache),
        )
        rows = torch.tensor([uniq.index(p) for p in prefixes], device=self._device)  # (b,) row -> its prefix
        keep_rows(cache, rows)  # (G, ...) -> (b, ...): rows of one prefix share its keys and values
        self.stats["tokens"] += int(mask.sum())
        return cache, mask[rows]

    def answer(self, objective: str, jobs: list[Job], store: Store, usage: Usage) -> None:
        parts = self._split(jobs)
        golds = None
        if objective == "loglik":
            golds = self.tokenizer([j.gold for j in jobs], add_special_tokens=False)["input_ids"]
            for k, g in enumerate(golds):
                if not g:
                    raise ValueError(f"the gold answer {jobs[k].gold!r} has no tokens; loglik needs a non-empty answer")
        extra = [len(g) for g in golds] if golds is not None else [0] * len(jobs)
        for batch in self._batches(parts, extra):
            with torch.inference_mode():
                cache, past_mask = self._prefill_prefixes([parts[k][0] for k in batch])  # (b, P)
                if golds is not None:
                    self._loglik_batch(batch, parts, golds, cache, past_mask, store, usage)
                else:
                    self._generate_batch(batch, parts, cache, past_mask, store, usage)
            usage.requests += 1
            usage.prompt_tokens += sum(len(parts[k][0]) + len(parts[k][1]) for k in batch)

    def _generate_batch(
        self, batch: list[int], parts: Parts, cache: Any, past_mask: torch.Tensor, store: Store, usage: Usage
    ) -> None:
        ids, mask = left_pad([parts[k][1] for k in batch], self._pad, self._device)  # (b, T), (b, T)
        rows = decode(
            self.model, mask, self.max_new_tokens, self.stop, input_ids=ids, past_key_values=cache,
            past_mask=past_mask,
        )
        self.stats["tokens"] += int(mask.sum()) + sum(len(r) - 1 for r in rows)
        self.stats["logit_positions"] += sum(len(r) for r in rows)
        for k, row in zip(batch, rows):
            usage.completion_tokens += len(row)
            store(k, {"prediction": first_line(self.tokenizer.decode(row, skip_special_tokens=True))})

    def _loglik_batch(
        self,
        batch: list[int],
        parts: Parts,
        golds: list[list[int]],
        cache: Any,
        past_mask: torch.Tensor,
        store: Store,
        usage: Usage,
    ) -> None:
        ids, mask = left_pad([parts[k][1] + golds[k] for k in batch], self._pad, self._device)  # (b, T) suffix+answer
        width = ids.shape[1]
        keep = torch.zeros_like(mask, dtype=torch.bool)  # (b, T) positions that predict an answer token
        targets: list[int] = []
        for r, k in enumerate(batch):
            n_a = len(golds[k])
            keep[r, width - n_a - 1 : width - 1] = True  # position t predicts token t + 1; the answer ends the row
            targets.extend(golds[k])
        full_mask = torch.cat([past_mask, mask], dim=1)  # (b, P + T)
        last = None if bool_logits_to_keep() else max(len(golds[k]) for k in batch) + 1  # rows end with their answer
        logits = self.model(
            input_ids=ids,
            attention_mask=full_mask,
            position_ids=position_ids(full_mask)[:, -width:],
            use_cache=True,
            **cache_kwargs(self.model, cache),
            logits_to_keep=keep if last is None else last,
        ).logits  # (n, V): the LM head only at the n kept positions, row by row; else (b, last, V)
        if last is not None:
            logits = logits[keep[:, -last:]]  # (n, V), in the mask's order
            self.stats["logit_positions"] += len(batch) * last - len(targets)  # the extra rows of the LM head
        logp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]).float(), dim=-1)  # (n, V)
        tgt = torch.tensor(targets, device=logp.device)  # (n,)
        token_logp = logp.gather(1, tgt[:, None])[:, 0].cpu()  # (n,)
        self.stats["tokens"] += int(mask.sum())
        self.stats["logit_positions"] += len(targets)
        start = 0
        for k in batch:
            n_a = len(golds[k])
            usage.completion_tokens += n_a
            store(k, {"loglik": float(token_logp[start : start + n_a].mean()), "n_tokens": n_a})
            start += n_a
