"""Tests for izkit.cache: the answer cache's keys, storage, concurrent writers, and what ``cache=`` arguments mean."""

from __future__ import annotations

import threading

import pytest

from izkit.cache import AnswerCache, default_cache_path, resolve_cache

BASE = dict(model="m", endpoint="e", template="t", instruction="i", input="x", decoding={"a": 1}, objective="acc")


def test_keys_depend_on_every_field_and_not_on_their_order():
    k = AnswerCache.key(**BASE)
    assert len(k) == 64 and int(k, 16) >= 0  # a sha256 hex digest
    assert k == AnswerCache.key(**dict(reversed(list(BASE.items()))))
    changes = [("model", "m2"), ("endpoint", "e2"), ("template", "u"), ("instruction", "i2"), ("input", "y"),
               ("decoding", {"a": 2}), ("objective", "loglik")]
    for field, other in changes:
        assert AnswerCache.key(**{**BASE, field: other}) != k, field
    assert AnswerCache.key(**BASE, answer="cold") != AnswerCache.key(**BASE, answer="hot")


def test_values_round_trip_through_the_file(tmp_path):
    path = tmp_path / "sub" / "answers.sqlite"  # the folder is created
    with AnswerCache(path) as cache:
        cache.put("k1", {"prediction": "cold"})
        cache.put("k2", {"loglik": -1.25, "n_tokens": 2})
        cache.put("k1", {"prediction": "chilly"})  # a second put replaces
        assert len(cache) == 2 and "k1" in cache and "k3" not in cache
    with AnswerCache(path) as again:  # another process, the same file
        assert again.get("k1") == {"prediction": "chilly"}
        assert again.get("k2") == {"loglik": -1.25, "n_tokens": 2}
        assert again.get("nope") is None


def test_get_many_returns_only_the_keys_present(tmp_path):
    with AnswerCache(tmp_path / "a.sqlite") as cache:
        cache.put_many({f"k{i}": {"prediction": str(i)} for i in range(1200)})  # more than one SELECT's worth
        wanted = [f"k{i}" for i in range(0, 1200, 2)] + ["absent", "k0"]  # a repeat and an absent key
        found = cache.get_many(wanted)
        assert set(found) == {f"k{i}" for i in range(0, 1200, 2)}
        assert found["k1198"] == {"prediction": "1198"}
        assert cache.get_many([]) == {}
        cache.put_many([])  # nothing to write is no error


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "a.sqlite"
    shared = AnswerCache(path)
    others = [AnswerCache(path) for _ in range(2)]  # their own connections to the same file
    caches = [shared, shared, *others]
    errors: list[BaseException] = []

    def write(t: int) -> None:
        try:
            for i in range(50):
                caches[t].put(f"{t}-{i}", {"prediction": f"{t}/{i}"})
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(len(caches))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(shared) == 4 * 50
    assert shared.get("3-49") == {"prediction": "3/49"} and others[0].get("0-0") == {"prediction": "0/0"}
    for c in [shared, *others]:
        c.close()


def test_clear_empties_the_cache(tmp_path):
    with AnswerCache(tmp_path / "a.sqlite") as cache:
        cache.put("k", {"prediction": "p"})
        cache.clear()
        assert len(cache) == 0 and cache.get("k") is None


def test_a_file_that_is_no_database_is_named_in_the_error(tmp_path):
    path = tmp_path / "answers.sqlite"
    path.write_bytes(b"this is not a sqlite file, just some bytes " * 100)
    with pytest.raises(RuntimeError, match="cannot open the answer cache .*answers.sqlite.*delete the file"):
        AnswerCache(path)


def test_resolve_cache_understands_every_kind_of_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("IZKIT_CACHE", str(tmp_path / "home"))
    assert resolve_cache(None) is None and resolve_cache(False) is None
    given = AnswerCache(tmp_path / "given.sqlite")
    assert resolve_cache(given) is given
    assert resolve_cache(tmp_path / "p.sqlite").path == tmp_path / "p.sqlite"
    assert resolve_cache(str(tmp_path / "s.sqlite")).path == tmp_path / "s.sqlite"
    assert default_cache_path() == tmp_path / "home" / "answers.sqlite"
    assert resolve_cache("default").path == resolve_cache(True).path == default_cache_path()
    assert repr(given) == f"AnswerCache({str(tmp_path / 'given.sqlite')!r})"
