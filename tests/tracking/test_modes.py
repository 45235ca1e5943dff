"""W&B modes: online falls back to offline fast when the server is unreachable or the start fails, disabled
writes nothing; secrets are masked on the command line and in Hydra's saved files; the `wandb sync` line."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from nas import tracking
from nas.tracking import runs
from tests.tracking.helpers import API_KEY, PASSWORD, STORAGE_ARG, assert_no_secret, private_wandb


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def online(monkeypatch, tmp_path):
    """A configured API key (so mode auto means online) and no WANDB_MODE override."""
    private_wandb(monkeypatch, tmp_path / "home")
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)
    probe = runs.server_reachable
    probe.cache_clear()
    monkeypatch.setattr(runs, "_ONLINE_FAILED", set())
    yield
    probe.cache_clear()


# refused; and an address nothing serves (unroutable, or answered 404 by an intercepting network)
@pytest.mark.parametrize("url", ["closed", "http://10.255.255.1:81"])
def test_unreachable_server_means_offline_within_seconds(online, monkeypatch, tmp_path, caplog, url):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}" if url == "closed" else url)
    start = time.monotonic()
    run = tracking.init_run(
        {"name": "wandb", "mode": "auto", "probe_timeout": 1},
        dir=tmp_path / "run",
        name="r",
        job_type="train",
    )
    elapsed = time.monotonic() - start
    assert runs.run_mode(run) == "offline"
    tracking.finish_run(run, summary={"val/acc": 0.5})
    assert elapsed < 20, elapsed  # the probe (1 s) plus starting W&B's service, never its 60 s init timeout
    assert "unreachable: logging offline" in caplog.text
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert_no_secret(tmp_path, API_KEY)


def test_a_failing_online_start_falls_back_to_offline(online, monkeypatch, tmp_path, caplog):
    import wandb

    real = wandb.init
    modes = []

    def init(*args, mode=None, **kwargs):
        modes.append(mode)
        if mode == "online":
            raise wandb.errors.CommError("Timed out while retrying: the server did not answer")
        return real(*args, mode=mode, **kwargs)

    monkeypatch.setattr(runs, "server_reachable", lambda url, timeout_s=5.0: True)
    monkeypatch.setattr(wandb, "init", init)
    run = tracking.init_run({"name": "wandb", "mode": "online"}, dir=tmp_path, name="r", job_type="train")
    assert modes == ["online", "offline"] and runs.run_mode(run) == "offline"
    tracking.finish_run(run)
    assert "online start failed" in caplog.text
    # the next run of the process does not wait for that server again
    run = tracking.init_run({"name": "wandb", "mode": "online"}, dir=tmp_path, name="r2", job_type="train")
    assert modes == ["online", "offline", "offline"]
    tracking.finish_run(run)


def test_disabled_and_other_loggers_start_nothing(monkeypatch, tmp_path):
    private_wandb(monkeypatch, tmp_path / "home")
    assert (
        tracking.init_run({"name": "wandb", "mode": "disabled"}, dir=tmp_path, name="r", job_type="train")
        is None
    )
    assert tracking.init_run({"name": "csv"}, dir=tmp_path, name="r", job_type="train") is None
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert (
        tracking.init_run({"name": "wandb", "mode": "online"}, dir=tmp_path, name="r", job_type="train")
        is None
    )
    assert not list(tmp_path.rglob("offline-run-*"))


def test_server_probe_needs_a_graphql_answer():
    class Server(http.server.BaseHTTPRequestHandler):
        """/graphql answers 401 (a W&B server without a key); anything else 404; /bad 502 (a proxy)."""

        def do_POST(self):  # noqa: N802 - http.server's naming
            code = 401 if self.path == "/graphql" else 502 if self.path.startswith("/bad") else 404
            assert "Authorization" not in self.headers  # the probe never sends the API key
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    probe = runs.server_reachable.__wrapped__
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert probe(base, 2.0) and probe(base + "/", 2.0)
        assert not probe(base + "/elsewhere", 2.0)  # 404: not a W&B server
        assert not probe(base + "/bad", 2.0)  # 502: a proxy that cannot reach it
    finally:
        server.shutdown()
        server.server_close()
    assert not probe(f"http://127.0.0.1:{closed_port()}", 2.0)


def test_command_line_and_hydra_files_are_masked(tmp_path):
    argv = [STORAGE_ARG, "--password", "hunter2", f"logger.api_key={API_KEY}", "data.fraction=0.5"]
    masked = tracking.redact_argv(argv)
    assert masked == [
        "storage.url=postgresql://nas:***@db.example:5432/optuna",
        "--password",
        "***",
        "logger.api_key=***",
        "data.fraction=0.5",
    ]
    hydra = tmp_path / "run" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text(f"- {STORAGE_ARG}\n- seed=1\n")
    (hydra / "config.yaml").write_text(
        f"storage:\n  url: postgresql://nas:{PASSWORD}@db/optuna\n  api_key: {API_KEY}\n  token: null\nseed: 1\n"
    )
    (tmp_path / "multirun.yaml").write_text(f"hydra:\n  overrides:\n    task:\n    - {STORAGE_ARG}\n")
    changed = tracking.redact_hydra_outputs(tmp_path / "run", tmp_path)
    assert len(changed) == 3
    assert_no_secret(tmp_path, PASSWORD, API_KEY)
    import yaml

    cfg = yaml.safe_load((hydra / "config.yaml").read_text())
    assert cfg == {
        "storage": {"url": "postgresql://nas:***@db/optuna", "api_key": "***", "token": None},
        "seed": 1,
    }


def test_sync_command_folds_sibling_runs_into_one_glob(monkeypatch, tmp_path):
    made = []
    for owner in ("study/trials/t0000", "study/trials/t0001", "study"):
        run = tmp_path / owner / "wandb" / f"offline-run-2026_{len(made)}"
        run.mkdir(parents=True)
        made.append((run, "tiny"))
    monkeypatch.setattr(runs, "_OFFLINE", [*made, (tmp_path / "other" / "wandb" / "offline-run-x", "other")])
    cmd = tracking.sync_command(group="tiny")
    assert cmd == (
        f"wandb sync {tmp_path}/study/trials/*/wandb/offline-run-* {tmp_path}/study/wandb/offline-run-*"
    )
    assert tracking.sync_command(group="nothing") is None
    assert tracking.sync_command(since=2, group="tiny") == f"wandb sync {tmp_path}/study/wandb/offline-run-*"
