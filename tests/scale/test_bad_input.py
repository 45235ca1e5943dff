"""Bad input the search tests do not already cover, each refused with one clear message before compute:
an unknown block, widths not divisible by the groups, a space whose networks shrink below 1x1, a storage
server that accepts connections but never answers (no hang), a PostgreSQL URL in the wrong variable.

(Covered in tests/search: unknown space, sampler, pruner and storage names; ranges with low > high; a refused
port; an existing study with a different space or objectives.)
"""

from __future__ import annotations

import copy
import socket
import time

import pytest

from nas.search.plan import SearchPlan
from nas.search.storage import make_storage
from tests.scale.conftest import SPACE


def space(change) -> dict:
    raw = copy.deepcopy(SPACE)
    change(raw)
    return raw


STAGE = ("spec", "stages", 0, "for_each_stage")


def stage(raw: dict) -> dict:
    return raw["spec"]["stages"][0]["for_each_stage"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: stage(r).update(block="resnet_basic"),
            r"unknown block 'resnet_basic'; valid blocks: .*conv",
        ),
        (
            lambda r: (stage(r).update(groups=8), r["params"]["width"].update(low=12, high=12)),
            r"conv with 8 groups needs in \(4\) and out \(12\) channels divisible by the group count",
        ),
        (
            lambda r: (stage(r).update(kernel=5, padding=0), r.update(stages=3)),
            r"none of 20 random draws can run on 16 px inputs .*cannot run on a .* input.*larger fidelity.image_size",
        ),
    ],
    ids=["unknown block", "groups", "shrinks below 1x1"],
)
def test_an_impossible_space_is_refused_before_compute(search_cfg, change, message):
    with pytest.raises((ValueError, KeyError), match=message):
        SearchPlan.from_cfg(search_cfg(space=space(change)))


def test_a_silent_storage_server_fails_fast_instead_of_hanging(tmp_path):
    # Accepts TCP connections (the kernel's backlog) but never speaks: without a timeout the client waits forever.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        url = f"postgresql+psycopg://user:pw@127.0.0.1:{port}/db"
        start = time.monotonic()
        with pytest.raises(
            ValueError, match=rf"cannot open storage postgresql\+psycopg://user:\*\*\*@127.0.0.1:{port}/db"
        ):
            make_storage({"name": "url", "url": url, "connect_timeout": 2}, tmp_path)
        assert time.monotonic() - start < 15


def test_the_url_variable_must_hold_a_postgresql_url(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_STORAGE_URL", "mysql://user:pw@host/db")
    with pytest.raises(
        ValueError,
        match=r"\$NAS_STORAGE_URL must be a PostgreSQL URL \(postgresql\+psycopg://.*\), got 'mysql://user:\*\*\*@host/db'",
    ):
        make_storage({"name": "postgres"}, tmp_path)
