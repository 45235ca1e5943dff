"""The spec template of a space, rendered with drawn parameter values into a plain spec.

Template syntax (inside any value of the `spec:` mapping of a space YAML):

- `$name`: the value of parameter `name` (None when its `when` condition is false; a key whose value
  renders to None is dropped, so the block falls back to its default). A per-stage parameter gives the
  value of the current stage inside `for_each_stage`, the list of all stages outside it.
- `= <expression>`: Python-style arithmetic on parameter names (`= width * 4`, `= max(16, stem_width // 2)`,
  `= 2 if stage > 0 else 1`); functions: min, max, round, int, float, abs, make_divisible.
- `{by_stage: [1, 2, 2, 2]}`: the element of the current stage.
- In a list, `{for_each_stage: <entry or list of entries>}` repeats its entries once per stage, in order,
  with `stage` (0-based) and `stages` (the count) defined.
- A list entry with `if: <expression or $name>` is dropped when it is false; a layer entry whose `repeat`
  renders to 0 is dropped too (a stage of depth 0).

`$`-references avoid OmegaConf's `${...}` syntax on purpose: a space is composed by Hydra, which would
resolve `${...}` against the whole config.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from typing import Any

FOR_EACH = "for_each_stage"
BY_STAGE = "by_stage"
IF = "if"


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor` (never below `min_value` or 90 % of `value`)."""
    min_value = divisor if min_value is None else min_value
    out = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


FUNCTIONS = {
    "min": min,
    "max": max,
    "round": round,
    "int": int,
    "float": float,
    "abs": abs,
    "make_divisible": make_divisible,
    "ceil": math.ceil,
    "floor": math.floor,
}
_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


class TemplateError(ValueError):
    """A space template that cannot be rendered (unknown name, bad expression)."""


def evaluate(expr: str, names: Mapping[str, Any]) -> Any:
    """Evaluate an arithmetic / comparison expression over `names` (no attribute access, no other calls)."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise TemplateError(f"cannot parse expression {expr!r}: {e.msg}") from None

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                return FUNCTIONS[node.id]
            if node.id not in names:
                raise TemplateError(
                    f"expression {expr!r}: unknown name {node.id!r}; known names: {', '.join(sorted(names))}"
                )
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
        if isinstance(node, ast.BoolOp):
            vals = [ev(v) for v in node.values]
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = ev(right_node)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.List | ast.Tuple):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Subscript):
            return ev(node.value)[ev(node.slice)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
            return FUNCTIONS[node.func.id](
                *[ev(a) for a in node.args], **{k.arg: ev(k.value) for k in node.keywords}
            )
        raise TemplateError(
            f"expression {expr!r}: {type(node).__name__} is not allowed (arithmetic, comparisons, "
            f"if-else and {', '.join(FUNCTIONS)} only)"
        )

    try:
        return ev(tree)
    except TemplateError:
        raise
    except (TypeError, ZeroDivisionError, IndexError, KeyError, ValueError) as e:
        shown = {k: names[k] for k in sorted(names) if k in expr}
        raise TemplateError(f"expression {expr!r} failed ({e}) with {shown}") from None


class Renderer:
    """Renders a template with parameter values; per-stage values are lists indexed by `stage`."""

    def __init__(self, values: Mapping[str, Any], per_stage: set[str], stages: int) -> None:
        self.values = dict(values)
        self.per_stage = set(per_stage)
        self.stages = stages

    def names(self, stage: int | None) -> dict[str, Any]:
        """The names visible to `$` references and expressions (at `stage`, or outside any stage)."""
        out = {"stages": self.stages}
        for k, v in self.values.items():
            out[k] = v[stage] if stage is not None and k in self.per_stage else v
        if stage is not None:
            out["stage"] = stage
        return out

    def render(self, node: Any, stage: int | None = None) -> Any:
        if isinstance(node, str):
            return self._scalar(node, stage)
        if isinstance(node, Mapping):
            if BY_STAGE in node:
                return self._by_stage(node, stage)
            if FOR_EACH in node:
                raise TemplateError(
                    f"`{FOR_EACH}` must be an item of a list (e.g. of `stages`), got it in {dict(node)}"
                )
            out = {}
            for k, v in node.items():
                r = self.render(v, stage)
                if r is not None:
                    out[k] = r
            return out
        if isinstance(node, list | tuple):
            return self._list(node, stage)
        return node

    def _scalar(self, text: str, stage: int | None) -> Any:
        if text.startswith("$"):
            names = self.names(stage)
            key = text[1:]
            if key not in names:
                raise TemplateError(f"unknown reference {text!r}; known names: {', '.join(sorted(names))}")
            return names[key]
        if text.startswith("="):
            return evaluate(text[1:], self.names(stage))
        return text

    def _by_stage(self, node: Mapping[str, Any], stage: int | None) -> Any:
        if len(node) != 1:
            raise TemplateError(f"`{BY_STAGE}` takes a list and nothing else, got {dict(node)}")
        if stage is None:
            raise TemplateError(f"`{BY_STAGE}` is only meaningful inside `{FOR_EACH}`, got {dict(node)}")
        values = node[BY_STAGE]
        if not isinstance(values, list | tuple) or stage >= len(values):
            raise TemplateError(
                f"`{BY_STAGE}: {values}` has no value for stage {stage} ({self.stages} stages)"
            )
        return self.render(values[stage], stage)

    def _list(self, items: Any, stage: int | None) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, Mapping) and FOR_EACH in item:
                if stage is not None:
                    raise TemplateError(f"`{FOR_EACH}` cannot be nested")
                if len(item) != 1:
                    raise TemplateError(
                        f"`{FOR_EACH}` must be the only key of its list item, got {sorted(item)}"
                    )
                body = item[FOR_EACH]
                body = body if isinstance(body, list | tuple) else [body]
                for i in range(self.stages):
                    out.extend(self._list(body, i))
                continue
            if isinstance(item, Mapping) and IF in item:
                cond = item[IF]
                cond = self._scalar(cond, stage) if isinstance(cond, str) else cond
                if not cond:
                    continue
                item = {k: v for k, v in item.items() if k != IF}
            r = self.render(item, stage)
            if r is None or (isinstance(r, dict) and "block" in r and r.get("repeat", 1) == 0):
                continue
            out.append(r)
        return out
