"""Build llama.cpp's `llama-server` from the llama-cpp-python sdist on PyPI (its vendored
llama.cpp, so the same code our engine links), for `bench_inference.py --llama-server`.

    python bench/build_llama_server.py    # prints the binary path (cached after a first build)
    python bench/build_llama_server.py --quick    # CI's test upstream (see build())

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
BINARY = CACHE / "build" / "bin" / "llama-server"
QUICK_BINARY = CACHE / "build-quick" / "bin" / "llama-server"

# Injected into the CMake project (CMAKE_PROJECT_INCLUDE): once every target is defined, the
# ones that only parse HTTP and JSON or serve images are compiled without optimisation.
QUICK_CMAKE = """cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL _jan_quick)
function(_jan_quick)
  foreach(t llama-common cpp-httplib mtmd server-context llama-server-impl llama-server)
    if(TARGET ${t})
      set_property(TARGET ${t} APPEND PROPERTY COMPILE_OPTIONS -O0)
    endif()
  endforeach()
endfunction()
"""


def run(*cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True)


def build(quick: bool = False) -> Path:
    """The binary, built once. ``quick`` is CI's test upstream: ggml and llama (where the model
    runs) optimised as usual, the rest (HTTP, JSON, chat templates, images) at -O0: 908 CPU
    seconds to compile here instead of 1,480. It has its own folder: benchmarks never use it."""
    binary = QUICK_BINARY if quick else BINARY
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
    folder = binary.parent.parent
    options = []
    if quick:
        (CACHE / "quick.cmake").write_text(QUICK_CMAKE)
        options.append(f"-DCMAKE_PROJECT_INCLUDE={CACHE / 'quick.cmake'}")
    # Ninja where installed: about 12 minutes on 2 idle cores, for the server target only.
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    run("cmake", *generator, "-S", str(source), "-B", str(folder),
        "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_SERVER=ON",
        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", *options)
    run("cmake", "--build", str(folder), "--target", "llama-server",
        "-j", str(os.cpu_count() or 2))
    return binary


if __name__ == "__main__":
    print(build(quick="--quick" in sys.argv[1:]))
