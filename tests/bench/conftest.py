"""The NAS-Bench-201 drivers' tests read the small tables that tests/tabular writes (its fixtures, shared)."""

from tests.tabular.conftest import full_tables  # noqa: F401  (a fixture: pytest finds it by this name)
