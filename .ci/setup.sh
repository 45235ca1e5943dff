#!/usr/bin/env bash
# Idempotent set-up on a fresh Linux machine: the CPU torch wheel first (when torch is absent), the default
# dataset (Debian's package, when run as root), then the project with its dev, scale and nb201 extras
# (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
say() { printf '[setup] %s\n' "$*"; }

# 1. torch before anything that depends on it: otherwise pip resolves the newest CUDA build (several GB).
if ! "$PY" -c "import torch" 2>/dev/null; then
  say "installing torch ${TORCH_SPEC:-torch==2.13.0}"
  "$PY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi

# 2. Fashion-MNIST (the default dataset) from Debian's package when we can; otherwise the loader says how.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing dataset-fashion-mnist"
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }) ||
      say "could not install dataset-fashion-mnist; the data loader will explain how to get the files"
  else
    say "not root: install Fashion-MNIST with 'sudo apt-get install dataset-fashion-mnist' or set data.root"
  fi
fi

# 3. The project (editable, so Hydra finds conf/ next to the packages). Skipped when nothing changed and the
#    installed packages are this checkout's (an editable install of another clone would shadow it).
here=$(pwd -P)
installed_here() {
  (cd / && "$PY" -c "import pathlib, sys, blocks, experiments, nas
sys.exit(any(pathlib.Path(m.__file__).resolve().parents[1] != pathlib.Path(sys.argv[1]) for m in (blocks, experiments, nas)))" "$here") >/dev/null 2>&1
}
stamp=.cache/setup.stamp
want=$(sha256sum < pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! installed_here; then
  say "installing the project"
  "$PY" -m pip install -q -e ".[dev,scale,nb201]"
  mkdir -p .cache && echo "$want" > "$stamp"
fi
say "ready"
