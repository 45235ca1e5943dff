"""optuna-dashboard on loopback against the study a tiny search wrote: headless Chromium renders the study
and its trials (README: `optuna-dashboard sqlite:///outputs/search/<study>/study.db`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM) if p), None)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Headless Chromium; installed with apt-get (Debian: chromium, chromium-driver) when missing and root."""
    path = find_chromium()
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"]
        if subprocess.run(install, capture_output=True, env=env, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
            subprocess.run(install, capture_output=True, env=env, timeout=900)
        path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing and could not be installed (apt-get install chromium, as root)")
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver, as root)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def dashboard(tiny_search, tmp_path):
    """`optuna-dashboard <storage>` on 127.0.0.1 for the tiny search's study; yields its base URL."""
    study_dir = tiny_search[0]
    storage = f"sqlite:///{study_dir / 'study.db'}"
    port = free_port()
    exe = shutil.which("optuna-dashboard")
    cmd = [exe] if exe else [sys.executable, "-c", "from optuna_dashboard._cli import main; main()"]
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [*cmd, storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get_json(f"{base}/api/studies")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        f"optuna-dashboard did not start:\n{(tmp_path / 'dashboard.log').read_text()}"
                    )
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def render(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (a virtual-time budget lets the app fetch and render)."""
    out = subprocess.run(
        [
            chromium,
            *CHROME_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_dashboard_shows_the_study_and_its_trials(tiny_search, dashboard, chromium, tmp_path):
    studies = get_json(f"{dashboard}/api/studies")["study_summaries"]
    (study,) = [s for s in studies if s["study_name"] == "tiny"]
    assert study["directions"] == ["maximize", "minimize"]

    home = render(chromium, f"{dashboard}/dashboard", tmp_path / "chrome-home")
    assert "tiny" in home

    page = render(
        chromium, f"{dashboard}/dashboard/studies/{study['study_id']}/trials", tmp_path / "chrome-trials"
    )
    for n in range(3):
        assert f"Trial {n}" in page, f"trial {n} not rendered"
    # the objective names the platform gave the study
    assert "accuracy" in page and "latency" in page
