"""A space's cell `dag` (nas.space.dag): dead edges are the ones a model of the space may ignore."""

from __future__ import annotations

import copy
import itertools

import pytest

from nas.search.ehvi import KnownLatencyEHVI
from nas.search.study import make_sampler
from nas.space import Space, load_space
from nas.tabular import nb201

CONV, SKIP, NONE = "nor_conv_3x3", "skip_connect", "none"


def cell(*ops: str) -> dict[str, str]:
    return {f"edge{k}": op for k, op in enumerate(ops)}


def test_edges_that_cannot_reach_the_output_are_cut():
    dag = load_space("nb201").dag
    # node 2 feeds nothing (edge5 = none): its two input edges still run but change nothing
    assert dag.canonical(cell(CONV, CONV, SKIP, SKIP, CONV, NONE)) == cell(CONV, NONE, NONE, SKIP, CONV, NONE)
    # node 1 is never reached (edge0 = none): its two output edges carry zeros
    assert dag.canonical(cell(NONE, CONV, SKIP, SKIP, CONV, CONV)) == cell(NONE, CONV, NONE, SKIP, NONE, CONV)
    # no path from input to output: every edge is dead
    assert dag.canonical(cell(CONV, CONV, CONV, NONE, NONE, NONE)) == cell(*[NONE] * 6)
    live = cell(CONV, SKIP, CONV, NONE, SKIP, CONV)  # every edge on a path input -> output
    assert dag.canonical(live) == live


def test_nb201_folds_into_its_functions():
    # 15,625 cells compute 9,445 different functions once dead edges are cut (none of them isomorphisms)
    dag = load_space("nb201").dag
    # the space's edges are the benchmark's (nas.tabular.nb201.EDGES: (to, from) in cell-string order)
    assert list(dag.edges.values()) == [(i, j) for j, i in nb201.EDGES]
    forms = {
        tuple(dag.canonical(cell(*(nb201.OPS[int(c)] for c in code))).values())
        for code in ("".join(p) for p in itertools.product("01234", repeat=6))
    }
    assert len(forms) == 9445


def test_an_edge_the_space_pins_is_read_from_the_space():
    raw = copy.deepcopy(load_space("nb201").raw)
    raw["params"]["edge5"] = {"type": "fixed", "value": NONE}
    dag = Space.from_dict(raw).dag
    params = {k: v for k, v in cell(CONV, CONV, SKIP, SKIP, CONV, NONE).items() if k != "edge5"}
    assert dag.canonical(params) == {
        k: v for k, v in cell(CONV, NONE, NONE, SKIP, CONV, NONE).items() if k != "edge5"
    }


@pytest.mark.parametrize(
    ("dag", "message"),
    [
        ({"edges": {"edge0": [0, 1]}}, r"dag is \{none: <op>, edges"),
        ({"none": NONE, "edges": {"edge9": [0, 1]}}, r"dag edge 'edge9' must be a shared categorical"),
        ({"none": NONE, "edges": {"edge0": [1, 0]}}, r"dag edge 'edge0' joins \[from, to\] nodes"),
        ({"none": NONE, "edges": {}}, r"no edges"),
    ],
)
def test_a_bad_dag_is_refused_with_a_message(dag, message):
    raw = copy.deepcopy(load_space("nb201").raw)
    raw["dag"] = dag
    with pytest.raises(ValueError, match=message):
        Space.from_dict(raw)


def test_the_ehvi_sampler_models_the_spaces_cell_unless_told_not_to():
    dag = load_space("nb201").dag
    cfg = {"name": "ehvi"}
    assert make_sampler(cfg, seed=0, dag=dag).canonical == dag.canonical
    assert make_sampler({**cfg, "cell": False}, seed=0, dag=dag).canonical is None
    assert make_sampler(cfg, seed=0).canonical is None  # a space without a dag
    assert isinstance(make_sampler(cfg, seed=0, dag=dag), KnownLatencyEHVI)
    with pytest.raises(ValueError, match="sampler.cell is true or false"):
        make_sampler({**cfg, "cell": "yes"}, seed=0, dag=dag)
    with pytest.raises(ValueError, match=r"unknown options \['cell'\]"):  # an option of ehvi's only
        make_sampler({"name": "tpe", "cell": True}, seed=0, dag=dag)
