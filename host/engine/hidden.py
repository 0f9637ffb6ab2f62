"""A decoder model's last hidden states, read during the decode, without its output layer.

In embedding mode llama.cpp makes every token an output, so a generative model's output layer
(n_embd x n_vocab: for SmolLM2 about a fifth of its work per token) runs for every input token,
only for pooling to ignore it. Instead, the embedding context gets a ggml eval callback
(``llama_context_params.cb_eval``). It copies the tensor llama.cpp names ``result_norm`` (the
normed hidden states, which embedding mode would pool) and returns false, which ggml documents as
cancelling the rest of the graph compute: the output layer never runs, and ``llama_decode``
still returns 0. Mean pooling happens here.

Most decoder graphs name that tensor ``result_norm``; where one does not, nothing is captured
and the caller falls back to llama.cpp's embedding mode.
"""

from __future__ import annotations

import ctypes

import llama_cpp.llama_cpp as L
import numpy as np
from llama_cpp._ggml import libggml

HIDDEN_TENSOR = b"result_norm"


def _declare() -> None:
    libggml.ggml_get_name.restype = ctypes.c_char_p
    libggml.ggml_get_name.argtypes = [ctypes.c_void_p]
    libggml.ggml_nbytes.restype = ctypes.c_size_t
    libggml.ggml_nbytes.argtypes = [ctypes.c_void_p]
    libggml.ggml_nelements.restype = ctypes.c_int64
    libggml.ggml_nelements.argtypes = [ctypes.c_void_p]
    libggml.ggml_backend_tensor_get.restype = None
    libggml.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                                ctypes.c_size_t]


_declare()


class HiddenStates:
    """The eval callback for one context, and the rows it captured since the last ``pooled``."""

    def __init__(self, n_embd: int) -> None:
        self.n_embd = n_embd
        self.rows: list[np.ndarray] = []
        # Kept on the instance: the C side holds only a pointer to it.
        self.callback = L.ggml_backend_sched_eval_callback(self._on_tensor)

    def _on_tensor(self, tensor: int, ask: bool, _user: int) -> bool:
        if libggml.ggml_get_name(tensor) != HIDDEN_TENSOR:
            return not ask  # not wanted; "true" when shown one would let the compute go on
        if ask:
            return True
        size = libggml.ggml_nbytes(tensor)
        if size != 4 * libggml.ggml_nelements(tensor):
            return True  # not float32: capture nothing, so the caller falls back
        out = np.empty(size // 4, dtype=np.float32)
        libggml.ggml_backend_tensor_get(tensor, out.ctypes.data, 0, size)
        self.rows.append(out.reshape(-1, self.n_embd))
        return False  # cancel the rest: the output layer

    def clear(self) -> None:
        self.rows = []

    def pooled(self, paths: list[list[int]], n_rows: int) -> list[list[float]] | None:
        """Per input, the mean of the rows of its tokens' batch entries (``paths``; the caller
        normalises them, as it does embedding mode's), or None when the decode did not capture
        ``n_rows`` rows, one per entry (this graph has no such tensor)."""
        rows, self.rows = self.rows, []
        hidden = np.concatenate(rows) if rows else np.empty((0, self.n_embd), np.float32)
        if hidden.shape[0] != n_rows:
            return None
        return [hidden[path].mean(axis=0).tolist() for path in paths]
