"""Build llama.cpp's `llama-server` from the llama-cpp-python sdist on PyPI (its vendored
llama.cpp, so the same code our engine links), for `bench_inference.py --llama-server`.

    python bench/build_llama_server.py    # prints the binary path (cached after a first build)

Takes about 12 minutes on 2 cores; nothing is committed or installed outside the cache folder.
``.ci/run`` runs it beside the test suite (tests/test_engine_openai_llama.py waits for it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

VERSION = "0.3.36"
CACHE = Path.home() / ".cache" / "jan-bench" / f"llama-server-{VERSION}"


def run(*cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True)


def build() -> Path:
    binary = CACHE / "build" / "bin" / "llama-server"
    if binary.is_file():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"llama_cpp_python-{VERSION}.tar.gz"
    if not sdist.is_file():
        run(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "-d", str(CACHE), f"llama-cpp-python=={VERSION}")
    source = CACHE / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    if not source.is_dir():
        with tarfile.open(sdist) as tar:
            tar.extractall(CACHE, filter="data")
    # Ninja where installed: about 12 minutes on 2 idle cores, for the server target only.
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    run("cmake", *generator, "-S", str(source), "-B", str(CACHE / "build"),
        "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_SERVER=ON",
        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF")
    run("cmake", "--build", str(CACHE / "build"), "--target", "llama-server",
        "-j", str(os.cpu_count() or 2))
    return binary


if __name__ == "__main__":
    print(build())
