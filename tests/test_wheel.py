"""The project as a package, not a checkout: build the wheel, install it into a fresh virtual environment,
and from an empty folder train, search (then train an exported front architecture) and ask the ablation
and the calibration for their help, importing only the wheel's code and configs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.search.conftest import OVERRIDES as SEARCH
from tests.tiny import tiny_space

ROOT = Path(__file__).resolve().parents[1]
# What the wheel is built from (a copy, so the build leaves nothing in the checkout).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "blocks", "nas", "experiments", "conf", "hydra_plugins")
DATA = ["data=synthetic", "data.train_size=96", "data.test_size=16", "data.image_size=8", "data.batch_size=16",
        "logger=none"]  # fmt: skip

pytestmark = pytest.mark.slow  # about a minute: a wheel build, a venv, five interpreter start-ups


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(argv)} -> {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(the venv's python, an environment without PYTHONPATH) with the freshly built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "exported"))
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH")}
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src), "-w",
          str(tmp / "dist")], cwd=tmp, env=env)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("cnn_nas-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"conf/__init__.py", "conf/train.yaml", "conf/model/resnet18.yaml", "conf/suite/mishkin.yaml",
            "conf/hydra/launcher/local.yaml", "hydra_plugins/cnn_nas_exports.py"} <= names  # fmt: skip
    assert not any(n.endswith(".csv") for n in names)  # shared reference tables are read, never packaged
    assert not any(n.startswith("experiments/bench/") for n in names)  # the benchmarks run from a checkout
    assert any(".dist-info/" in n and n.endswith("/LICENSE") for n in names)  # MIT: the text travels with it
    # --system-site-packages: torch and every dependency come from the system. The wheel's packages are
    # found first (the venv's site-packages precedes the system's, where an editable install may live);
    # the test checks that below instead of trusting it.
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], cwd=tmp, env=env)
    python = tmp / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp, env=env)
    return python, env


def test_the_installed_wheel_imports_its_own_code_and_configs(venv, tmp_path):
    python, env = venv
    out = _run([str(python), "-c", "import blocks, conf, experiments, nas, hydra_plugins.cnn_nas_exports as p\n"
                "from nas.config import CONF_DIR\n"
                "for f in (blocks.__file__, conf.__file__, experiments.__file__, nas.__file__, p.__file__, CONF_DIR):"
                " print(f)"], cwd=tmp_path, env=env)  # fmt: skip
    site = python.parents[1] / "lib"
    files = [Path(line) for line in out.split()]
    assert len(files) == 6 and all(site in f.parents for f in files), f"not the wheel's modules: {files}"


def test_train_search_and_ablate_help_run_from_an_empty_folder(venv, tmp_path):
    python, env = venv
    work = tmp_path / "work"
    work.mkdir()
    out = _run([str(python), "-m", "experiments.train", *DATA, "trainer.max_epochs=1",
                "trainer.enable_progress_bar=false", "checkpoint=false"], cwd=work, env=env)  # fmt: skip
    assert "val acc" in out and len(list((work / "outputs" / "train").glob("*/metrics.json"))) == 1

    # A user's own space beside the packaged ones (hydra.searchpath), the study in outputs/search/<study>.
    (tmp_path / "myconf" / "space").mkdir(parents=True)
    (tmp_path / "myconf" / "space" / "tiny.yaml").write_text(yaml.safe_dump(tiny_space()))
    out = _run([str(python), "-m", "nas.search", f"hydra.searchpath=[file://{tmp_path / 'myconf'}]",
                "+space=tiny", "study_name=wheel", *SEARCH, "n_trials=1"], cwd=work, env=env)  # fmt: skip
    exported = sorted(
        (work / "outputs" / "search" / "wheel" / "conf" / "model" / "exported").glob("wheel-t*.yaml")
    )
    assert exported and "python -m experiments.train model=exported/wheel-t" in out
    installed_conf = python.parents[1] / "lib"
    assert not list(
        installed_conf.glob("python*/site-packages/conf/model/exported")
    )  # nothing into the package

    # The exported front architecture trains by name, found through the wheel's searchpath plugin.
    name = exported[0].stem
    out = _run([str(python), "-m", "experiments.train", f"model=exported/{name}", *DATA, "trainer.max_epochs=1",
                "trainer.enable_progress_bar=false", "checkpoint=false", "test=false"], cwd=work, env=env)  # fmt: skip
    assert f"run        {name}-synthetic" in out

    out = _run([str(python), "-m", "experiments.ablate", "--help"], cwd=work, env=env)
    assert "pooling" in out and "activation" in out

    # The console scripts come with the wheel: `nas-search` is `python -m nas.search`.
    out = _run([str(python.parent / "nas-search"), "--help"], cwd=work, env=env)
    assert out.startswith("nas-search space=<name>") and "resnet_like" in out
    out = _run([str(python.parent / "nas-calibrate"), "--help"], cwd=work, env=env)
    assert out.startswith("usage: nas-calibrate") and "--fidelities" in out
