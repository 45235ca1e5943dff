"""`sacct -o JobID,State,NodeList --parsable2 -j ID ...` answered from slurmctld's memory (`scontrol show job`).

The test cluster has no accounting daemon (slurmdbd needs a MySQL server), so the real sacct fails. submitit
polls sacct to learn the state of a job that ended without writing its result (it crashed, was killed or
cancelled); without an answer it waits for that job forever. This answers the same question from the
controller, which keeps finished jobs for MinJobAge (300 s). Installed as `sacct` on the PATH of the tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-o", "--format", default="JobID,State,NodeList")
    parser.add_argument("--parsable2", action="store_true")
    parser.add_argument("-j", "--jobs", action="append", default=[])
    args = parser.parse_args(argv)
    fields = args.format.split(",")
    print("|".join(fields))
    for job in args.jobs:
        out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
        for line in out.splitlines():
            kv = dict(item.split("=", 1) for item in line.split() if "=" in item)
            task = kv.get("ArrayTaskId")
            job_id = f"{kv['ArrayJobId']}_{task}" if task not in (None, "N/A") else kv["JobId"]
            values = {"JobID": job_id, "State": kv.get("JobState", ""), "NodeList": kv.get("NodeList", "")}
            print("|".join(values.get(f, "") for f in fields))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
