"""Scale-out test fixtures: a real PostgreSQL server on loopback, a tiny search, and forked search workers.

The server is Debian's `postgresql` package (installed with apt-get when missing and we are root), started
in a temporary folder on a free 127.0.0.1 port with durability off (tests need speed, not crash safety of
the server), one database per test, stopped at the end of the session. Workers are forked from the test
process (the imports are already paid; a fresh `python -m nas.search` costs ~10 s of imports on 2 cores)
except where a test checks the real command line.
"""

from __future__ import annotations

import copy
import glob
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Imported here, once, so that forked workers start warm (Lightning alone takes seconds to import).
import nas.fit  # noqa: F401, E402
import nas.latency  # noqa: F401, E402
import nas.search.loop  # noqa: F401, E402
from tests.tiny import tiny_space

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Pw-9"  # must never appear in any output or file (trust auth accepts any password)

# A two-stage conv net with 2 x 8 x 8 x 2 = 256 architectures (few duplicates in a 15-trial study).
SPACE = tiny_space("scale_tiny", max_width=32, description="two conv stages, for the scale-out tests")

# A few hundred 16 px images, one epoch, latency by MAC count (no timing): about a second per trial.
OVERRIDES = [
    "data=synthetic", "data.train_size=192", "data.val_size=64", "data.test_size=16", "data.image_size=16",
    "data.batch_size=32", "data.eval_batch_size=64", "logger=none", "sampler=random", "workers=1", "fidelity.fraction=1.0",
    "fidelity.epochs=1", "latency.mode=macs", "baselines.enabled=false", "html=false", "progress=false",
]  # fmt: skip


# ------------------------------------------------------------------------------------------ PostgreSQL


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def _install_postgres() -> None:
    """Debian's package, when we may install it (CI's set-up does this too)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail(
            "PostgreSQL is not installed and this user cannot install it: run `sudo apt-get install -y postgresql` "
            "(the scale-out tests start a throw-away server on 127.0.0.1)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"apt-get install postgresql failed:\n{done.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throw-away server: `url(db)` gives a URL with a password, `create_db()` a fresh database."""

    def __init__(self, root: Path) -> None:
        if _pg_bin("initdb") is None or _pg_bin("pg_ctl") is None:
            _install_postgres()
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        # initdb refuses to run as root: the server runs as Debian's `postgres` user then.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(root, self.user)

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, user=self.user, cwd=self.root, timeout=120)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            pytest.fail(
                f"{' '.join(cmd[:2])} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}\n{log[-1500:]}"
            )

    def start(self) -> None:
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "nas", "-E", "UTF8", "--no-sync")
        opts = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w", "start"
        )

    def stop(self) -> None:
        subprocess.run(
            [self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            user=self.user,
            timeout=60,
        )

    def url(self, db: str = "postgres", *, driver: str = "+psycopg") -> str:
        """The SQLAlchemy URL users give (psycopg 3, the `scale` extra's driver); driver="" gives libpq's."""
        return f"postgresql{driver}://nas:{PASSWORD}@127.0.0.1:{self.port}/{db}"

    def create_db(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(driver=""), connect_timeout=10, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session (in its own /tmp folder: pytest's is
    private to root, and the server runs as the `postgres` user)."""
    root = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    server = PostgresServer(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres, monkeypatch) -> str:
    """A fresh database's URL, also exported as NAS_STORAGE_URL (what storage=postgres reads)."""
    url = postgres.create_db()
    monkeypatch.setenv("NAS_STORAGE_URL", url)
    return url


# ------------------------------------------------------------------------------------------- searches


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    """A SQLite study file in memory-backed /dev/shm when there is one: each trial writes dozens of attributes,
    one fsync'd commit each on disk (~25 ms apiece here), ~4 ms in /dev/shm."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="nas-test-", dir=shm)) if shm.is_dir() else tmp_path
    yield f"sqlite:///{root / 'study.db'}"
    if root != tmp_path:
        shutil.rmtree(root, ignore_errors=True)


def compose_search(*overrides: str) -> dict:
    from hydra import compose, initialize_config_dir

    from nas.config import CONF_DIR, to_plain

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_plain(compose("search", overrides=[*OVERRIDES, *overrides]))


@pytest.fixture
def search_cfg(tmp_path) -> Callable[..., dict]:
    """A factory: the tiny scale search config with extra overrides, files under tmp_path."""

    def make(*overrides: str, space: dict | None = None) -> dict:
        cfg = compose_search(*overrides)
        cfg["space"] = copy.deepcopy(space or SPACE)
        cfg["study_name"] = "scale"
        cfg["export_dir"] = str(tmp_path / "exported")
        return cfg

    return make


def load(storage, name: str = "scale"):
    """The study, for reading (a bare postgresql:// URL would get the installed driver, as storage=postgres
    does)."""
    import optuna

    from nas.search.storage import with_driver

    if isinstance(storage, str):
        storage = with_driver(storage)
    return optuna.load_study(study_name=name, storage=storage)


def counted(study) -> list:
    from nas.search.study import counted as is_counted

    return [t for t in study.get_trials(deepcopy=False) if is_counted(t)]


# -------------------------------------------------------------------------------------- forked workers


def _worker_main(cfg: dict, study_dir: str, setup: Callable[[], None] | None, log: str) -> None:
    """A forked worker: optional monkeypatching, then the search; exits without running the parent's atexit."""
    code = 0
    try:
        sys.stdout = sys.stderr = open(log, "a", buffering=1)  # noqa: SIM115
        if setup is not None:
            setup()
        from nas.search.loop import run_search

        result = run_search(cfg, study_dir=study_dir)
        print(f"worker done: {result.stopped}")
    except BaseException as e:  # noqa: BLE001 - the exit code tells the test
        import traceback

        traceback.print_exc()
        code = 3 if not isinstance(e, SystemExit) else int(e.code or 0)
    finally:
        os._exit(code)


_STARTED: list = []


def _cli_main(
    argv: list[str], log: str, cwd: str | None, module: str, env: dict[str, str | None] | None
) -> None:
    """A forked `python -m <module> <argv>`: the command line's code path without paying the imports again."""
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.stdout = sys.stderr = open(log, "a", buffering=1)  # noqa: SIM115
        sys.argv = [module, *argv]
        import runpy

        runpy.run_module(module, run_name="__main__", alter_sys=True)  # what `python -m` does
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 3
    finally:
        os._exit(code)


def fork_cli(
    argv: list[str],
    log: Path,
    cwd: Path | None = None,
    *,
    module: str = "nas.search",
    env: dict[str, str | None] | None = None,
):
    """Start `python -m <module> <argv>` as a forked process (in `cwd`, default this one's; `env` set in it, a
    None value unset); its stdout and stderr go to `log`."""
    where = None if cwd is None else str(cwd)
    proc = multiprocessing.get_context("fork").Process(
        target=_cli_main, args=(argv, str(log), where, module, env), daemon=True
    )
    proc.start()
    _STARTED.append(proc)
    return proc


def fork_worker(cfg: dict, study_dir: Path, log: Path, setup: Callable[[], None] | None = None):
    """Start a search worker as a forked process (multiprocessing, fork start method)."""
    proc = multiprocessing.get_context("fork").Process(
        target=_worker_main, args=(cfg, str(study_dir), setup, str(log)), daemon=True
    )
    proc.start()
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_worker_left_behind() -> Iterator[None]:
    """Kill this test's forked workers that are still running (a failed test must not leave them)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(10)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def kill9(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)


def blocking_fit(marker: Path, *, after: int = 0) -> Callable[[], None]:
    """Setup for a forked worker: its fit() trains `after` runs normally, then writes `marker` and hangs in
    the middle of the next run (its output folder half written), until the test kills it."""

    def setup() -> None:
        import nas.fit

        real = nas.fit.fit
        calls = [0]

        def fit(cfg, **kwargs):
            calls[0] += 1
            if calls[0] <= after:
                return real(cfg, **kwargs)
            Path(cfg["output_dir"]).mkdir(parents=True, exist_ok=True)
            (Path(cfg["output_dir"]) / "config.yaml").write_text("half written\n")
            marker.write_text(cfg["output_dir"])
            time.sleep(600)
            raise AssertionError("should have been killed")

        nas.fit.fit = fit

    return setup


def pretend_remote() -> Callable[[], None]:
    """Setup for a forked worker: it looks like a worker on another machine (only heartbeats can find it dead)."""

    def setup() -> None:
        import nas.search.workers

        nas.search.workers.machine_key.cache_clear()
        nas.search.workers.machine_key = lambda: "another-machine|boot|pid:[1]"

    return setup


def both(*setups: Callable[[], None]) -> Callable[[], None]:
    def setup() -> None:
        for s in setups:
            s()

    return setup
