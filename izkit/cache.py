"""A disk cache of black-box answers, so a re-run or a resumed run never asks the same question twice.

InstructZero step 3 (paper sec. 3) scores every generated instruction `v` on the same 20 dev examples; the Uniform and
APE baselines and a resumed run ask many of the same (instruction, input) pairs again. Each answer is stored under a
sha256 of everything that determines it:

    (model id, endpoint, prompt template, instruction, input, decoding settings, objective [, gold answer for loglik])

The metric is *not* part of the key: the raw answer is stored and scored on read, so a different metric reuses it.
Secrets never enter a key or a value (the caller passes only the fields above).

Storage is one sqlite3 file in WAL mode: concurrent readers, one writer at a time, every write committed at once so a
crash or a failed request loses nothing that was already answered. A connection is shared between threads behind a
lock (the OpenAI black box writes from its event loop's thread).

    cache = AnswerCache()                      # izkit.models.cache_dir() / "answers.sqlite"
    key = cache.key(model="m", endpoint="local", template=t, instruction=v, input=x, decoding={...},
                    objective="accuracy")
    cache.get_many([key]); cache.put(key, {"prediction": "cold"})
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

KEY_VERSION = 1  # bump when the meaning of a stored value changes, so old entries are never misread


def default_cache_path() -> Path:
    """``izkit.models.cache_dir() / "answers.sqlite"`` (``$IZKIT_CACHE`` moves it)."""
    from izkit.models import cache_dir

    return cache_dir() / "answers.sqlite"


class AnswerCache:
    """A persistent map from an answer's key (a sha256 hex string) to a small JSON value.

    Args:
        path: the sqlite file; None for :func:`default_cache_path`. Its folder is created if needed.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at commit boundaries
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._conn.commit()
        except sqlite3.DatabaseError as err:
            raise RuntimeError(
                f"cannot open the answer cache {self.path}: {err}; delete the file or pass another cache path"
            ) from err

    @staticmethod
    def key(**fields: Any) -> str:
        """The sha256 of the fields, serialised as canonical JSON (sorted keys), plus :data:`KEY_VERSION`."""
        blob = json.dumps({"v": KEY_VERSION, **fields}, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored values of those keys that are present (absent keys are left out)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # stay under sqlite's limit on bound parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(f"SELECT key, value FROM answers WHERE key IN ({marks})", chunk)
                found.update((k, json.loads(v)) for k, v in rows)
        return found

    def get(self, key: str) -> dict[str, Any] | None:
        return self.get_many([key]).get(key)

    def put_many(self, items: Mapping[str, Mapping[str, Any]] | Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Store values (JSON-serialisable mappings) and commit at once."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        if not pairs:
            return
        now = time.time()
        rows = [(k, json.dumps(dict(v), ensure_ascii=False), now) for k, v in pairs]
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO answers (key, value, created) VALUES (?, ?, ?)", rows)
            self._conn.commit()

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        self.put_many([(key, value)])

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def clear(self) -> None:
        """Delete every stored answer."""
        with self._lock:
            self._conn.execute("DELETE FROM answers")
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AnswerCache({str(self.path)!r})"


def resolve_cache(cache: AnswerCache | str | os.PathLike | None | bool) -> AnswerCache | None:
    """What a black box's ``cache=`` argument means: an AnswerCache, a path, "default"/True, or None (no cache)."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, AnswerCache):
        return cache
    if cache is True or cache == "default":
        return AnswerCache()
    return AnswerCache(cache)
