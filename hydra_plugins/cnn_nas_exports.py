"""Hydra search-path plugin: `model=exported/<name>` finds the front architectures searches exported.

A search writes its front as <study folder>/conf/model/exported/<name>.yaml (nas.search.reporting.exports), so
<study folder>/conf is a config root (holding nothing else: the study folder itself would expose its run
folders, baselines/ and trials/, as config groups). For the platform's apps (primary configs: the `conf` package installed beside
this plugin, as nas.config.CONFIG_PATH names it, or `pkg://conf`; other Hydra apps in the
environment are left alone) this appends the `conf/` of every study folder under `outputs/search/` of the working
directory that holds exports, after the packaged configs (a packaged model of the same name wins). Exports written
elsewhere (`export_dir=<dir>/model/exported`) are found with `hydra.searchpath=[file://<dir>]`.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

# nas.config.CONFIG_PATH: the `conf` package beside this plugin (not imported: Hydra imports every plugin at
# start-up, and this must stay cheap).
PRIMARY = {str(Path(__file__).resolve().parents[1] / "conf"), "pkg://conf"}
STUDIES = Path("outputs") / "search"  # the search's default study folders: outputs/search/<study_name>


def study_roots(studies: Path = STUDIES) -> list[Path]:
    """The config roots (<study>/conf) of the study folders under `studies` that hold exported models, sorted."""
    if not studies.is_dir():
        return []
    return sorted(
        (p / "conf").resolve() for p in studies.iterdir() if (p / "conf" / "model" / "exported").is_dir()
    )


class ExportedModels(SearchPathPlugin):
    """Appends the study folders with exports to the config search path of the platform's apps."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(e.path in PRIMARY for e in search_path.get_path()):
            return
        for root in study_roots():
            search_path.append(provider="cnn-nas-exports", path=f"file://{root}")
