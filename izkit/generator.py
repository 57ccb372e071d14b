"""Instruction generation from soft prompts: InstructZero steps 1 and 2 (Chen et al., ICML 2024, sec. 3.1).

Step 1. A soft prompt ``z`` in ``[-1, 1]^d`` (paper: d = 10) is mapped by a fixed random matrix ``A`` (``d x N*D``)
to ``N`` soft tokens of width ``D`` (the open model's hidden size; paper: N = 5): ``p = z A`` reshaped to ``(N, D)``.
``A`` is drawn once per run and never trained: :class:`RandomProjection`.

Step 2. The open LLM ``g`` reads ``[BOS ; soft tokens ; embedded exemplar text]`` and its greedy continuation is the
instruction ``v = g([p ; exemplars])`` (paper eq. 2). The exemplar text is ``kappa`` demos ``Input: x\\nOutput: y``
joined by blank lines, followed by ``The instruction was to``. :class:`SoftPromptGenerator` turns a batch of ``z``
into instructions in one batched decoding pass (:func:`izkit.decoding.decode`), and the cleaner
(:func:`izkit.cleaner.clean_instruction`) cuts each continuation down to one sentence.

Where the soft tokens sit is the ``layout`` (:data:`LAYOUTS`). "soft-first", ``[BOS ; p ; demos ; cue]``, is izkit's
reading of the paper's ``[p ; exemplars]`` (eq. 2; the authors' code puts BOS after the soft tokens): every
candidate of a round starts differing at its second position, so each one pays a prefill of the whole prompt.
"after-demos", ``[BOS ; demos ; p ; blank line ; cue]``, and "before-cue", ``[BOS ; demos ; blank line ; p ; cue]``
(the cue: ``The instruction was to``), change the search space but share the demos: their KV cache is computed once
and serves every candidate, which then costs a prefill of about ten positions plus its decoding. Any batch whose
rows begin with the same :data:`MIN_SHARED_PREFIX` or more positions (the APE-style samples, whose
prompts are identical) shares them the same way; "soft-first" shares only BOS and is decoded as before.

Two details matter. The text is embedded by the model's embedding *module*, not its raw weight: Gemma scales by
``sqrt(D)`` inside the module, and soft tokens must live on the same scale. BOS stays first: decoder LMs use their
first position as an attention sink and only ever saw BOS there in training.

The baselines run the same code without soft tokens. Manual: one greedy instruction from InstructZero's prompt,
``generate(None, exemplars)`` (or :meth:`SoftPromptGenerator.generate_plain`). APE-style: instructions sampled from
APE's own forward-generation template (Zhou et al., 2023; :data:`APE_TEMPLATE`) by
:meth:`SoftPromptGenerator.generate_ape`. Both templates end with "The instruction was to": the cleaner drops the
same echoed lead after either. The templates live in :mod:`izkit.prompts` (``--generator-prompt``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from izkit.cleaner import clean_instruction, instruction_complete, lead_of
from izkit.config import CHOICES, LAYOUTS, Config  # a run's defaults; LAYOUTS: where the soft tokens sit (after BOS,
#                                                     as paper eq. 2, after the demos, or before the cue)
from izkit.decoding import (  # Sampling: part of this module's API
    PrefixCache,
    Sampling,
    decode,
    left_pad,
    shared_prefix_length,
    stop_tokens,
)
from izkit.prompts import APE_TEMPLATE, CHAT_TEMPLATE, DEMO_SEPARATOR, DEMO_TEMPLATE, INSTRUCTZERO_TEMPLATE  # the words
from izkit.serving.remote import unpadded_rows

MIN_SHARED_PREFIX = 8  # rows that begin with this many identical positions prefill them once, for all rows
Z_TOLERANCE = 1e-6  # values this far outside [-1, 1] are clipped silently; further out is an error


# ----------------------------------------------------------------------------------------------------------------------
# Step 1: the random projection


class RandomProjection:
    """The fixed random matrix ``A`` of InstructZero step 1: ``z (B, d) -> soft tokens (B, n_tokens, hidden_size)``.

    Args:
        d: the soft prompt's dimension (paper: 10).
        n_tokens: number of soft tokens N (paper: 5; 3 and 10 also tried).
        hidden_size: the open model's hidden size D.
        kind: "uniform": entries of ``A`` uniform in [-1, 1], as in the paper. "normal": entries normal with standard
            deviation ``scale``; :meth:`for_model` picks ``scale`` so soft tokens spread like real embeddings.
        seed: seeds ``A`` (same seed, same matrix).
        scale: standard deviation of the normal entries (ignored for "uniform").

    With ``z`` uniform in [-1, 1]^d (variance 1/3 per coordinate) a soft-token entry ``sum_i z_i A_ij`` has variance
    ``d * sigma_A^2 / 3``: ``d / 9`` for uniform entries, and ``target^2`` for normal entries with
    ``sigma_A = target * sqrt(3 / d)``.
    """

    def __init__(
        self,
        d: int = Config.d,
        n_tokens: int = Config.n_tokens,
        hidden_size: int = 640,  # Gemma 3 270M's
        kind: str = Config.projection,
        seed: int = 0,
        scale: float = 1.0,
    ) -> None:
        if d < 1 or n_tokens < 1 or hidden_size < 1:
            raise ValueError(f"d, n_tokens and hidden_size must be positive, got {d}, {n_tokens}, {hidden_size}")
        if kind not in CHOICES["projection"]:
            raise ValueError(f"kind must be one of {', '.join(map(repr, CHOICES['projection']))}, got {kind!r}")
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
        d: int = Config.d,
        n_tokens: int = Config.n_tokens,
        kind: str = Config.projection,
        seed: int = 0,
        n_sample: int = 4096,
    ) -> RandomProjection:
        """A projection sized for ``model``; for "normal", scaled so soft tokens spread like the model's embeddings
        (the spread of the embedding *module's* output, :func:`embedding_std`)."""
        hidden = int(model.get_input_embeddings().weight.shape[1])
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
# Step 2: the generator


class SoftPromptGenerator:
    """The open model ``g`` of InstructZero step 2: soft prompts + exemplars -> instructions.

    Args:
        model, tokenizer: a causal LM and its tokenizer (e.g. from :func:`izkit.models.load_causal_lm`).
        projection: the step-1 matrix; None to allow only the plain (no soft prompt) path.
        template: the prompt after the soft tokens, with ``{demos}``; default the paper's
            (:data:`INSTRUCTZERO_TEMPLATE`), or :data:`CHAT_TEMPLATE` with ``chat``. (:meth:`generate_ape` uses
            :data:`APE_TEMPLATE`, APE's, whatever this is.)
        demo_template: one exemplar, with ``{input}`` and ``{output}`` (``answers[0]`` is shown).
        max_new_tokens: longest instruction, in tokens.
        batch_size: rows per decoding pass (64 holds a BO round's first draw of 50 in one pass; bench/README.md);
            larger requests are cut into chunks (a progress bar shows when there are more than 3).
        chat: wrap the filled template in the tokenizer's chat template as one user turn followed by the assistant
            turn, as the authors prompt a chat model.
        layout: "soft-first" (the soft tokens right after BOS, before the demos as in paper eq. 2), "after-demos"
            (after the demos, before the blank line and the template's last words, the cue) or "before-cue" (right
            before the cue): the last two let every candidate share the demos' KV cache.
        remote: a :class:`izkit.serving.remote.RemoteDecoder`: the prompts are embedded here and decoded on its server
            (``model`` then needs only ``get_input_embeddings()``: :func:`izkit.models.load_input_embeddings`).

    ``last_raw`` keeps the raw continuations of the latest call, for inspection.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        projection: RandomProjection | None = None,
        template: str | None = None,
        demo_template: str = DEMO_TEMPLATE,
        max_new_tokens: int = 32,
        batch_size: int = 64,
        chat: bool = False,
        layout: str = "soft-first",
        remote: Any = None,
    ) -> None:
        template = template if template is not None else (CHAT_TEMPLATE if chat else INSTRUCTZERO_TEMPLATE)
        if "{demos}" not in template:
            raise ValueError(f"template must contain '{{demos}}', got {template!r}")
        if chat and not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat=True needs a tokenizer with a chat template; this one has none (use chat=False)")
        hidden = int(model.get_input_embeddings().weight.shape[1])
        if projection is not None and projection.hidden_size != hidden:
            raise ValueError(
                f"the projection makes tokens of width {projection.hidden_size} but the model's hidden size is "
                f"{hidden}; build it with RandomProjection.for_model(model)"
            )
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size and max_new_tokens must be positive, got {batch_size}, {max_new_tokens}")
        self.model, self.tokenizer, self.projection = model, tokenizer, projection
        self.template, self.demo_template, self.chat = template, demo_template, chat
        self.max_new_tokens, self.batch_size, self.layout, self.remote = max_new_tokens, batch_size, layout, remote
        self.lead = lead_of(template)  # the prompt's last words, dropped where the model echoes them
        if layout != "soft-first" and not self.lead:
            raise ValueError(f"layout {layout!r} puts the soft tokens before the template's last words, but "
                             f"{template!r} ends with none")
        self.last_raw: list[str] = []
        self.calls = 0  # batched decoding passes made (for tests and benchmarks)
        self._prefix = PrefixCache(model)  # the latest shared prefix's KV cache: a run's demos are prefilled once

    @property
    def shared_prefills(self) -> int:
        """Shared prefixes prefilled so far (each serves every row of the passes that begin with it)."""
        return self._prefix.prefills

    # -- prompt text ---------------------------------------------------------------------------------------------------

    def prompt_text(self, exemplars: Sequence[Any], template: str | None = None) -> str:
        """The text part of the prompt: the demos joined by blank lines, inside ``template`` (default the
        generator's own) and, for a chat generator, inside the chat turns."""
        if not exemplars:
            raise ValueError("need at least one exemplar to induce an instruction from")
        demos = DEMO_SEPARATOR.join(self.demo_template.format(input=e.input, output=e.answers[0]) for e in exemplars)
        text = (template or self.template).format(demos=demos)
        if not self.chat:
            return text
        turns = [{"role": "user", "content": text}]
        wrapped = self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        bos = self.tokenizer.bos_token
        return wrapped[len(bos) :] if bos and wrapped.startswith(bos) else wrapped  # BOS is put first by embed()

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
            B cleaned instructions (see :func:`izkit.cleaner.clean_instruction`).
        """
        if z is None:
            return self.generate_plain(exemplars, n=1, sampling=sampling, batch_size=batch_size, progress=progress)
        if self.projection is None:
            raise ValueError("this generator has no projection; pass z=None or build it with a RandomProjection")
        soft = self.projection(z)  # (B, N, D)
        texts = self._texts(exemplars, soft.shape[0], self.template)
        heads = None
        if self.layout != "soft-first":
            heads, texts = map(list, zip(*(self.split_for_layout(t) for t in texts)))
        return self._run(texts, soft, sampling, batch_size, progress, self.lead, heads)

    def generate_plain(
        self,
        exemplars: Sequence[Any] | Sequence[Sequence[Any]],
        n: int = 1,
        sampling: Sampling | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
        template: str | None = None,
    ) -> list[str]:
        """n instructions with no soft prompt: ``[BOS ; text]``, by default with the generator's own template (the
        Manual baseline when greedy).

        Greedy decoding gives n copies of the same instruction; pass ``sampling`` (e.g. ``Sampling()``) for n
        different ones. ``exemplars`` may be one demo list or n of them (APE draws a demo subset per sample).
        ``template``: another prompt with ``{demos}`` (e.g. :data:`APE_TEMPLATE`, see :meth:`generate_ape`); the lead
        the cleaner drops is its own last words.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if template is not None and "{demos}" not in template:
            raise ValueError(f"template must contain '{{demos}}', got {template!r}")
        template = template or self.template
        texts = self._texts(exemplars, n, template)
        if sampling is not None and batch_size is None:
            batch_size = sampling.num_per_call
        return self._run(texts, None, sampling, batch_size, progress, lead_of(template))

    def generate_ape(
        self,
        exemplars: Sequence[Any] | Sequence[Sequence[Any]],
        n: int = 1,
        sampling: Sampling | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        """n instructions from APE's forward-generation template (:data:`APE_TEMPLATE`), no soft prompt: the
        APE-style baseline when ``sampling`` is given (APE samples; greedy gives n copies of one instruction).

        A chat generator wraps APE's text in its chat turns, as it does its own prompt."""
        return self.generate_plain(exemplars, n, sampling, batch_size, progress, template=APE_TEMPLATE)

    def split_for_layout(self, text: str) -> tuple[str, str]:
        """A prompt text cut where the layout puts the soft tokens: before its last ``lead`` (the cue, e.g. ``The
        instruction was to``) for "before-cue", before the whitespace that precedes it for "after-demos".
        Returns (the text before the soft tokens, the text after them)."""
        cut = text.rfind(self.lead) if self.lead else -1
        if cut < 0:
            raise ValueError(f"the prompt has no {self.lead!r} to put the soft tokens before: {text[-80:]!r}")
        if self.layout == "after-demos":
            cut = len(text[:cut].rstrip())
        return text[:cut], text[cut:]

    def embed(
        self, texts: Sequence[str], soft: torch.Tensor | None, heads: Sequence[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``[pad.. ; BOS ; head ; soft tokens ; text]`` embeddings and their attention mask.

        Args:
            texts: B prompt texts after the soft tokens (embedded by the model's embedding module, without special
                tokens).
            soft: (B, N, D) soft tokens, or None for none.
            heads: B texts between BOS and the soft tokens (the layouts that share the demos), or None for none.

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
        head_ids = tok(list(heads), add_special_tokens=False)["input_ids"] if heads else [[] for _ in text_ids]
        rows = [bos + h + [pad_id] * n_soft + t for h, t in zip(head_ids, text_ids)]
        ids, mask = left_pad(rows, pad_id)  # (B, L), (B, L)
        with torch.inference_mode():
            embeds = emb(ids.to(device)).clone()  # (B, L, D), scaled as the model scales its own tokens
            if soft is not None:
                first = ids.shape[1] - torch.tensor([len(t) for t in text_ids]) - n_soft  # (B,) first soft position
                cols = first[:, None] + torch.arange(n_soft)  # (B, N)
                rows = torch.arange(len(texts))[:, None].expand_as(cols)  # (B, N)
                embeds[rows.to(device), cols.to(device)] = soft.to(device=device, dtype=dtype)
        return embeds, mask.to(device)

    # -- internals -----------------------------------------------------------------------------------------------------

    def _texts(self, exemplars: Any, n_rows: int, template: str) -> list[str]:
        if len(exemplars) > 0 and hasattr(exemplars[0], "answers"):  # one list of examples shared by all rows
            return [self.prompt_text(exemplars, template)] * n_rows
        if len(exemplars) != n_rows:
            raise ValueError(
                f"got {len(exemplars)} exemplar lists for {n_rows} rows; pass one shared list of examples or one "
                f"list per row"
            )
        return [self.prompt_text(e, template) for e in exemplars]

    def _run(
        self,
        texts: list[str],
        soft: torch.Tensor | None,
        sampling: Sampling | None,
        batch_size: int | None,
        progress: bool | None,
        lead: str,
        heads: list[str] | None = None,
    ) -> list[str]:
        size = batch_size or self.batch_size
        starts = list(range(0, len(texts), size))
        if progress if progress is not None else len(starts) > 3:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="instructions", unit="batch")
        raw: list[str] = []
        for k, s in enumerate(starts):
            chunk_soft = None if soft is None else soft[s : s + size]  # (b, N, D)
            seed = None if sampling is None else sampling.seed + k
            chunk_heads = None if heads is None else heads[s : s + size]
            raw.extend(self._generate_chunk(texts[s : s + size], chunk_soft, sampling, seed, lead, chunk_heads))
        self.last_raw = raw
        return [clean_instruction(r, lead) for r in raw]

    def _generate_chunk(
        self,
        texts: list[str],
        soft: torch.Tensor | None,
        sampling: Sampling | None,
        seed: int | None,
        lead: str,
        heads: list[str] | None = None,
    ) -> list[str]:
        embeds, mask = self.embed(texts, soft, heads)  # (b, L, D), (b, L)
        self.calls += 1
        if self.remote is not None:  # the server decodes each row (izkit.serving.remote); the cleaner cuts as locally
            return self.remote.complete(unpadded_rows(embeds, mask), self.max_new_tokens, sampling, seed)
        shared = shared_prefix_length(embeds, mask)
        past, past_mask = None, None
        if shared >= MIN_SHARED_PREFIX and embeds.shape[0] > 1:  # prefill the common start once, for every row
            past, past_mask = self._prefix.rows(embeds[0, :shared], embeds.shape[0]), mask[:, :shared]
            embeds, mask = embeds[:, shared:], mask[:, shared:]  # (b, L - P, D), (b, L - P)
        rows = decode(
            self.model,
            mask,
            self.max_new_tokens,
            stop_tokens(self.tokenizer),  # EOS only: the cleaner decides where the instruction ends
            inputs_embeds=embeds,
            is_done=lambda ids: instruction_complete(self.tokenizer.decode(ids, skip_special_tokens=True), lead,
                                                     loops=sampling is None),
            sampling=sampling,
            seed=seed,
            past_key_values=past,
            past_mask=past_mask,
        )
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)
