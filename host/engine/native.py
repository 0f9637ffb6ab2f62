"""Thin wrapper over llama-cpp-python 0.3.36's low-level API (module ``llama_cpp.llama_cpp``).

Only the runner process imports this: a context is single-threaded and a C assert aborts the
whole process, which is why it never lives in the API server.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

import llama_cpp.llama_cpp as L

_LOG_CB = None  # keep the ctypes callback alive for the whole process


def init_backend(quiet: bool = True) -> None:
    """Initialise llama.cpp once; drop its chatter (it would only fill the runner's stderr)."""
    global _LOG_CB
    if quiet:
        _LOG_CB = L.llama_log_callback(lambda level, text, user_data: None)
        L.llama_log_set(_LOG_CB, ctypes.c_void_p(0))
    L.llama_backend_init()


def threads(cpu_threads: int | None) -> int:
    return max(1, cpu_threads or os.cpu_count() or 1)


class Model:
    """A loaded GGUF model and its vocabulary."""

    def __init__(self, path: str, ngl: int = 0) -> None:
        params = L.llama_model_default_params()
        params.n_gpu_layers = ngl
        self.ptr = L.llama_model_load_from_file(path.encode(), params)
        if not self.ptr:
            raise RuntimeError(f"llama.cpp could not load {path!r}")
        self.vocab = L.llama_model_get_vocab(self.ptr)
        self.n_embd = L.llama_model_n_embd(self.ptr)
        self.n_ctx_train = L.llama_model_n_ctx_train(self.ptr)
        self.add_bos = bool(L.llama_vocab_get_add_bos(self.vocab))
        self.encoder_only = bool(L.llama_model_has_encoder(self.ptr)) and not bool(
            L.llama_model_has_decoder(self.ptr)
        )
        self._piece = ctypes.create_string_buffer(256)

    @property
    def causal_attention(self) -> bool:
        """A decoder whose tokens see only the tokens before them (no recurrent state): a
        token's hidden state then depends on its prefix alone."""
        if self.encoder_only or L.llama_model_is_recurrent(self.ptr) or L.llama_model_is_hybrid(
                self.ptr):
            return False
        arch = self.meta("general.architecture")
        return self.meta(f"{arch}.attention.causal") != "false"

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = L.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):  # a long chat template: ask again with the exact size
            buf = ctypes.create_string_buffer(n + 1)
            L.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def token_text(self, token: int) -> str:
        if token < 0:
            return ""
        raw = L.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    @property
    def eos(self) -> int:
        return L.llama_vocab_eos(self.vocab)

    @property
    def bos(self) -> int:
        return L.llama_vocab_bos(self.vocab)

    def is_eog(self, token: int) -> bool:
        return bool(L.llama_vocab_is_eog(self.vocab, token))

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        while True:
            buf = (L.llama_token * cap)()
            n = L.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
            if n >= 0:
                return list(buf[:n])
            cap = -n  # negative return = the size that was needed

    def piece(self, token: int, special: bool = False) -> bytes:
        """The token's bytes (possibly part of a UTF-8 character); control tokens give b""
        unless ``special`` (tool-call markers such as ``<|python_tag|>`` are special tokens)."""
        n = L.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, special)
        if n < 0:
            big = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, big, len(big), 0, special)
            return big.raw[:n]
        return self._piece.raw[:n]

    def free(self) -> None:
        if self.ptr:
            L.llama_model_free(self.ptr)
            self.ptr = None


class Context:
    """One llama.cpp context plus one reusable batch."""

    def __init__(
        self, model: Model, *, n_ctx: int, n_seq: int, n_batch: int, n_threads: int,
        embeddings: bool = False, unified: bool = False, eval_callback: object = None,
        seqs_per_token: int = 1,
    ) -> None:
        p = L.llama_context_default_params()
        p.n_ctx = n_ctx
        p.n_seq_max = n_seq
        p.n_batch = n_batch
        p.n_ubatch = n_batch
        p.n_threads = n_threads
        # Left at its default, n_threads_batch made each step 1.7x slower on 2 cores.
        p.n_threads_batch = n_threads
        # kv_unified=True made greedy output depend on the other sequences in the batch.
        p.kv_unified = unified
        p.no_perf = True
        # AUTO (on where the backend supports it): on these 2-core CPUs a 1-token step took
        # 7.8 ms instead of 9.2 and a 4-sequence step 21.8 ms instead of 27 (llama-cpp-python's
        # high-level API defaults to off).
        p.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_AUTO
        if embeddings:
            p.embeddings = True
            p.pooling_type = L.LLAMA_POOLING_TYPE_MEAN
        if eval_callback is not None:  # a ggml_backend_sched_eval_callback (see hidden.py)
            p.cb_eval = eval_callback
        self.model = model
        self.ptr = L.llama_init_from_model(model.ptr, p)
        if not self.ptr:
            raise RuntimeError("llama.cpp could not create a context (out of memory?)")
        self.mem = L.llama_get_memory(self.ptr)
        self.n_batch = n_batch
        self.n_ctx_seq = int(L.llama_n_ctx_seq(self.ptr))
        self.batch = L.llama_batch_init(n_batch, 0, seqs_per_token)
        self._n = 0

    # -- batch -------------------------------------------------------------------------------
    def clear_batch(self) -> None:
        self._n = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append one token; returns its index in the batch (the index to sample at)."""
        b, i = self.batch, self._n
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits
        self._n = i + 1
        return i

    def add_shared(self, token: int, pos: int, seqs: Sequence[int], logits: bool) -> None:
        """Append one token that belongs to several sequences at once (at most the context's
        ``seqs_per_token``): decoded once, its KV cell is in each of theirs."""
        b, i = self.batch, self._n
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = len(seqs)
        for k, seq in enumerate(seqs):
            b.seq_id[i][k] = seq
        b.logits[i] = logits
        self._n = i + 1

    def add_many(self, tokens: Sequence[int], pos0: int, seq: int, last_logits: bool) -> int:
        b, i = self.batch, self._n
        for k, tok in enumerate(tokens):
            b.token[i + k] = tok
            b.pos[i + k] = pos0 + k
            b.n_seq_id[i + k] = 1
            b.seq_id[i + k][0] = seq
            b.logits[i + k] = False
        self._n = i + len(tokens)
        if last_logits and tokens:
            b.logits[self._n - 1] = True
        return self._n - 1

    @property
    def n_in_batch(self) -> int:
        return self._n

    def decode(self) -> int:
        """0 = ok, 1 = no KV slot, <0 = error (llama.cpp's codes)."""
        self.batch.n_tokens = self._n
        if self.model.encoder_only:
            return L.llama_encode(self.ptr, self.batch)
        return L.llama_decode(self.ptr, self.batch)

    # -- memory ------------------------------------------------------------------------------
    def seq_rm(self, seq: int, p0: int, p1: int = -1) -> bool:
        return bool(L.llama_memory_seq_rm(self.mem, seq, p0, p1))

    def seq_cp(self, src: int, dst: int) -> None:
        """Make ``dst`` hold all of ``src``'s cells. Across streams llama.cpp only copies whole
        sequences (a partial range aborts the process): trim ``dst`` afterwards."""
        L.llama_memory_seq_cp(self.mem, src, dst, -1, -1)

    def seq_state(self, seq: int) -> bytes:
        """A copy of one sequence's KV state (``llama_state_seq_get_data``); b"" on failure."""
        size = L.llama_state_seq_get_size(self.ptr, seq)
        if size <= 0:
            return b""
        buf = (ctypes.c_uint8 * size)()
        n = L.llama_state_seq_get_data(self.ptr, buf, size, seq)
        return bytes(memoryview(buf)[:n]) if n else b""

    def set_seq_state(self, seq: int, data: bytes) -> bool:
        """Load a state made by ``seq_state`` into ``seq`` (emptied first); False if refused."""
        self.seq_rm(seq, -1, -1)
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if L.llama_state_seq_set_data(self.ptr, buf, len(data), seq) == 0:
            self.seq_rm(seq, -1, -1)
            return False
        return True

    def clear(self) -> None:
        L.llama_memory_clear(self.mem, True)

    def embedding(self, seq: int) -> list[float]:
        ptr = L.llama_get_embeddings_seq(self.ptr, seq)
        if not ptr:
            raise RuntimeError("no pooled embedding (the model may not support pooling)")
        return ptr[: self.model.n_embd]

    def free(self) -> None:
        if self.ptr:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ptr)
            self.ptr = None
