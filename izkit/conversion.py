"""One embedded model's GGUF file -> a cache entry of safetensors, converted once, checked on every later load.

transformers de-quantises a GGUF file (``from_pretrained(folder, gguf_file=...)``, 40-60 s on two cores); we do that
once and save the result as safetensors, so later loads take a few seconds. The loaded model still carries the GGUF
quantizer marker, which blocks ``save_pretrained`` until it is removed.

Cache safety: the converted model is written into a temporary folder beside the cache entry, a manifest with the
sha256 of every file is written last, and the folder is moved into place with one atomic rename. A load checks the
manifest (:func:`entry_is_valid`); a missing, half-written or corrupt entry is rebuilt, never loaded. Where the entry
lives, and when it is rebuilt, is ``izkit.models.embedded_model_dir``'s business.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from izkit.embedded import EmbeddedModel, ModelLoadError, Part, assembled_gguf, gguf_field, sha256_file

logger = logging.getLogger(__name__)

MANIFEST = "izkit-manifest.json"  # written last into a cache entry: its presence means "complete"
CACHE_FORMAT = 1  # bump when the converted layout changes, to force a rebuild


def entry_is_valid(folder: Path, spec: EmbeddedModel | None = None) -> bool:
    """True when ``folder`` holds a complete conversion whose files match its manifest (and, given ``spec``, whose
    GGUF source is the pinned one; entries written before the manifest named it are taken as they are)."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("format") != CACHE_FORMAT:
            return False
        if spec is not None and meta.get("gguf_sha256", spec.sha256) != spec.sha256:
            return False
        for name, digest in meta["files"].items():
            f = folder / name
            if not f.is_file() or f.stat().st_size != meta["sizes"][name] or sha256_file(f) != digest:
                logger.warning("cached model file %s is corrupt or incomplete", f)
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True




def _drop_gguf_quantizer(model: Any) -> None:
    """After a GGUF load the weights are plain tensors, but the model still carries the GGUF quantizer marker, which
    makes save_pretrained refuse; drop it so the de-quantised weights save as ordinary safetensors."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


@contextlib.contextmanager
def gguf_parsed_once() -> Iterator[None]:
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


def convert(spec: EmbeddedModel, target: Path, locate: Callable[[Part], Path] | None = None) -> None:
    """Assemble and check the GGUF file, de-quantise it and save it as safetensors at ``target`` (atomic).

    ``locate`` finds a part's file (default: the installed package's); any earlier entry at ``target`` is replaced.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with assembled_gguf(spec.name, target.parent, locate) as path:
        logger.warning("preparing the embedded model %s once: de-quantising its GGUF file (%d MB, about a minute)",
                       spec.name, spec.size // 10**6)
        with gguf_parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        gguf_licence = gguf_field(path, "general.license")
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
            "format": CACHE_FORMAT,
            "model": spec.name,
            "source": spec.packages,
            "gguf_sha256": spec.sha256,
            "gguf_license": gguf_licence,
            "licence": spec.licence,
            "seconds": round(time.perf_counter() - start, 1),
            "files": {name: sha256_file(tmp / name) for name in files},
            "sizes": {name: (tmp / name).stat().st_size for name in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: its presence means "complete"
        publish(tmp, target, spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename; a failed write leaves nothing
    legacy = target.parent / "gguf" / spec.gguf_name  # the assembled copy that earlier versions kept on disk
    if legacy.is_file():
        legacy.unlink()
        with contextlib.suppress(OSError):
            legacy.parent.rmdir()


def publish(tmp: Path, target: Path, spec: EmbeddedModel) -> None:
    """Move the finished folder into place with one rename: readers see the old entry or the whole new one."""
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:
        if not entry_is_valid(target, spec):  # not another process finishing the same conversion first
            raise
