"""A real one-node SLURM cluster on loopback for the SLURM recipe's tests (Debian's `slurm-wlm` and `munge`).

munged runs with a fresh key and its own socket, slurmctld and slurmd with a minimal slurm.conf, all in one
temporary folder on free 127.0.0.1 ports; SLURM_CONF points the client commands (sbatch, squeue, scancel:
what submitit calls) at it, and a `sacct` shim stands in for accounting (sacct_shim.py says why). Everything
is stopped and removed at the end of the session. The daemons need root (slurmd starts jobs as their user).
Missing packages are installed with apt-get when we are root; under CI=1 a cluster that cannot start fails
the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOW = "sudo apt-get install -y slurm-wlm munge (and pip install hydra-submitit-launcher, the `scale` extra)"
DAEMONS = ("munged", "slurmctld", "slurmd")


def _unavailable(why: str) -> None:
    """Fail under CI (the set-up installs the packages), skip elsewhere; either way say how to get them."""
    message = f"a SLURM test cluster cannot start: {why}; install it with {HOW}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _install() -> None:
    if all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in DAEMONS):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        _unavailable("slurmctld / slurmd / munged are not installed and this user cannot install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            _unavailable(f"apt-get install slurm-wlm munge failed: {done.stderr[-1000:]}")


def _daemon(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """munged + slurmctld + slurmd (node `nas1`, 4 CPUs declared, partition `debug`) in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        # bin/sacct: the cluster has no accounting daemon; the shim answers submitit from slurmctld
        self.env = {  # without the suite's OMP_NUM_THREADS: the jobs must take their threads from SLURM
            **{k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"},
            "SLURM_CONF": str(self.conf),
            "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
        }
        self.pids: dict[str, Path] = {}

    def _write_conf(self) -> None:
        host = socket.gethostname().split(".")[0]  # slurmctld only runs on the host the config names
        r = self.root
        self.conf.write_text(
            f"""ClusterName=nastest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/munge.sock
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerType=sched/builtin
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=30
NodeName=nas1 NodeAddr=127.0.0.1 NodeHostname={host} CPUs=4 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=nas1 Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60)
        if done.returncode != 0:
            logs = "".join(p.read_text()[-1500:] for p in self.root.glob("*.log"))
            _unavailable(f"{' '.join(cmd[:1])} failed: {done.stderr[-1500:]}\n{logs}")

    def start(self) -> None:
        for d in ("state", "spool", "munge", "bin"):
            (self.root / d).mkdir()
        sacct = self.root / "bin" / "sacct"
        sacct.write_text(f"#!{sys.executable}\n" + (Path(__file__).parent / "sacct_shim.py").read_text())
        sacct.chmod(0o755)
        munge = self.root / "munge"
        munge.chmod(0o700)
        (munge / "munge.key").write_bytes(os.urandom(1024))
        (munge / "munge.key").chmod(0o400)
        self._write_conf()
        self._run(
            _daemon("munged"), "--force", f"--key-file={munge / 'munge.key'}", f"--socket={munge / 'munge.sock'}",
            f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'seed'}",
        )  # fmt: skip
        self.pids["munged"] = munge / "munged.pid"
        self._run(_daemon("slurmctld"), "-c", "-f", str(self.conf))
        self.pids["slurmctld"] = self.root / "slurmctld.pid"
        self._run(_daemon("slurmd"), "-N", "nas1", "-f", str(self.conf))
        self.pids["slurmd"] = self.root / "slurmd.pid"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if state.stdout.strip() == "idle":
                return
            time.sleep(0.5)
        _unavailable(
            f"node nas1 never became idle (sinfo: {state.stdout.strip()!r} {state.stderr.strip()!r})"
        )

    def squeue(self) -> list[str]:
        """Job ids of this cluster's queued and running jobs."""
        out = subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True, env=self.env)
        return out.stdout.split()

    def element(self, job_id: str) -> str:
        """The `<array job>_<task>` name of the queued or running job `job_id` (what scancel accepts)."""
        out = subprocess.run(["squeue", "-h", "-o", "%A %i"], capture_output=True, text=True, env=self.env)
        names = dict(line.split() for line in out.stdout.splitlines() if line.strip())
        return names[job_id]

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "--user=root"], capture_output=True, env=self.env, timeout=30)
        for name in reversed(DAEMONS):  # slurmd, slurmctld, munged: by the pid each one wrote
            pid_file = self.pids.get(name)
            if pid_file is None or not pid_file.exists():
                continue
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(30):  # 3 s, then SIGKILL (the state is thrown away anyway)
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """A one-node SLURM cluster for the session (in /tmp: munge's socket path must stay short)."""
    if os.geteuid() != 0:
        _unavailable("slurmd must run as root to start jobs")
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        _unavailable("hydra-submitit-launcher is not installed")
    _install()
    root = Path(tempfile.mkdtemp(prefix="nas-slurm-"))
    cluster = SlurmCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
