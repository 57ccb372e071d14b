"""izkit.serving.remote: the generator served elsewhere writes exactly the instructions of the in-process generator.

The contract test runs a loopback server (tests/embeds_server.py) that decodes vLLM's ``prompt_embeds`` wire format
with transformers' own ``generate``, one unpadded row at a time, on the same model; the remote generator in front of
it holds only the tokenizer and the embedding table."""

from __future__ import annotations

import json

import pytest
import torch

from embeds_server import EmbedsServer
from izkit.generator import RandomProjection, SoftPromptGenerator
from izkit.models import load_input_embeddings
from izkit.serving.remote import RemoteDecoder, decode_embeds, encode_embeds, unpadded_rows
from izkit.tasks import Example

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEMOS = [Example(x, (y,)) for x, y in [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"),
                                       ("happy", "sad")]]


def test_the_wire_format_round_trips_a_tensor_of_positions_by_hidden():
    x = torch.randn(7, 16, dtype=torch.bfloat16)
    assert torch.equal(decode_embeds(encode_embeds(x)), x) and decode_embeds(encode_embeds(x)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"\(positions, hidden size\), got shape \(1, 7, 16\)"):
        encode_embeds(x[None])


def test_unpadded_rows_drop_the_left_padding():
    embeds = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    rows = unpadded_rows(embeds, torch.tensor([[0, 1, 1], [1, 1, 1]]))
    assert [tuple(r.shape) for r in rows] == [(2, 2), (3, 2)] and torch.equal(rows[0], embeds[0, 1:])


def test_the_table_alone_embeds_as_the_whole_model_does(embedded):
    model, _ = embedded
    table, tokenizer = load_input_embeddings("gemma-3-270m", dtype="float32")
    ids = torch.tensor([[2, 10, 500, 7000]])
    assert torch.equal(table.get_input_embeddings()(ids), model.get_input_embeddings()(ids))  # Gemma's sqrt(D) too
    assert sum(p.numel() for p in table.parameters()) == model.get_input_embeddings().weight.numel()
    assert tokenizer.padding_side == "left" and table.izkit_info.name == "gemma-3-270m"


def test_an_index_that_names_no_file_for_the_table_falls_back_instead_of_failing(tmp_path):
    """A sharded checkpoint whose index lacks the table's name: the table is not read alone (None: the caller loads
    the whole model), rather than a missing model.safetensors being opened."""
    import shutil

    from izkit.models import _table_from_safetensors, embedded_model_dir

    shutil.copy(embedded_model_dir("gemma-3-270m") / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"lm.x": "part-1.safetensors"}}))
    assert _table_from_safetensors(tmp_path, torch.float32) is None


def test_the_remote_generator_writes_the_instructions_of_the_local_one(embedded):
    model, tokenizer = embedded
    projection = RandomProjection.for_model(model, kind="uniform", seed=3)
    local = SoftPromptGenerator(model, tokenizer, projection)
    table, table_tok = load_input_embeddings("gemma-3-270m", dtype="float32")
    z = torch.rand(5, 10, generator=torch.Generator().manual_seed(4)) * 2 - 1  # (5, 10)
    with EmbedsServer(model, tokenizer) as srv:
        decoder = RemoteDecoder(srv.base_url)
        remote = SoftPromptGenerator(table, table_tok, projection, remote=decoder)
        assert remote.generate(z, DEMOS) == local.generate(z, DEMOS)
        assert remote.generate_plain(DEMOS) == local.generate_plain(DEMOS)  # the Manual baseline, no soft tokens
        assert decoder.model == "served-model" and decoder.requests == 2  # one request per pass
    n_text = len(tokenizer(remote.prompt_text(DEMOS), add_special_tokens=False)["input_ids"])
    assert srv.rows[:5] == [(1 + 5 + n_text, model.config.hidden_size)] * 5  # [BOS ; 5 soft tokens ; text], unpadded


def test_sampled_rows_go_one_request_each_with_a_seed_of_their_own(embedded):
    """A server seeds every prompt of a request alike, so APE-style's identical prompts sent together would come back
    as one draw: sampled rows are sent one request each, seeded apart."""
    from izkit.decoding import Sampling
    from izkit.serving.remote import row_seed

    model, tokenizer = embedded
    row = torch.randn(6, model.config.hidden_size, generator=torch.Generator().manual_seed(0)) * 0.02
    with EmbedsServer(model, tokenizer) as srv:
        decoder = RemoteDecoder(srv.base_url)
        texts = decoder.complete([row] * 4, 12, Sampling(temperature=1.0, seed=7), seed=9)
        assert decoder.requests == 4 and srv.seeds == [row_seed(9, i) for i in range(4)]
        assert len(set(texts)) > 1  # the same prompt, four draws
        assert decoder.complete([row] * 4, 12, Sampling(temperature=1.0, seed=7), seed=9) == texts  # reproducible
        decoder.complete([row] * 2, 4)
        assert decoder.requests == 9 and srv.seeds[-1] is None  # greedy: one request for every row, no seed
    assert row_seed(9, 1) != row_seed(10, 0) and len({row_seed(s, i) for s in range(5) for i in range(50)}) == 250


def test_a_server_without_prompt_embeddings_is_named_with_the_flag_it_needs(embedded):
    model, tokenizer = embedded
    with EmbedsServer(model, tokenizer) as srv:
        decoder = RemoteDecoder(srv.base_url.replace("/v1", "/v2"), model="m", max_retries=0)
        with pytest.raises(RuntimeError, match="--enable-prompt-embeds"):
            decoder.complete([torch.zeros(3, model.config.hidden_size)], 4)


def test_a_run_with_a_served_generator_records_the_local_runs_instructions(embedded, tmp_path, caplog):
    from izkit.config import Config
    from izkit.loop import run

    model, tokenizer = embedded
    cfg = Config.quick("antonyms", n_init=2, n_rounds=1, batch_size=2, n_dev=3, n_test=3, device="cpu",
                       baselines=("manual",), answer_cache=None)
    local = run(cfg, tmp_path / "local", progress=False)
    with EmbedsServer(model, tokenizer) as srv:
        served = run(Config(**{**cfg.__dict__, "generator_url": srv.base_url}), tmp_path / "served", progress=False)

    def evals(path):
        lines = [json.loads(s) for s in (path / "record.jsonl").read_text().splitlines()]
        return lines[0], [(e["method"], e["instruction"], e["mean"]) for e in lines if e["kind"] == "eval"]

    assert "the black box is local and defaults to the generator's model" in caplog.text  # the whole model, here
    header, served_evals = evals(tmp_path / "served")
    assert served_evals == evals(tmp_path / "local")[1] and len(served_evals) >= 4
    assert header["models"]["generator"]["served_at"] == srv.base_url
    assert header["models"]["generator"]["served_model"] == "served-model"  # what the server said it decodes with
    assert served.methods["instructzero"].best_instruction == local.methods["instructzero"].best_instruction
