"""A search whose data cannot hold its validation split is refused before its first trial, not trial by trial."""

from __future__ import annotations

import pytest

from nas.data import validate_data_config
from nas.search.plan import SearchPlan


def test_a_search_whose_data_cannot_hold_its_validation_split_is_refused(search_cfg):
    # As `python -m nas.search +space=... data=synthetic data.train_size=400` with the search's val_size 2000.
    cfg = search_cfg("data.train_size=40", "data.val_size=64")
    with pytest.raises(
        ValueError, match=r"validation split \(64 images\) would leave no training images out of 40"
    ):
        SearchPlan.from_cfg(cfg)


@pytest.mark.parametrize(("val", "refused"), [({"val_size": 400}, True), ({"val_fraction": 0.5}, False)])
def test_the_split_is_checked_from_the_config_alone(val, refused):
    cfg = {"name": "synthetic", "train_size": 400, **val}
    if refused:
        with pytest.raises(ValueError, match=r"lower data\.val_size or data\.val_fraction"):
            validate_data_config(cfg)
    else:
        validate_data_config(cfg)
