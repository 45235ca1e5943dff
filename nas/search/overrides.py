"""The search's command-line habits, mapped to the overrides conf/search.yaml takes: `+space=<name>` (the
form of the docs before `space` was in the defaults list) and an Optuna storage URL typed as the storage
(`storage=sqlite:///x.db`, `storage=postgresql://...`). The command line and the Python API both pass their
overrides through `normalise` before Hydra composes them, so the two accept the same input."""

from __future__ import annotations

from collections.abc import Sequence

# `storage=<URL>`: a SQLite file stays storage=sqlite (its workers on this machine are watched by process id);
# any other SQLAlchemy URL is storage=url.
URL_STORAGE = {"sqlite": "sqlite"}


def storage_overrides(url: str) -> list[str]:
    """The overrides a storage URL typed as `storage=<URL>` stands for."""
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme == "postgres":  # Heroku's and psql's alias, which SQLAlchemy 2 no longer accepts
        url = "postgresql" + url[len("postgres") :]
    return [f"storage={URL_STORAGE.get(scheme, 'url')}", f"storage.url={url}"]


POSTGRES_URL = (
    "storage=postgres reads its URL from $NAS_STORAGE_URL, never from the command line (which is saved in the run "
    "folder): export NAS_STORAGE_URL=<URL> and keep storage=postgres, or pass the URL itself as the storage, "
    "storage=<URL>"
)


def normalise(overrides: Sequence[str]) -> list[str]:
    """`overrides` with `+space=X` / `++space=X` as `space=X` and `storage=<URL>` as the storage group and its
    url; anything else (flags included) unchanged. ValueError for `storage=postgres` given a `storage.url`
    (Hydra would suggest `+storage.url`, which postgres ignores: it reads the URL from the environment)."""
    out: list[str] = []
    for arg in overrides:
        key, eq, value = arg.partition("=")
        if eq and key in ("+space", "++space"):
            out.append(f"space={value}")
        elif eq and key == "storage" and "://" in value:
            out += storage_overrides(value)
        else:
            out.append(arg)
    if "storage=postgres" in out and any(a.lstrip("+~").startswith("storage.url=") for a in out):
        raise ValueError(POSTGRES_URL)
    return out
