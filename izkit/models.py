"""Load a causal language model by name: an embedded model's short name, a local folder, a GGUF file or a hub id.

    model, tokenizer = load_causal_lm()                                # default_model(): $IZKIT_MODEL or DEFAULT_MODEL
    model, tokenizer = load_causal_lm("qwen2.5-coder-0.5b-instruct")   # an embedded model by its short name
    model, tokenizer = load_causal_lm("/path/to/model/folder")         # any local transformers folder (or a .gguf)
    model, tokenizer = load_causal_lm("Qwen/Qwen2.5-Coder-0.5B-Instruct")  # a hub id, where a hub is reachable

The embedded models (their table, their parts checked and assembled) are in ``izkit.embedded``; their one-time
conversion into safetensors behind a manifest and an atomic rename is in ``izkit.conversion``. This module decides
which model is the default, where the cache lives (:func:`cache_dir`), when an entry is converted or rebuilt
(:func:`embedded_model_dir`), and loads and memoises models. Every public name of ``izkit.embedded`` is importable
from here too.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from izkit import conversion, fetch
from izkit.config import DTYPES
from izkit.embedded import (EMBEDDED, EMBEDDED_MODELS, GEMMA, OPTIONAL_MODELS, QWEN, QWEN_1_5B, EmbeddedModel,
                            ModelLoadError, Part, assembled_gguf, check_parts, did_you_mean, find, gguf_field,
                            gguf_metadata, listed_names, locate_part, lookup)

__all__ = [  # this module's own names, then those re-exported from izkit.embedded
    "CACHE_ENV", "DEFAULT_MODEL", "DTYPE_ENV", "DTYPES", "MODEL_ENV", "ModelInfo", "cache_dir",
    "check_device", "cpu_has_bf16",
    "clear_loaded", "default_device", "default_dtype", "default_model", "embedded_model", "embedded_model_dir",
    "load_causal_lm", "load_input_embeddings", "InputEmbeddings", "prepare_all",
    "EMBEDDED", "EMBEDDED_MODELS", "GEMMA", "QWEN", "EmbeddedModel", "ModelLoadError", "Part", "assembled_gguf",
    "check_parts", "gguf_field", "gguf_metadata", "locate_part", "OPTIONAL_MODELS", "QWEN_1_5B",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "IZKIT_CACHE"  # overrides where converted models are kept
MODEL_ENV = "IZKIT_MODEL"  # a user's own default model (an embedded model's short name), over DEFAULT_MODEL

DEFAULT_MODEL = QWEN.name  # the project's default, chosen by bench/studies/bench_models.py; switch it here, only here

_loaded: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # in-process memo: (source, device, dtype) -> (model, tok)
_lock = threading.Lock()
_verified: dict[Path, float] = {}  # cache entries already checked in this process -> their manifest's mtime


# ----------------------------------------------------------------------------------------------------------------------
# The default model and the cache of converted embedded models


def default_model() -> str:
    """The model asked for when none is named: ``$IZKIT_MODEL`` when set and non-empty, else DEFAULT_MODEL.

    Either way an embedded model's short name (as the table spells it); an unknown ``$IZKIT_MODEL`` is a
    ModelLoadError naming the embedded models.
    """
    value = os.environ.get(MODEL_ENV, "").strip()
    if not value:
        return DEFAULT_MODEL
    spec = lookup(value)
    if spec is None:
        raise ModelLoadError(f"{MODEL_ENV}={value!r} is not an embedded model; the embedded models are "
                             f"{listed_names()}{did_you_mean(value)}; set {MODEL_ENV} to one of them, or unset it "
                             f"for the project's default {DEFAULT_MODEL!r}")
    return spec.name


def blackbox_default(generator: str | None, default: str | None = None) -> str | None:
    """The local black box's model when none is named: the generator's (one copy serves both roles), unless the
    generator is an optional embedded model (``izkit prepare NAME``), when the default model answers, so a larger
    generator's instructions are scored by the same judge as the default's (``default``: the name the default stands
    for, e.g. in an old record; else :func:`default_model`)."""
    spec = lookup(generator) if generator is not None else None
    if spec is not None and spec.optional:
        return default or default_model()
    return generator


def embedded_model(name: str | None = None) -> EmbeddedModel:
    """The table entry for an embedded model's short name (any case); None means :func:`default_model`."""
    return find(default_model() if name is None else str(name))


def cache_dir() -> Path:
    """The folder where converted models are kept: ``$IZKIT_CACHE`` or the user's cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("izkit"))


def embedded_model_dir(name: str | None = None, rebuild: bool = False, recheck: bool = False) -> Path:
    """Return the folder of a converted embedded model (default :func:`default_model`), converting it first if needed.

    The folder is ``<cache_dir>/<name>``. A half-written or corrupt folder is removed and rebuilt; ``rebuild``
    converts again even when the folder is valid. Its manifest's sums are checked once per process (``recheck``
    checks them again, as a new process would).
    """
    spec = embedded_model(name)
    target = cache_dir() / spec.name
    manifest = target / conversion.MANIFEST
    if not (rebuild or recheck) and manifest.is_file() and _verified.get(target) == manifest.stat().st_mtime:
        return target  # checked earlier in this process and not rewritten since
    if not rebuild and conversion.entry_is_valid(target, spec):
        _verified[target] = manifest.stat().st_mtime
        return target
    if target.exists():
        logger.warning("rebuilding the cache of the embedded model %s at %s", spec.name, target)
    conversion.convert(spec, target)
    _verified[target] = manifest.stat().st_mtime
    return target


def prepare_all(rebuild: bool = False, names: list[str] | tuple[str, ...] | None = None) -> dict[str, Path]:
    """Convert the embedded models that are not converted yet (``izkit prepare [NAME ...]``), one after another.

    ``names``: short names, default the default set (EMBEDDED_MODELS); an optional model (OPTIONAL_MODELS) is
    prepared only when named. Each named model's missing parts are pip-installed first (:mod:`izkit.fetch`).
    """
    specs = [find(n) for n in names] if names else [find(n) for n in EMBEDDED_MODELS]  # unknown names fail first
    if names:
        for spec in specs:
            fetch.install_parts(spec.name)
    return {spec.name: embedded_model_dir(spec.name, rebuild=rebuild) for spec in specs}


# ----------------------------------------------------------------------------------------------------------------------
# What was loaded, where, in which dtype


@dataclass(frozen=True)
class ModelInfo:
    """Where a loaded model came from (written into run records)."""

    name: str  # what the user asked for (the short name for an embedded model)
    source: str  # the folder, file or hub id actually loaded
    device: str
    dtype: str


def default_device() -> str:
    """CUDA when available, else CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


DTYPE_ENV = "IZKIT_DTYPE"  # "float32" or "bfloat16": the number format when none is asked for, over the rule below


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16; read from /proc/cpuinfo on Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_dtype(device: str) -> torch.dtype:
    """``$IZKIT_DTYPE`` when set; else bfloat16 on a GPU (Gemma overflows in float16) and on a CPU that multiplies
    bfloat16 natively, float32 on other CPUs (bfloat16 there is emulated and slower). The choice on such a CPU was
    measured against float32 for speed and for unchanged answers: bench/speed/bench_precision.py, figures in
    bench/README.md.
    """
    value = os.environ.get(DTYPE_ENV, "").strip()
    if value:
        if value not in DTYPES:
            raise ModelLoadError(f"{DTYPE_ENV}={value!r}: use one of {', '.join(DTYPES)}, or unset it")
        return getattr(torch, value)
    if str(device).startswith("cpu"):
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    return torch.bfloat16


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


# ----------------------------------------------------------------------------------------------------------------------
# Loading by name, folder, file or hub id

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "gpt2" or "owner/name"


def _what_exists() -> str:
    try:
        default = default_model()
    except ModelLoadError:  # a bad $IZKIT_MODEL: this message is about another name
        default = DEFAULT_MODEL
    return (f"the embedded models are {listed_names()} (leave the name out for {default!r}); anything else must be a "
            f"local model folder, a .gguf file, or a Hugging Face Hub id (owner/name)")


def _resolve(name_or_path: str | os.PathLike | None) -> tuple[str, dict[str, Any], str]:
    """Map what the user asked for to (what from_pretrained loads, extra kwargs, display name)."""
    spec = embedded_model(None) if name_or_path is None else lookup(str(name_or_path))
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
                             f"hub id; {_what_exists()}{did_you_mean(text)}")
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


def _from_pretrained(source: str, dtype: torch.dtype, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a cached load takes seconds: no "Loading weights" bar in every notebook cell
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
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
                if copy else did_you_mean(source))
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
        name_or_path: None for :func:`default_model` ($IZKIT_MODEL, else DEFAULT_MODEL); an embedded model's short
            name (EMBEDDED, the optional ones included once their parts are installed); a local folder, a .gguf
            file, or a hub id.
        device: "cpu", "cuda", ...; default CUDA when available, else CPU.
        dtype: default :func:`default_dtype`: bfloat16 on a GPU or on a CPU with native bfloat16, float32 on other
            CPUs ($IZKIT_DTYPE overrides).
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


class InputEmbeddings(torch.nn.Module):
    """A causal LM's input-embedding module alone, standing in for the model where only its table is needed (a
    generator served elsewhere: :mod:`izkit.serving.remote`). ``get_input_embeddings()`` is the model's own module, so
    text is embedded on the model's scale (Gemma's sqrt(D) included); ``izkit_info`` says where it came from."""

    def __init__(self, module: torch.nn.Module, info: ModelInfo):
        super().__init__()
        self.embed_tokens = module
        self.izkit_info = info

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed_tokens


def load_input_embeddings(name_or_path: str | os.PathLike | None = None, dtype: torch.dtype | str | None = None
                          ) -> tuple[InputEmbeddings, Any]:
    """The input-embedding table and tokenizer of a model named as :func:`load_causal_lm` takes it, on the CPU.

    A folder of safetensors (every embedded model, and what ``save_pretrained`` writes) gives up its table alone: the
    model is built on the meta device, so nothing else is allocated or read. Other sources (a .gguf, ``.bin``
    weights, a hub id) load the whole model once and keep only its table. ``dtype``: as :func:`load_causal_lm`.
    """
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or default_dtype("cpu")
    source, kwargs, display = _resolve(name_or_path)
    module = _table_from_safetensors(Path(source), dtype) if not kwargs and Path(source).is_dir() else None
    if module is None:
        model, tokenizer = load_causal_lm(name_or_path, device="cpu", dtype=dtype, cache=False)
        module = model.get_input_embeddings()
        del model
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    info = ModelInfo(name=display, source=source, device="cpu", dtype=str(dtype).replace("torch.", ""))
    return InputEmbeddings(module.requires_grad_(False), info).eval(), tokenizer


def _table_from_safetensors(folder: Path, dtype: torch.dtype) -> torch.nn.Module | None:
    """The model's embedding module with its weight read alone from ``folder``'s safetensors; None where the folder
    has none, or the module holds state that the weight alone does not give."""
    import json

    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    index = folder / "model.safetensors.index.json"
    files = {}
    if index.is_file():
        files = json.loads(index.read_text())["weight_map"]
    elif not (folder / "model.safetensors").is_file():
        return None
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
    module = skeleton.get_input_embeddings()
    name = next(n for n, p in skeleton.named_parameters() if p is module.weight)
    shard = folder / (files.get(name, "") if index.is_file() else "model.safetensors")
    if not shard.is_file():  # an index that names no file for the table (e.g. a prefixed checkpoint)
        return None
    with safe_open(str(shard), framework="pt") as f:
        if name not in f.keys():
            return None
        table = f.get_tensor(name)  # (V, D)
    module.to_empty(device="cpu")
    for buf, _ in module.named_buffers():  # non-persistent: not in the file, and empty after to_empty
        if not hasattr(module, f"scalar_{buf}"):  # e.g. Gemma's embed_scale beside its scalar_embed_scale
            return None
        setattr(module, buf, torch.tensor(getattr(module, f"scalar_{buf}")))
    module.weight.data = table.to(dtype)
    return module


def clear_loaded() -> None:
    """Forget the models memoised in this process (frees their memory once nothing else holds them)."""
    with _lock:
        _loaded.clear()
