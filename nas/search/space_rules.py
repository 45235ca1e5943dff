"""What a sampler that proposes whole points (`sampler=ehvi`) needs to know of a search space: which parameters a
point uses (a conditional one only where its condition holds), whether that depends on the point at all, and
every parameter the space may ask a trial for, with its distribution."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from nas.space import FixedSuggester, RandomSuggester, Space, SpecRejected, TemplateError

# Parameter sets `active_params` remembers (a trained space is not finite; a sampler asks ~2,000 a trial).
MEMO_SIZE = 100_000


def active_params(space: Space) -> Callable[[Mapping[str, Any]], dict[str, Any] | None]:
    """params (a full assignment: a value for every parameter the space might read) -> those the space reads
    from them (a conditional parameter only where its condition holds), or None where they are no point of it
    (a value missing or out of range, a derivation that rejects them); memoised."""

    @functools.lru_cache(maxsize=MEMO_SIZE)
    def used(key: str) -> dict[str, Any] | None:
        try:
            return space.sample(FixedSuggester(json.loads(key))).params
        except (SpecRejected, TemplateError, ValueError, KeyError):
            return None

    return lambda params: used(json.dumps(dict(params), sort_keys=True))


def conditional(space: Space) -> bool:
    """Whether which parameters a point uses depends on its values (a `when`, a stage count that is a parameter
    or derived); if not, every point uses every parameter."""
    staged = any(p.per_stage for p in space.params.values())
    return any(p.when for p in space.params.values()) or (
        staged and (isinstance(space.stages, str) or space.derive is not None)
    )


def space_distributions(space: Space, draws: int = 256) -> dict[str, BaseDistribution]:
    """Every parameter `space` may ask a trial for, with the distribution it asks with: recorded over `draws`
    seeded random draws of the space (a conditional parameter appears wherever a draw meets its condition),
    so a sampler can propose one that no trial has used yet."""
    found: dict[str, BaseDistribution] = {}
    for seed in range(draws):
        recorder = _Recorder(RandomSuggester(seed), found)
        try:
            space.sample(recorder)
        except (SpecRejected, TemplateError, ValueError, KeyError):
            pass  # the parameters drawn before the rejection are recorded
    return found


class _Recorder:
    """A suggester that draws through `inner` and records each parameter's Optuna distribution."""

    def __init__(self, inner: RandomSuggester, found: dict[str, BaseDistribution]) -> None:
        self.inner, self.found = inner, found

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self.found[name] = IntDistribution(low, high, step=step, log=log)
        return self.inner.suggest_int(name, low, high, step=step, log=log)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self.found[name] = FloatDistribution(low, high, step=step, log=log)
        return self.inner.suggest_float(name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.found[name] = CategoricalDistribution(list(choices))
        return self.inner.suggest_categorical(name, choices)
