"""The models extension's GGUF metadata reader, on the real SmolLM2 file and on files we write."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from models_fixtures import gguf_bytes, models_ext, write_gguf

gguf = models_ext().gguf


def test_reads_real_smollm2_metadata(smollm_path):
    tracemalloc.start()
    try:
        info = gguf.read_gguf(smollm_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < smollm_path.stat().st_size / 3  # metadata only, never the tensor data
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.eos_token == "<|im_end|>" and info.bos_token == "<|im_start|>"
    assert "<|im_start|>" in info.chat_template and "add_generation_prompt" in info.chat_template
    assert info.quantization == "Q4_1"
    assert info.file_size == smollm_path.stat().st_size
    # The header says exactly how long a complete file is.
    assert info.expected_size() == info.file_size and info.complete is True
    assert len(info.tensors) > 100
    # Large arrays that nobody asked for (merges) are walked over, not kept.
    assert "tokenizer.ggml.merges" not in info.metadata
    assert len(info.get("tokenizer.ggml.tokens")) == 49152


def test_round_trip_of_every_value_type(tmp_path):
    path = write_gguf(tmp_path / "t.gguf", arch="qwen2", context_length=32768, eos_id=4,
                      tokens=["a", "b", "c", "d", "<|end|>"],
                      extra={"x.nested": [[1, 2], [3]], "x.float": 1.5, "x.flag": True,
                             "x.big": 2**40, "x.neg": -3, "x.words": ["é", "ü"]})
    info = gguf.read_gguf(path)
    assert info.architecture == "qwen2" and info.context_length == 32768
    assert info.eos_token == "<|end|>"
    assert info.get("x.nested") == [[1, 2], [3]]
    assert info.get("x.float") == 1.5 and info.get("x.flag") is True
    assert info.get("x.big") == 2**40 and info.get("x.neg") == -3
    assert info.get("x.words") == ["é", "ü"]
    assert info.complete is True and info.expected_size() == path.stat().st_size


def test_truncated_tensor_data_is_incomplete(tmp_path):
    data = gguf_bytes()
    path = tmp_path / "half.gguf"
    path.write_bytes(data[:-100])
    info = gguf.read_gguf(path)
    assert info.complete is False and info.expected_size() == len(data)


def test_truncated_metadata_is_an_error(tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(gguf_bytes()[:60])
    with pytest.raises(gguf.GGUFError, match="truncated"):
        gguf.read_gguf(path)


def test_not_gguf_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("these are not the weights you are looking for" * 3)
    with pytest.raises(gguf.GGUFError, match="not a GGUF file"):
        gguf.read_gguf(path)
    assert not gguf.looks_like_gguf(path)
    tiny = tmp_path / "tiny.gguf"
    tiny.write_bytes(b"GGUF")
    with pytest.raises(gguf.GGUFError):
        gguf.read_gguf(tiny)


def test_hostile_counts_fail_fast(tmp_path):
    # A header claiming 2**60 metadata entries, and one claiming a 2**40-byte key.
    huge = tmp_path / "huge.gguf"
    huge.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 2**60) + b"\0" * 64)
    with pytest.raises(gguf.GGUFError, match="implausible"):
        gguf.read_gguf(huge)
    long_key = tmp_path / "long.gguf"
    long_key.write_bytes(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**40) + b"\0" * 64)
    with pytest.raises(gguf.GGUFError):
        gguf.read_gguf(long_key)


def test_unsupported_version(tmp_path):
    path = tmp_path / "v1.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 1, 0, 0) + b"\0" * 16)
    with pytest.raises(gguf.GGUFError, match="version 1"):
        gguf.read_gguf(path)


def test_deeply_nested_arrays_are_a_clean_error(tmp_path):
    """A crafted file must raise GGUFError, not RecursionError (which would escape the scan)."""
    path = tmp_path / "nested.gguf"
    depth = 5000
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    key = b"evil"
    body += struct.pack("<Q", len(key)) + key + struct.pack("<I", 9)
    body += struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 0)
    path.write_bytes(body)
    with pytest.raises(gguf.GGUFError, match="nested"):
        gguf.read_gguf(path)
