#!/usr/bin/env bash
# The declared version floors, installed and tested: a virtual environment over the system's packages (torch
# stays the system's) with every direct dependency of pyproject.toml at the lowest version it allows, then
# the fast tests that exercise those libraries' APIs. Usage: bash .ci/floors.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${FLOORS_VENV:-.cache/floors-venv}
say() { printf '[floors] %s\n' "$*"; }

# "name[extras]>=X[,<Y]" -> "name[extras]==X" for the runtime dependencies and the scale extra (never torch).
# Packages that depend on torch go in with --no-deps: pip would otherwise resolve another torch (several GB).
pins=$("$PY" - <<'PYEOF'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
needs_torch = {"pytorch-lightning", "torchmetrics"}
plain, no_deps = [], []
for req in [*project["dependencies"], *project["optional-dependencies"]["scale"]]:
    name, extras, floor = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)", req).groups()
    if name.lower() == "torch":
        continue
    (no_deps if name.lower() in needs_torch else plain).append(f"{name}{extras or ''}=={floor}")
print(" ".join(plain)); print(" ".join(no_deps))
PYEOF
)
plain=$(sed -n 1p <<<"$pins"); no_deps=$(sed -n 2p <<<"$pins")
stamp="$VENV/floors.stamp"
if [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$VENV"
  "$PY" -m venv --system-site-packages "$VENV"
  say "installing $plain"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $plain
  say "installing (no deps) $no_deps"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps $no_deps
  echo "$pins" > "$stamp"
fi
"$VENV/bin/python" - <<'PYEOF'
import importlib.metadata as md
for name in ("torch", "pytorch-lightning", "torchmetrics", "hydra-core", "optuna", "optuna-integration", "wandb", "numpy"):
    print(f"[floors] {name} {md.version(name)}")
PYEOF
# The checkout's packages, not an installed copy; the tests that touch Lightning, Optuna (studies, workers,
# heartbeats, pruning), Hydra (every config composes) and W&B (offline runs) on tiny data.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=offline WANDB_SILENT=true
[ $# -gt 0 ] || set -- tests/test_configs.py tests/engine tests/search/test_study.py tests/scale/test_local_workers.py \
  "tests/search/test_loop.py::test_a_constrained_search_raises_no_optuna_deprecation_or_experimental_warning"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
