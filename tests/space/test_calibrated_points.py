"""A space that grows keeps the architectures its calibration ranked: each is still a point rendering to its spec."""

from __future__ import annotations

import json
from typing import Any

from nas.search.calibration import calibration_file
from nas.space import load_space

STAGE_BLOCKS = ("separable", "inverted_residual", "xception")


def separable_like_params(spec: dict[str, Any]) -> dict[str, Any]:
    """separable_like's parameters of a spec it rendered (the map back from a network to the space)."""
    stages = [s for s in spec["stages"] if s["block"] in STAGE_BLOCKS]
    last = [s["channels"] for s in spec["stages"] if s["block"] == "conv"]
    first = stages[0]
    params = {
        "n_stages": len(stages), "block": first["block"], "kernel": first["kernel"], "act": spec["act"],
        "stem_width": spec["small_stem"][0]["channels"], "last_width": last[0] if last else 0,
    }  # fmt: skip
    if first["block"] == "inverted_residual":
        ratio = stages[-1]["expand_ratio"]  # the shared ratio: only the first stage may expand by 1
        params.update(
            expand_ratio=ratio, first_expand=first["expand_ratio"] == ratio, se_ratio=first["se_ratio"]
        )
    if first["block"] == "xception":
        params["reps"] = first["reps"]
    for i, stage in enumerate(stages):
        params[f"width_{i}"], params[f"depth_{i}"] = stage["channels"], stage["repeat"]
    return params


def test_separable_like_still_holds_the_architectures_its_calibration_ranked():
    # The space grew a seven-stage layout, wider and deeper stages, relu6 and a last 1x1 conv to hold the
    # MobileNets; its four-stage networks, which the calibration's Spearman rho is measured over, are unchanged.
    space = load_space("separable_like")
    archs = json.loads(calibration_file("separable_like", "fashion_mnist").read_text())["archs"]
    assert len(archs) >= 12
    for arch in archs:
        assert space.compile(separable_like_params(arch["spec"])) == arch["spec"]


def test_the_map_back_reads_a_seven_stage_mobilenet_v2():
    # The helper above must read every part of the grown space, or the calibration test would pass vacuously.
    space = load_space("separable_like")
    params = space.references["mobilenet_v2_050"]
    spec = space.compile(params)
    assert separable_like_params(spec) == params
    assert [s.get("expand_ratio") for s in spec["stages"]] == [1, 6, 6, 6, 6, 6, 6, None]
