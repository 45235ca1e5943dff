"""Composition: every axis option and every suite row composes and builds at small scale; a variant differs
from the baseline by exactly its overrides; bad input gives one clear message before any compute."""

import csv
import dataclasses
import re

import pytest
import yaml
from omegaconf import OmegaConf

from experiments.ablation.config import (
    AXES,
    OPTIONS,
    RUN_AXES,
    SHARED_SECTIONS,
    VARIANT_SECTIONS,
    axis_options,
    check_overrides,
    composer,
    config_key,
    expand_sweep,
    plain,
    run_config,
    shadowed_axes,
    split_overrides,
    validate_options,
)
from experiments.ablation.runner import plan_arm
from experiments.ablation.suite import REFERENCE_ENV, check_suite, plan_suite, reference_path
from nas.config import CONF_DIR

# Small and RGB, so the colour-space variants apply and get built too (synthetic data is generated at 32 px).
SHARED = ["data=synthetic", "data.train_size=64", "data.test_size=32", "logger=none", "latency.mode=macs"]


@pytest.fixture(scope="module")
def compose():
    """Hydra's compose API on conf/ (memoised by `composer`: each override list is composed once here)."""
    with composer() as fn:
        yield fn


@pytest.fixture(scope="module")
def suite(compose):
    return plain(compose([*SHARED, "suite=mishkin"]))["suite"]


@pytest.fixture(scope="module")
def plan():
    """plan_arm (compose + validate + build + count), once per (shared, overrides, requires)."""
    memo = {}

    def planned(compose_, shared, overrides, label=None, requires=None):
        key = (tuple(shared), tuple(overrides), repr(requires))
        if key not in memo:
            memo[key] = plan_arm(compose_, shared, overrides, requires=requires)
        return dataclasses.replace(memo[key], label=label or memo[key].label)

    return planned


def every_variant(suite):
    """Each axis option on its own, then every suite row's override list."""
    out = [[f"{axis}={opt}"] for axis in AXES for opt in axis_options(axis)]
    out += [list(r["overrides"]) for r in suite["rows"] if r.get("overrides")]
    seen, unique = set(), []
    for o in out:
        if tuple(o) not in seen:
            seen.add(tuple(o))
            unique.append(o)
    return unique


def flat(obj, prefix=""):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(flat(v, f"{prefix}{i}."))
        return out or {prefix[:-1]: []}
    return {prefix[:-1]: obj}


REF = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def related(a, b):
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def explained_paths(baseline_raw, overrides):
    """Paths an override may change: its own node, what a _global_ option file writes, and everything that
    interpolates any of those (transitively)."""
    roots = set()
    for o in overrides:
        key, value = o.split("=", 1)
        roots.add(key)
        if key in AXES:
            text = (CONF_DIR / key / f"{value}.yaml").read_text()
            if "@package _global_" in text.splitlines()[0]:
                roots |= set(flat(yaml.safe_load(text)))
    raw = flat(baseline_raw)
    changed = True
    while changed:
        changed = False
        for path, value in raw.items():
            if isinstance(value, str) and path not in roots:
                if any(related(ref, r) for ref in REF.findall(value) for r in roots):
                    roots.add(path)
                    changed = True
    return roots


def test_variants_differ_from_the_baseline_by_exactly_their_overrides(compose, suite):
    base_cfg = compose(SHARED)
    base_plain = plain(base_cfg)
    base, base_key = flat(base_plain), config_key(run_config(base_plain))
    base_raw = OmegaConf.to_container(base_cfg, resolve=False)
    for overrides in every_variant(suite):
        var_plain = plain(compose([*SHARED, *overrides]))
        var = flat(var_plain)
        diff = {p for p in set(base) | set(var) if base.get(p, "<absent>") != var.get(p, "<absent>")}
        allowed = explained_paths(base_raw, overrides)
        unexplained = {p for p in diff if not any(related(p, a) for a in allowed)}
        assert not unexplained, f"{overrides} changed {sorted(unexplained)} beyond its overrides"
        is_default = all(base_plain.get(o.split("=")[0]) == var_plain.get(o.split("=")[0]) for o in overrides)
        assert diff or is_default, f"{overrides} changed nothing"
        # the cache key changes exactly when something beyond the axes' own nodes (what training reads) changed
        run_changed = any(p.split(".")[0] not in AXES or p.split(".")[0] in RUN_AXES for p in diff)
        assert (config_key(run_config(var_plain)) != base_key) == run_changed, overrides


def test_the_reference_table_is_read_from_the_shared_folder_and_a_missing_one_says_where(
    suite, tmp_path, monkeypatch
):
    assert not (CONF_DIR / "suite" / suite["reference"]).exists()  # not copied into the package
    monkeypatch.setenv(REFERENCE_ENV, str(tmp_path))
    with pytest.raises(
        ValueError, match=rf"{tmp_path}/mishkin2016_caffenet128.csv not found.*{REFERENCE_ENV}"
    ):
        check_suite(suite)
    monkeypatch.delenv(REFERENCE_ENV)
    assert reference_path(suite).parent.parts[-2:] == ("shared", "reference")


def test_every_axis_option_and_suite_row_composes_and_builds_at_small_scale(compose, suite, plan):
    ref = check_suite(suite)
    with open(
        reference_path(suite), newline=""
    ) as f:  # read from ../shared/reference (or $NAS_REFERENCE_DIR)
        table = {(r["axis"], r["variant"]) for r in csv.DictReader(f)}
    assert {(r["axis"], str(r["variant"])) for r in suite["rows"]} == table == set(ref)
    base = plan(compose, SHARED, [])
    assert base.runnable and base.params > 0 and base.macs > 0
    for overrides in every_variant(suite):
        arm = plan(compose, SHARED, overrides)  # composes, validates data/optim, builds the model, counts it
        assert arm.runnable, (overrides, arm.skip)
        assert arm.params > 0 and arm.macs > 0, overrides
    arms = plan_suite(compose, SHARED, suite, plan=plan)
    assert len(arms) == len(suite["rows"])
    by_label = {a.label: a for a in arms}
    # every paper-baseline row is our baseline; rows meaning the same thing share one config
    assert by_label["pooling/max"].key == by_label["width/x1"].key == base.key
    assert by_label["bn_placement/after_relu"].key == by_label["nonlinearity_bn_after/relu"].key
    assert [a.label for a in arms if a.skip] == [
        "colorspace/ycrcb", "colorspace/hsv", "input_size_vs_stride/96_k7_s3", "input_size_vs_stride/64_k5_s2",
        "input_size_vs_stride/32_k3_s1",
    ]  # fmt: skip
    assert by_label["colorspace/ycrcb"].skip.startswith("not reproduced")
    assert by_label["nonlinearity_no_bn/maxout_same_width"].macs > 1.9 * base.macs
    assert by_label["width/x0.5"].params < 0.3 * base.params


def test_colour_transforms_do_not_apply_to_grey_data(compose, suite, plan):
    grey = [*SHARED, "data.channels=1"]
    arm = plan(compose, grey, ["colorspace=learned_10_3_vlrelu"])
    assert not arm.runnable and "not applicable" in arm.skip and "channels" in arm.skip
    assert plan(compose, grey, ["colorspace=input_bn"]).runnable  # input BatchNorm works on grey too
    colour_rows = {**suite, "rows": [r for r in suite["rows"] if r["axis"] == "colorspace"]}
    arms = {a.label: a for a in plan_suite(compose, grey, colour_rows, plan=plan)}
    assert "not applicable" in arms["colorspace/learned_16_3"].skip
    assert "not applicable" in arms["colorspace/grayscale"].skip  # the data is grey already
    assert arms["colorspace/rgb_batchnorm"].runnable


def test_top_level_keys_are_axes_options_or_sections(compose):
    keys = set(compose(SHARED))
    assert keys <= set(AXES) | set(OPTIONS) | set(SHARED_SECTIONS) | set(VARIANT_SECTIONS)
    assert set(AXES) <= keys


def test_split_overrides():
    shared, variant = split_overrides(
        [
            "pooling=avg",
            "seeds=5",
            "data=mnist",
            "data.fraction=0.5",
            "optim.nesterov=true",
            "logger=none",
            "epochs=2",
            "+model.small_stem=[]",
            "trainer.max_epochs=3",
        ]  # fmt: skip
    )
    assert shared == [
        "seeds=5",
        "data=mnist",
        "data.fraction=0.5",
        "logger=none",
        "epochs=2",
        "trainer.max_epochs=3",
    ]
    assert variant == ["pooling=avg", "optim.nesterov=true", "+model.small_stem=[]"]


def test_unknown_axis_or_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"(?s)unknown axis or option 'poolin'.*axes: pooling, activation"):
        check_overrides(["poolin=avg"])
    with pytest.raises(ValueError, match=r"unknown pooling variant 'avgmax'; valid: .*avg_max"):
        check_overrides(["pooling=avgmax"])
    with pytest.raises(ValueError, match=r"unknown activation variant 'relu7'"):
        check_overrides(["activation=relu,relu7"])  # a sweep value
    with pytest.raises(ValueError, match="unknown suite variant"):
        check_overrides(["suite=mishkn"])
    check_overrides(["pooling=glob(*)", "optim.lr=0.1", "seeds=4", "data=mnist", "+model.x=1"])


def test_expand_sweep_is_the_cartesian_product():
    jobs = expand_sweep(["pooling=max,avg", "seeds=2", "width=x1,x2"])
    assert jobs == [
        ["pooling=max", "seeds=2", "width=x1"],
        ["pooling=max", "seeds=2", "width=x2"],
        ["pooling=avg", "seeds=2", "width=x1"],
        ["pooling=avg", "seeds=2", "width=x2"],
    ]
    assert len(expand_sweep(["pooling=glob(*)"])) == len(axis_options("pooling"))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("seeds", 1, "at least 2 seeds"),
        ("seeds", 2.5, "at least 2 seeds"),
        ("epochs", 0, "epochs"),
        ("subset", 0.0, "subset"),
        ("subset", 1.5, "subset"),
        ("metric", "acc", "valid metrics"),
        ("confidence", 95, "confidence"),
    ],
)
def test_bad_options_are_refused_before_compute(compose, key, value, message):
    cfg = plain(compose(SHARED))
    validate_options(cfg)
    with pytest.raises(ValueError, match=message):
        validate_options({**cfg, key: value})


def test_shared_overrides_that_silence_an_axis_are_flagged(compose):
    raw = OmegaConf.to_container(compose([]), resolve=False)
    shared = ["data=cifar10", "data.batch_size=32", "data.image_size=16", "epochs=2", "data.augment=false"]
    warnings = shadowed_axes(raw, shared)
    assert len(warnings) == 2
    assert "data.batch_size=32 replaces data.batch_size = ${batch.size}: the batch axis" in warnings[0]
    assert "data.image_size=16 overrides data.image_size, which options of the input axis set" in warnings[1]
