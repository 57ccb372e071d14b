"""Benchmark InstructZero step 3 in process: 25 instructions x 20 dev examples (500 answers) with LocalBlackBox.

For both objectives it times, side by side in one run:

- batched: all 500 prompts, sorted by length, in batches (``--batch-size``);
- one answer per call: ``batch_size=1`` (timed on a subset, ``--single``, half before and half after the batched
  runs, and compared per answer);
- a reference without our shortcut: for accuracy ``model.generate`` on the same batches (finished rows keep being
  computed until the longest answer ends), for loglik the full-sequence LM head (logits at every position).

Achieved model FLOP/s counts the work done, without waste: ``2 x non-embedding params x tokens through the model``
plus ``2 x hidden x vocab`` for every position whose logits are computed and used (attention's own FLOPs, small at
these lengths, are left out; padding and finished rows are not counted; a prompt prefix shared by 20 rows counts
once). It is compared with this machine's matmul rate in the model's dtype, measured with a 2048 x 2048
torch.matmul right before and right after each timed section; the highest counts (the machine is shared, so the rate moves).

    python -m bench.speed.bench_scoring [--quick]

The machine is shared: busy-waiting OpenMP threads stall whenever a sibling thread is descheduled (small ops ran
5-20x slower in our runs), so this script sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is already set.

Prints a markdown table and writes it to bench/out/bench_scoring.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from izkit.blackbox import LocalBlackBox  # noqa: E402
from izkit.decoding import left_pad  # noqa: E402
from izkit.models import load_causal_lm  # noqa: E402
from izkit.tasks import Example  # noqa: E402
from bench.common.report import emit  # noqa: E402

INSTRUCTIONS = [
    "Write the antonym of the word.", "Give the opposite of the word.", "Write a word that means the opposite.",
    "Output the antonym.", "Find the opposite meaning.", "Repeat the word.", "Translate the word into French.",
    "Write the word backwards.", "Say the word in capital letters.", "Give a synonym of the word.",
    "Write the first letter of the word.", "Count the letters in the word.", "Write the plural of the word.",
    "zebra purple mountain quickly", "Answer.", "Do the task.", "Reply with one word.",
    "Write the negation of the word.", "Turn the word into its contrary.", "List a rhyme for the word.",
    "Add 'un' in front of the word.", "Write the word, then its opposite.", "What is the reverse meaning of the word?",
    "Name the antonym.", "Output a word with the inverse meaning.",
]
FALLBACK_DEV = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"), ("good", "bad"),
                ("light", "dark"), ("open", "closed"), ("early", "late"), ("rich", "poor"), ("hard", "soft"),
                ("full", "empty"), ("young", "old"), ("strong", "weak"), ("near", "far"), ("wet", "dry"),
                ("loud", "quiet"), ("thick", "thin"), ("true", "false"), ("win", "lose")]


def dev_examples() -> tuple[list[Example], str]:
    try:
        from izkit.tasks import load_task

        return list(load_task("antonyms").splits(kappa=5, n_dev=20).dev), "antonyms from data/"
    except Exception:  # noqa: BLE001 - missing task files: the hand-written dev set
        return [Example(x, (y,)) for x, y in FALLBACK_DEV], "hand-written antonyms"


def matmul_rate(n: int = 2048, seconds: float = 1.5, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a large square matmul in ``dtype`` (the model's) on this machine, now."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)  # (n, n), (n, n)
    torch.matmul(a, b)
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        torch.matmul(a, b)
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t)


def model_flops(model, tokens: int, logit_positions: int) -> float:
    emb = model.get_input_embeddings().weight  # (V, D)
    non_embedding = sum(p.numel() for p in model.parameters()) - emb.numel()
    return 2.0 * non_embedding * tokens + 2.0 * emb.shape[1] * emb.shape[0] * logit_positions


def work(model, box: LocalBlackBox, before: dict[str, int]) -> float:
    """FLOPs of the work a LocalBlackBox did since ``before`` (``stats``: tokens through the model, LM-head rows)."""
    return model_flops(model, box.stats["tokens"] - before["tokens"],
                       box.stats["logit_positions"] - before["logit_positions"])


def length_batches(lengths: list[int], size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda k: lengths[k])
    return [order[s : s + size] for s in range(0, len(order), size)]


class FirstLineStop:
    """LocalBlackBox's stop rule as a ``model.generate`` stopping criterion: a row ends at EOS, or at a line break
    once it holds some non-space text (``box.stop``'s tables); generate pads the finished rows."""

    def __init__(self, stop) -> None:
        self.stop, self.has_text = stop, None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_) -> torch.Tensor:
        last = input_ids[:, -1]  # (b,) the token just generated
        if self.has_text is None:
            self.has_text = torch.zeros(len(last), dtype=torch.bool)  # (b,)
        done = self.stop.now[last] | self.stop.ends_line[last] | (self.stop.newline[last] & self.has_text)  # (b,)
        self.has_text = self.has_text | ~self.stop.blank[last]
        return done


def answer_length(row: list[int], stop) -> int:
    """Tokens of a generated row up to and including the one where FirstLineStop ends it."""
    has_text = False
    for i, t in enumerate(row):
        if stop.now[t] or stop.ends_line[t] or (stop.newline[t] and has_text):
            return i + 1
        has_text = has_text or not stop.blank[t]
    return len(row)


def hf_generate_answers(box: LocalBlackBox, prompts: list[str]) -> tuple[int, int]:
    """The same greedy answers with ``model.generate`` on length-sorted batches; returns the useful token counts."""
    from transformers import StoppingCriteriaList

    tok = box.tokenizer
    ids = tok(prompts)["input_ids"]
    n_prompt = n_new = 0
    for batch in length_batches([len(x) for x in ids], box.batch_size):
        input_ids, mask = left_pad([ids[k] for k in batch], 0)  # (b, T), (b, T)
        with torch.inference_mode():
            out = box.model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=box.max_new_tokens,
                                     do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=0,
                                     stopping_criteria=StoppingCriteriaList([FirstLineStop(box.stop)]))  # (b, T + t)
        n_new += sum(answer_length(row, box.stop) for row in out[:, input_ids.shape[1] :].tolist())
        n_prompt += int(mask.sum())
    return n_prompt, n_new


def full_head_loglik(box: LocalBlackBox, prompts: list[str], golds: list[str]) -> tuple[int, int]:
    """Loglik with logits at every position (no ``logits_to_keep``); returns (tokens, logit positions)."""
    tok = box.tokenizer
    p_ids = tok(prompts)["input_ids"]
    a_ids = tok(golds, add_special_tokens=False)["input_ids"]
    full = [p + a for p, a in zip(p_ids, a_ids)]
    n_tokens = n_answer = 0
    for batch in length_batches([len(x) for x in full], 32):
        width = max(len(full[k]) for k in batch)  # batches of 32: the (b, T, V) logits take 1 GB at b = 32
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)  # (b, T) right-padded
        mask = torch.zeros((len(batch), width), dtype=torch.long)  # (b, T)
        for r, k in enumerate(batch):
            input_ids[r, : len(full[k])] = torch.tensor(full[k])
            mask[r, : len(full[k])] = 1
        with torch.inference_mode():
            logits = box.model(input_ids=input_ids, attention_mask=mask).logits  # (b, T, V): the full LM head
            for r, k in enumerate(batch):
                n_p = len(p_ids[k])
                tgt = torch.tensor(a_ids[k])  # (a,)
                torch.log_softmax(logits[r, n_p - 1 : n_p - 1 + len(tgt)], -1).gather(1, tgt[:, None]).mean()
        n_tokens += int(mask.sum())
        n_answer += sum(len(a_ids[k]) for k in batch)
    return n_tokens, n_answer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--single", type=int, default=60, help="answers timed one per call, per objective")
    ap.add_argument("--reference", type=int, default=100, help="answers timed for the reference rows")
    ap.add_argument("--quick", action="store_true", help="10 instructions instead of 25, smaller subsets")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t_start = time.perf_counter()
    instructions = INSTRUCTIONS[:10] if args.quick else INSTRUCTIONS
    if args.quick:
        args.single, args.reference = 20, 40
    dev, source = dev_examples()
    model, tok = load_causal_lm(device="cpu")
    batched = LocalBlackBox(model, tok, cache=None, batch_size=args.batch_size)
    single = LocalBlackBox(model, tok, cache=None, batch_size=1)
    batched.score(instructions[:1], dev[:4])  # warm-up
    n_all = len(instructions) * len(dev)
    pairs = [(v, e) for v in instructions for e in dev]
    stride = max(1, n_all // args.single)
    sub = pairs[::stride][: args.single]  # spread over instructions and examples
    ref = pairs[:: max(1, n_all // args.reference)][: args.reference]
    rows, results = [], {}

    def timed(fn) -> tuple[float, list[float]]:
        """Run ``fn``; its seconds, and the matmul rate measured right before and right after it."""
        before = matmul_rate(dtype=model.dtype)
        t = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t
        return seconds, [before, matmul_rate(dtype=model.dtype)]

    def row(objective: str, method: str, n: int, seconds: float, flops: float, rates: list[float],
            base: float) -> None:
        peak = max(rates)  # the rate moves on a shared machine: the highest measured around the section counts
        rate = n / seconds
        rows.append([objective, method, str(n), f"{seconds:.2f}", f"{rate:.1f}", f"{rate / base:.2f}x",
                     f"{flops / seconds / 1e9:.1f}", " / ".join(f"{r / 1e9:.0f}" for r in rates),
                     f"{100 * flops / seconds / peak:.0f}%"])

    for objective in ("accuracy", "loglik"):
        # one answer per call, on a subset spread over the 500, timed in two halves: one before the batched runs
        # and one after, so a change in the machine's load hits both sides of the ratio
        before_single = dict(single.stats)
        halves = [sub[: len(sub) // 2], sub[len(sub) // 2 :]]

        def one_by_one(part):
            return lambda: [single.score([v], [e], objective=objective) for v, e in part]

        s1, r1 = timed(one_by_one(halves[0]))

        before_batched = dict(batched.stats)
        holder = {}
        s_b, r_b = timed(lambda: holder.update(res=batched.score(instructions, dev, objective=objective)))
        flops_b = work(model, batched, before_batched)
        results[objective] = holder["res"]

        prompts = [batched.format_prompt(v, e.input) for v, e in ref]
        if objective == "accuracy":
            label = "batched, model.generate"
            s_r, r_r = timed(lambda: holder.update(counts=hf_generate_answers(batched, prompts)))
            n_p, n_new = holder["counts"]
            flops_r = model_flops(model, n_p + n_new, n_new)
        else:
            label = "batched (32), full-sequence LM head"
            golds = [" " + e.answers[0] for _, e in ref]
            s_r, r_r = timed(lambda: holder.update(counts=full_head_loglik(batched, prompts, golds)))
            n_tok, n_ans = holder["counts"]
            flops_r = model_flops(model, n_tok, n_ans)

        s2, r2 = timed(one_by_one(halves[1]))
        base_rate = len(sub) / (s1 + s2)
        row(objective, "one answer per call", len(sub), s1 + s2, work(model, single, before_single), r1 + r2,
            base_rate)
        row(objective, label, len(ref), s_r, flops_r, r_r, base_rate)
        row(objective, f"batched (izkit, batch {args.batch_size})", n_all, s_b, flops_b, r_b, base_rate)

    header = ["objective", "method", "answers", "seconds", "answers/s", "speed-up", "useful GFLOP/s",
              "matmul GFLOP/s around it", "of peak"]
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
                      + ["| " + " | ".join(r) + " |" for r in rows])
    acc, ll = results["accuracy"], results["loglik"]
    best_acc, best_ll = acc.best(), ll.best()
    total = time.perf_counter() - t_start
    text = (
        f"# bench_scoring\n\n{len(instructions)} instructions x {len(dev)} dev examples ({source}) = {n_all} answers; "
        f"model {model.izkit_info.name} ({model.izkit_info.dtype}, {model.izkit_info.device}), torch threads "
        f"{torch.get_num_threads()}. Speed-up is answers/s over one answer per call (timed on {len(sub)} answers "
        f"spread over the 500). Total runtime {total:.0f} s.\n\n{table}\n\n"
        f"Best by accuracy: \"{best_acc[0]}\" ({best_acc[1]:.2f}); best by loglik: \"{best_ll[0]}\" "
        f"({best_ll[1]:.2f} nats/token). Mean answer length {acc.usage.completion_tokens / n_all:.1f} tokens "
        f"(with the stop token).\n"
    )
    emit(text, "bench_scoring")
    return 0


if __name__ == "__main__":
    sys.exit(main())
