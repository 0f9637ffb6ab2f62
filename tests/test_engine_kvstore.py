"""The on-disk KV state cache's file handling (no model needed): lookup by prefix, checks that
drop corrupt and stale entries, the byte cap, and entries made redundant by longer ones."""

from __future__ import annotations

from pathlib import Path

from jan.host.engine.kvstore import KVStore


def store(folder: Path, model: Path, fp: str = "a" * 64, cap: int = 10**6) -> KVStore:
    return KVStore(folder, fp, str(model), cap)


def saved(s: KVStore, tokens: list[int], state: bytes) -> None:
    s.save(tokens, state)
    assert s.flush(10)


def test_prefix_lookup_round_trip_and_survives_a_new_store(tmp_path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    s = store(tmp_path / "kv", model)
    saved(s, [1, 2, 3, 4], b"state-1234")
    entry, shared = s.best([1, 2, 3, 9, 9])
    assert shared == 3
    assert s.load(entry) == ([1, 2, 3, 4], b"state-1234")
    again = store(tmp_path / "kv", model)  # a restarted runner finds it
    entry, shared = again.best([1, 2, 3, 4, 5])
    assert shared == 4 and again.load(entry)[1] == b"state-1234"
    assert again.best([7, 8]) is None


def test_corrupt_entry_is_ignored_and_deleted(tmp_path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    s = store(tmp_path / "kv", model)
    saved(s, [5, 6, 7], b"x" * 100)
    (path,) = (tmp_path / "kv").glob("*.kv")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    entry, _ = s.best([5, 6, 7])
    assert s.load(entry) is None
    assert not path.exists() and s.best([5, 6, 7]) is None
    (tmp_path / "kv" / "junk.kv").write_bytes(b"not a cache file")
    store(tmp_path / "kv", model)  # scanning removes garbage too
    assert not (tmp_path / "kv" / "junk.kv").exists()


def test_stale_entries_of_the_same_model_go_others_stay(tmp_path) -> None:
    model, other = tmp_path / "m.gguf", tmp_path / "o.gguf"
    model.write_bytes(b"weights")
    other.write_bytes(b"other")
    saved(store(tmp_path / "kv", model, fp="a" * 64), [1, 2], b"old")
    saved(store(tmp_path / "kv", other, fp="c" * 64), [1, 2], b"theirs")
    fresh = store(tmp_path / "kv", model, fp="b" * 64)  # the model file or settings changed
    names = sorted(p.name[:1] for p in (tmp_path / "kv").glob("*.kv"))
    assert names == ["c"]  # ours (stale) removed, the other model's kept
    assert fresh.best([1, 2]) is None


def test_cap_evicts_least_recently_used_and_longer_entries_replace_prefixes(tmp_path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    s = store(tmp_path / "kv", model, cap=3000)
    for i in range(5):
        saved(s, [100 + i, 1, 2], b"s" * 900)
    files = list((tmp_path / "kv").glob("*.kv"))
    assert sum(f.stat().st_size for f in files) <= 3000
    assert s.best([104, 1, 2])[1] == 3  # the newest is kept
    assert s.best([100, 1, 2]) is None  # the oldest went
    saved(s, [104, 1, 2, 3], b"t" * 900)  # extends [104, 1, 2]: that one is redundant now
    assert s.best([104, 1, 2])[0].tokens == [104, 1, 2, 3]
    assert len(s.entries) == len(list((tmp_path / "kv").glob("*.kv")))
    saved(s, [9], b"z" * 5000)  # larger than the whole cap: not stored
    assert s.best([9]) is None
