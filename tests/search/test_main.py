"""The command line: `python -m nas.search` without a space lists the spaces."""

from __future__ import annotations

from nas.search.__main__ import main

REQUIRED = {"resnet_like", "resnext_like", "inception_like", "separable_like", "densenet_like", "regnet"}


def test_search_without_a_space_lists_the_spaces(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED)
