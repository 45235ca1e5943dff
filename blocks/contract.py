"""A spec checked against the block contract before anything is built: one message naming the bad field.

The contract: every layer entry names a registered `block`; `channels` (output channels, or omitted for the
block's own rule), `stride` and `repeat` are positive integers; `act` and `norm` are registered names; every
other key is a parameter the block's constructor declares, of the type its annotation gives (an `int` is an
integer, never a bool or 2.5), and the structural ones (kernel, groups, dilation, depth counts) are positive.
The network-wide keys (`in_channels`, `num_classes`, `input_size`, `width_mult`, `act`, `norm`, `head`) are
checked likewise. What only the block can judge (groups that divide its channels, a pooling that cannot sit
inside it) it raises itself; the assembler prefixes that message with the layer's path.

Without this, a typo trains: `channels: -4` was clamped to one channel and trained to chance.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from blocks.layers import ACTS, NORMS
from blocks.registry import BLOCKS, HEADS

RESERVED = ("block", "channels", "stride", "repeat", "act", "norm")
SPEC_KEYS = (
    "name",
    "in_channels",
    "num_classes",
    "input_size",
    "act",
    "norm",
    "width_mult",
    "stem",
    "small_stem",
    "stages",
    "head",
    "family",
)
LAYER_SECTIONS = ("stem", "small_stem", "stages")
# Block parameters that count or size something: 0 or less builds nothing (or divides by zero).
POSITIVE = (
    "kernel",
    "kernel5",
    "groups",
    "cardinality",
    "dilation",
    "columns",
    "convs",
    "layers",
    "growth",
    "reps",
)
NON_NEGATIVE = ("padding",)
# What a head is called with besides its own parameters (the assembler supplies them).
HEAD_SUPPLIED = ("in_channels", "num_classes", "feature_size")


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _field(where: str, key: str) -> str:
    """`resnet20: stages.0` + `channels` -> `resnet20: stages.0.channels`; `resnet20:` + `width_mult` ->
    `resnet20: width_mult`."""
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def _refuse(where: str, key: str, value: Any, rule: str) -> typing.NoReturn:
    raise ValueError(f"{_field(where, key)}={value!r} is invalid: {rule}")


def _positive_int(where: str, key: str, value: Any, what: str) -> None:
    if not is_int(value) or value < 1:
        _refuse(where, key, value, f"{what} must be a positive integer")


def _name(where: str, key: str, value: Any, registry: Any) -> None:
    """A registered name (KeyError listing the valid ones, as the registry's own look-up does)."""
    if not isinstance(value, str) or value not in registry:
        raise KeyError(
            f"{_field(where, key)}: unknown {registry.kind} {value!r}; valid {registry.kind}s: "
            + ", ".join(registry.names())
        )


def check_spec(spec: Mapping[str, Any]) -> None:
    """Check a whole spec (ValueError / KeyError naming the field and the valid choices)."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"a model spec is a mapping of keys to values, got {type(spec).__name__}")
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown spec keys {sorted(unknown)}; valid keys: {', '.join(SPEC_KEYS)}")
    where = f"{spec.get('name') or 'spec'}:"
    for key, what in (("in_channels", "input channels"), ("input_size", "the input side in pixels")):
        if key in spec:
            _positive_int(where, key, spec[key], what)
    if "num_classes" not in spec:
        raise ValueError(f"{where} the spec has no num_classes (the classifier's output size)")
    _positive_int(where, "num_classes", spec["num_classes"], "the class count")
    wm = spec.get("width_mult", 1.0)
    if not isinstance(wm, numbers.Real) or isinstance(wm, bool) or not wm > 0:
        _refuse(where, "width_mult", wm, "the width multiplier must be a positive number")
    for key, registry in (("act", ACTS), ("norm", NORMS)):
        if key in spec:
            _name(where, key, spec[key], registry)
    for section in LAYER_SECTIONS:
        entries = spec.get(section)
        if entries is None:
            continue
        if isinstance(entries, (str, Mapping)) or not isinstance(entries, Sequence):
            _refuse(where, section, entries, "a list of layer entries, each {block: <name>, ...}")
        for i, entry in enumerate(entries):
            check_entry(entry, f"{where} {section}.{i}")
    check_head(spec.get("head"), f"{where} head")


def check_entry(entry: Any, where: str) -> None:
    """Check one layer entry against the contract; `where` names it in messages (e.g. "resnet20: stages.0")."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}={entry!r} is invalid: a layer entry is a mapping {{block: <name>, ...}}")
    if "block" not in entry:
        raise ValueError(f"{where} has no 'block' key; valid blocks: {', '.join(BLOCKS.names())}")
    _name(where, "block", entry["block"], BLOCKS)
    if entry.get("channels") is not None:
        _positive_int(where, "channels", entry["channels"], "a layer's output channels")
    for key, what in (("stride", "the stride"), ("repeat", "the number of repeats")):
        if key in entry:
            _positive_int(where, key, entry[key], what)
    for key, registry in (("act", ACTS), ("norm", NORMS)):
        if key in entry:
            _name(where, key, entry[key], registry)
    params = {k: v for k, v in entry.items() if k not in RESERVED}
    _check_params(
        BLOCKS.get(entry["block"]),
        params,
        where,
        f"block {entry['block']!r}",
        skip=("in_channels", "out_channels"),
    )


def check_head(head: Any, where: str) -> None:
    """Check the `head` section: a registered `type` and the parameters its constructor declares."""
    if head is None:
        return
    if not isinstance(head, Mapping):
        raise ValueError(f"{where}={head!r} is invalid: the head is a mapping {{type: <name>, ...}}")
    head_type = head.get("type", "linear")
    _name(where, "type", head_type, HEADS)
    if "act" in head:
        _name(where, "act", head["act"], ACTS)
    params = {k: v for k, v in head.items() if k not in ("type", "act")}
    _check_params(HEADS.get(head_type), params, where, f"head {head_type!r}", skip=HEAD_SUPPLIED)


def _check_params(
    ctor: Any, params: Mapping[str, Any], where: str, label: str, *, skip: tuple[str, ...]
) -> None:
    """Each parameter declared by `ctor`, of its annotated type, in range for the names that have one."""
    declared = _declared(ctor)
    if declared is not None:
        own = {k: v for k, v in declared.items() if k not in (*skip, "self", "act", "norm", "stride")}
        unknown = sorted(set(params) - set(own))
        if unknown:
            raise ValueError(
                f"{_field(where, unknown[0])}: {label} has no parameter {unknown[0]!r}; its parameters: "
                + (", ".join(own) or "none")
            )
        for key, value in params.items():
            if not _fits(value, own[key]):
                _refuse(where, key, value, f"it must be {_describe(own[key])}")
    for key, value in params.items():
        ints = value if isinstance(value, (list, tuple)) else [value]
        if key in POSITIVE and not all(is_int(v) and v >= 1 for v in ints):
            _refuse(where, key, value, f"{key} must be a positive integer")
        if key in NON_NEGATIVE and not all(not is_int(v) or v >= 0 for v in ints):
            _refuse(where, key, value, f"{key} must be >= 0")


@functools.cache
def _declared(ctor: Any) -> dict[str, Any] | None:
    """{parameter: annotation} of a block or head constructor; None when it takes **kwargs (anything goes)."""
    init = ctor.__init__ if inspect.isclass(ctor) else ctor
    params = inspect.signature(init).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    try:
        hints = typing.get_type_hints(init)
    except (NameError, TypeError):  # an annotation that does not resolve: check names only
        hints = {}
    return {name: hints.get(name, Any) for name in params}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a plain config value (YAML: lists for tuples) matches a constructor annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, h) for v, h in zip(value, args, strict=True))
        return not args or all(_fits(v, args[0]) for v in value)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, Mapping)
    return True  # a type the block checks itself


def _describe(hint: Any) -> str:
    """An annotation in words: `int | None` -> "an integer or null"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in args)
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a name", type(None): "null"}
    if hint in words:
        return words[hint]
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        return f"a list of {_describe(inner[0]).split(' ', 1)[-1]}s" if inner else "a list"
    return getattr(hint, "__name__", str(hint))
