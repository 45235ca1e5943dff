"""A declared search space: its file parsed and checked, sampled into specs, and the spaces of conf/space/.

The file format is nas.space's docstring; the parameters are nas.space.params, the template nas.space.template,
the derived per-stage lists nas.space.derive, a cell's edges nas.space.dag, the bounds nas.space.constraints.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.space.constraints import Constraints
from nas.space.dag import CellDag
from nas.space.derive import DERIVATIONS, SpecRejected, get_derivation
from nas.space.params import FixedSuggester, Param, RandomSuggester, Suggester
from nas.space.template import Renderer, TemplateError

SPACE_KEYS = (
    "name", "family", "description", "stages", "params", "derive", "constraints", "fidelity", "dag",
    "references", "spec",
)  # fmt: skip
# `fidelity`: the space's default search fidelity (conf/search.yaml reads it; a command line's fidelity.* wins)
# `dag`: which parameters choose a cell's edge ops (nas.space.dag; sampler=ehvi models the function they compute)
# `references`: the family's textbook networks the space holds, {conf/model name: the space's parameters}
# (nas.space.references checks that each renders to that network; a new study starts from them)
FIDELITY_KEYS = ("epochs", "fraction", "image_size")


def space_dir() -> Path:
    """The folder of the space YAML files (conf/space)."""
    from nas.config import CONF_DIR

    return CONF_DIR / "space"


@dataclass(frozen=True)
class Sample:
    """A drawn configuration: the flat parameter values (as the study records them) and the spec they give."""

    params: dict[str, Any]
    spec: dict[str, Any]


@dataclass(frozen=True)
class Space:
    """A parsed, validated search space."""

    name: str
    family: tuple[str, ...]
    description: str
    stages: int | str | None
    params: dict[str, Param]
    spec: dict[str, Any]
    constraints: Constraints
    derive: dict[str, Any] | None
    raw: dict[str, Any]
    dag: CellDag | None = None
    references: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, name: str | None = None) -> Space:
        """Parse and check a space mapping (a YAML file's content, or Hydra's `space` node as a plain dict)."""
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"a space must be a mapping with keys {', '.join(SPACE_KEYS)}, got {type(raw).__name__}"
            )
        name = str(raw.get("name") or name or "space")
        where = f"space {name!r}"
        unknown = sorted(set(raw) - set(SPACE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; valid keys: {', '.join(SPACE_KEYS)}")
        fidelity = raw.get("fidelity")
        if fidelity is not None and (not isinstance(fidelity, Mapping) or set(fidelity) - set(FIDELITY_KEYS)):
            raise ValueError(
                f"{where}: fidelity maps {'/'.join(FIDELITY_KEYS)} to the search default, got {fidelity!r}"
            )
        for key in ("params", "spec"):
            if not isinstance(raw.get(key), Mapping) or not raw[key]:
                raise ValueError(f"{where}: needs a non-empty `{key}` mapping")
        params = {str(k): Param.parse(str(k), v, space=name) for k, v in raw["params"].items()}
        family = raw.get("family") or ()
        family = (family,) if isinstance(family, str) else tuple(str(f) for f in family)
        derive = dict(raw["derive"]) if raw.get("derive") else None
        if derive is not None:
            if "name" not in derive:
                raise ValueError(f"{where}: derive needs a `name`; valid: {', '.join(sorted(DERIVATIONS))}")
            get_derivation(derive["name"])
        space = cls(
            name=name,
            family=family,
            description=str(raw.get("description") or ""),
            stages=raw.get("stages"),
            params=params,
            spec=copy.deepcopy(dict(raw["spec"])),
            constraints=Constraints.parse(raw.get("constraints"), where=where),
            derive=derive,
            raw=copy.deepcopy(dict(raw)),
            dag=None if raw.get("dag") is None else CellDag.parse(raw["dag"], params, where=where),
            references=_parse_references(raw.get("references"), where=where),
        )
        space._check()
        return space

    # ------------------------------------------------------------------------------------------- checks

    def _check(self) -> None:
        where = f"space {self.name!r}"
        shared = [p for p in self.params.values() if not p.per_stage]
        staged = [p for p in self.params.values() if p.per_stage]
        if staged and self.stages is None and self.derive is None:
            raise ValueError(
                f"{where}: per-stage params {[p.name for p in staged]} need `stages` (an int or $param)"
            )
        if isinstance(self.stages, str):
            ref = self.stages.removeprefix("$")
            p = self.params.get(ref)
            if p is None or p.per_stage or p.kind not in ("int", "fixed", "categorical"):
                raise ValueError(f"{where}: stages {self.stages!r} must name a shared int parameter")
        elif self.stages is not None and (not isinstance(self.stages, int) or self.stages < 1):
            raise ValueError(f"{where}: stages must be an int >= 1 or $param, got {self.stages!r}")
        seen: set[str] = set()
        for p in shared:
            for dep in p.when:
                if dep not in seen:
                    raise ValueError(
                        f"{where}: param {p.name!r} depends on {dep!r}, which must be a shared param declared before it"
                    )
            seen.add(p.name)
        seen_staged: set[str] = set()
        for p in staged:
            for dep in p.when:
                if dep not in seen and dep not in seen_staged:
                    raise ValueError(
                        f"{where}: per-stage param {p.name!r} depends on {dep!r}, which must be declared before it"
                    )
            seen_staged.add(p.name)
        for model, values in self.references.items():
            try:
                drawn = self.sample(FixedSuggester(values)).params
            except (KeyError, ValueError, SpecRejected, TemplateError) as e:
                raise ValueError(f"{where}: reference {model!r} is not a point of the space: {e}") from None
            extra = sorted(set(values) - set(drawn))
            if extra:
                raise ValueError(
                    f"{where}: reference {model!r} sets {extra}, which are not parameters of its point "
                    f"(inactive or unknown); its parameters are {', '.join(sorted(drawn))}"
                )
            outside = [k for k, v in values.items() if not self._param_of(k).contains(v)]
            if outside:
                raise ValueError(
                    f"{where}: reference {model!r}: {', '.join(f'{k}={values[k]!r} ({self._param_of(k).describe()})' for k in outside)} "
                    "outside the space's ranges"
                )
        clash = [s.name for s in shared for p in staged if re.fullmatch(rf"{re.escape(p.name)}_\d+", s.name)]
        if clash:
            raise ValueError(f"{where}: shared params {clash} clash with the per-stage names <param>_<stage>")
        # A dry run catches unknown references and bad expressions now rather than in trial 1.
        for seed in range(3):
            try:
                self.sample(RandomSuggester(seed))
            except SpecRejected:
                pass
            except (TemplateError, KeyError, ValueError) as e:
                raise ValueError(f"{where}: the spec template does not render: {e}") from None

    def _param_of(self, key: str) -> Param:
        """The parameter a recorded key belongs to (`width_2` -> the per-stage `width`)."""
        if key in self.params:
            return self.params[key]
        return self.params[key.rsplit("_", 1)[0]]

    # ---------------------------------------------------------------------------------------- sampling

    def sample(self, suggester: Suggester) -> Sample:
        """Draw every active parameter through `suggester` and render the spec."""
        values: dict[str, Any] = {}
        flat: dict[str, Any] = {}
        for p in self.params.values():
            if p.per_stage:
                continue
            values[p.name] = p.draw(suggester, p.name) if p.active(values) else None
            if values[p.name] is not None and p.kind != "fixed":
                flat[p.name] = values[p.name]
        derived: dict[str, list[Any]] = {}
        if self.derive is not None:
            options = {k: v for k, v in self.derive.items() if k != "name"}
            n, derived = get_derivation(self.derive["name"])(values, **options)
        elif isinstance(self.stages, str):
            n = int(values[self.stages.removeprefix("$")])
        else:
            n = int(self.stages or 0)
        staged = [p for p in self.params.values() if p.per_stage]
        per_stage: dict[str, list[Any]] = {p.name: [None] * n for p in staged}
        for i in range(n):
            local = {**values, **{k: v[i] for k, v in derived.items()}}
            for p in staged:
                if p.active(local):
                    v = p.draw(suggester, f"{p.name}_{i}")
                    per_stage[p.name][i] = local[p.name] = v
                    if p.kind != "fixed":
                        flat[f"{p.name}_{i}"] = v
                else:
                    local[p.name] = None
        renderer = Renderer({**values, **derived, **per_stage}, set(per_stage) | set(derived), n)
        spec = renderer.render(self.spec)
        spec.setdefault("name", self.name)
        if self.family and "family" not in spec:
            spec["family"] = self.family[0]
        return Sample(params=flat, spec=spec)

    def compile(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The spec of recorded parameter values (e.g. a trial's `params`)."""
        return self.sample(FixedSuggester(params)).spec

    def sample_random(self, seed: int = 0) -> Sample:
        """A uniformly random configuration (no study): for tests, benchmarks and latency tables."""
        return self.sample(RandomSuggester(seed))

    # ------------------------------------------------------------------------------------------ identity

    def fingerprint(self) -> dict[str, Any]:
        """What defines the space's configurations (not its constraints, name or text)."""
        return {k: self.raw.get(k) for k in ("stages", "params", "derive", "spec")}

    def hash(self) -> str:
        """A short stable hash of `fingerprint()`: a study refuses a space whose hash differs."""
        blob = json.dumps(self.fingerprint(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """A few lines: the description and every parameter's range."""
        lines = [f"{self.name}: {self.description}".rstrip(": ")]
        if self.family:
            lines.append(f"  family: {', '.join(self.family)}")
        for p in self.params.values():
            lines.append(f"  {p.name:<18} {p.describe()}")
        lines += self.constraints.describe()
        return "\n".join(lines)


def _parse_references(raw: Any, *, where: str) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, Mapping) for v in raw.values()):
        raise ValueError(
            f"{where}: references map a conf/model name to the space's parameter values, e.g. "
            "{resnet20: {n_stages: 3, block: basic, ...}}, got " + repr(raw)
        )
    return {str(k): dict(v) for k, v in raw.items()}


def load_space(source: str | Path | Mapping[str, Any]) -> Space:
    """A space by name (conf/space/<name>.yaml), by file path, or from a mapping."""
    if isinstance(source, Mapping):
        return Space.from_dict(_plain(source))
    path = Path(source)
    if path.suffix not in (".yaml", ".yml"):
        path = space_dir() / f"{source}.yaml"
    if not path.is_file():
        names = [n for n, _ in list_spaces()]
        raise KeyError(f"unknown space {str(source)!r}; valid spaces: {', '.join(names) or '(none found)'}")
    from omegaconf import OmegaConf  # the same YAML dialect Hydra reads (1e6 is a number)

    return Space.from_dict(_plain(OmegaConf.load(path)), name=path.stem)


def list_spaces() -> list[tuple[str, str]]:
    """(name, description) of every space file in conf/space, sorted by name."""
    import yaml

    out = []
    for path in sorted(space_dir().glob("*.yaml")):
        try:
            desc = str((yaml.safe_load(path.read_text()) or {}).get("description") or "")
        except yaml.YAMLError as e:
            desc = f"(unreadable: {str(e).splitlines()[0]})"
        out.append((path.stem, desc))
    return out


def _plain(raw: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(raw, DictConfig):
        return OmegaConf.to_container(raw, resolve=False)  # type: ignore[return-value]
    return copy.deepcopy(dict(raw))
