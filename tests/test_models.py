"""izkit.models: the embedded model generates text, its cache is verified and rebuilt, and bad names fail clearly."""

import json
import shutil

import pytest
import torch

from izkit import models
from izkit.models import ModelLoadError, embedded_model_dir, load_causal_lm


def test_embedded_model_generates_text(embedded):
    model, tok = embedded
    assert model.izkit_info.name == "gemma-3-270m"
    assert model.izkit_info.device == "cpu" and model.dtype == torch.float32
    assert tok.padding_side == "left"
    ids = tok("Input: hot\nOutput: cold\n\nInput: big\nOutput:", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    text = tok.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    assert out.shape[1] > ids.input_ids.shape[1] and text.strip()


def test_load_is_memoised_in_process(embedded):
    assert load_causal_lm(device="cpu") is embedded


def test_cache_entry_has_a_manifest_that_matches():
    folder = embedded_model_dir()
    manifest = json.loads((folder / "izkit-manifest.json").read_text())
    assert "model.safetensors" in manifest["files"]
    assert models._entry_is_valid(folder)


@pytest.fixture()
def cache_copy(tmp_path, monkeypatch):
    """A private copy of the valid cache entry, with $IZKIT_CACHE pointing at it."""
    src = embedded_model_dir()
    dst = tmp_path / models.EMBEDDED_NAME
    shutil.copytree(src, dst)
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    return dst


def _flip_a_byte(path):
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))


def test_corrupt_file_is_detected_and_rebuilt_not_loaded(cache_copy, monkeypatch):
    weights = cache_copy / "model.safetensors"
    _flip_a_byte(weights)
    assert not models._entry_is_valid(cache_copy)
    calls = []
    real = models._convert_embedded
    monkeypatch.setattr(models, "_convert_embedded", lambda target: (calls.append(target), real(target)))
    folder = embedded_model_dir()  # a real conversion (about 40 s): the corrupt copy must not survive
    assert calls == [cache_copy] and folder == cache_copy
    assert models._entry_is_valid(folder)
    model, tok = load_causal_lm(folder, device="cpu", cache=False)
    ref, _ = load_causal_lm(device="cpu")
    assert torch.equal(model.model.embed_tokens.weight, ref.model.embed_tokens.weight)


@pytest.mark.parametrize("damage", ["no manifest", "truncated", "missing file", "older format"])
def test_half_written_entries_are_invalid(cache_copy, damage):
    manifest = cache_copy / "izkit-manifest.json"
    if damage == "no manifest":
        manifest.unlink()  # what a conversion killed before its last write leaves
    elif damage == "truncated":
        with open(cache_copy / "config.json", "r+b") as f:
            f.truncate(10)
    elif damage == "missing file":
        (cache_copy / "tokenizer.json").unlink()
    else:
        meta = json.loads(manifest.read_text())
        meta["format"] = 0
        manifest.write_text(json.dumps(meta))
    assert not models._entry_is_valid(cache_copy)


def test_missing_path():
    with pytest.raises(ModelLoadError, match=r"model path './no/such/model' does not exist"):
        load_causal_lm("./no/such/model")


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match=r"is a folder but not a transformers model: it has no config.json"):
        load_causal_lm(tmp_path)


def test_hub_id_offline_says_so_plainly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"Hugging Face Hub is not reachable.*local model folder"):
        load_causal_lm("izkit-tests/no-such-model")


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
