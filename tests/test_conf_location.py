"""The platform finds its own configs from a working directory that has a `conf/` folder of its own (common in
Hydra projects): `python -m` puts the working directory first on sys.path, so `import conf` would find the
user's folder, not the platform's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nas.config

ROOT = Path(__file__).resolve().parents[1]


def test_the_configs_are_found_beside_the_nas_package():
    assert nas.config.CONF_DIR == ROOT / "conf"
    assert (
        Path(nas.config.CONFIG_PATH).is_absolute()
        and (Path(nas.config.CONFIG_PATH) / "search.yaml").is_file()
    )


def test_a_conf_folder_in_the_working_directory_does_not_shadow_the_platforms(tmp_path):
    (tmp_path / "conf" / "space").mkdir(parents=True)
    (tmp_path / "conf" / "space" / "mine.yaml").write_text("name: mine\n")
    # As installed (an editable install finds packages through a meta-path finder, which a namespace package
    # in the working directory shadows), not through PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run(
        [sys.executable, "-m", "nas.search"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "resnet_like" in p.stdout  # the platform's spaces, listed
