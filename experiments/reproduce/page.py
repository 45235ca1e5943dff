"""The reproduction page: the suite's and the profiles' sections, the hand-written section kept between its
markers, the commands that rebuild the page and fill what is missing, and the page's figures."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from experiments.ablation.config import check_overrides, composer, plain, split_overrides
from experiments.reproduce.profile_section import find_profiles, profile_figures, profile_markdown
from experiments.reproduce.suite_section import select_rows, suite_figure, suite_from_cache, suite_markdown

DEFAULT_BUDGET = "epochs=5 subset=0.2 seeds=3"
HUMAN_BEGIN = "<!-- human:begin (kept as written when the page is rebuilt) -->"
HUMAN_END = "<!-- human:end -->"
PLACEHOLDER = (
    "_To be written by a person after the run: which effects carry over from ImageNet to 28 px Fashion-MNIST at "
    "this budget, which do not, and why that is plausible (no colour, short training, small images)._"
)
FIGURE_PREFIXES = ("suite_", "profile_")  # the figures this command owns in the figure folder
# The profile runs the page describes: every reference network at its own size and at 32 / 28 px, batch 1..64,
# in eager PyTorch and in ONNX Runtime (the CPU deployment runtime).
PROFILE_RUNS = (("native", None), ("px32", 32), ("px28", 28))


class ReproduceError(ValueError):
    """Bad arguments or a page this command would damage: one message, nothing written."""


def human_section(page: Path) -> str:
    """The text between the markers of an existing page (the placeholder for a new page)."""
    if not page.exists():
        return PLACEHOLDER
    text = page.read_text()
    if (
        text.count(HUMAN_BEGIN) != 1
        or text.count(HUMAN_END) != 1
        or text.index(HUMAN_BEGIN) > text.index(HUMAN_END)
    ):
        raise ReproduceError(
            f"{page} exists but does not hold exactly one pair of human-section markers ({HUMAN_BEGIN!r} ... "
            f"{HUMAN_END!r}): rebuilding would lose its hand-written text. Restore the markers around that text, or "
            "write the page elsewhere with --page"
        )
    return text.split(HUMAN_BEGIN, 1)[1].split(HUMAN_END, 1)[0].strip("\n")


def profile_commands(profile_dir: str) -> list[str]:
    """The profile runs the Canziani section is built from."""
    return [
        shlex.join(["python", "-m", "experiments.profile", "--runtimes", "eager,onnxruntime", "--budget", "30",
                    *(["--input-size", str(size)] if size else []), "--out", f"{profile_dir}/{name}"])
        for name, size in PROFILE_RUNS
    ]  # fmt: skip


def worker_commands(suite: str, budget: Sequence[str], cache_dir: str, workers: int = 2) -> list[str]:
    """`workers` background processes, one thread each, training the suite into one cache."""
    out = []
    for i in range(1, workers + 1):
        argv = ["python", "-m", "experiments.ablate", f"suite={suite}", *budget, f"cache_dir={cache_dir}",
                f"name={suite}", f"hydra.run.dir=outputs/ablate/{suite}-worker{i}"]  # fmt: skip
        out.append(f"OMP_NUM_THREADS=1 nohup {shlex.join(argv)} > {suite}-worker{i}.log 2>&1 &")
    return out


def parse_budget(text: str) -> list[str]:
    """The suite's shared overrides from --budget; variant overrides or cache_dir there are refused."""
    overrides = shlex.split(text)
    check_overrides(overrides)
    shared, variant = split_overrides(overrides)
    if variant:
        raise ReproduceError(
            f"--budget takes options shared by every row (epochs, subset, seeds, data=...), not {variant}"
        )
    if any(o.split("=")[0].lstrip("+") in ("cache_dir", "suite") for o in shared):
        raise ReproduceError(
            "give the cache folder with --cache-dir and the suite with --suite, not in --budget"
        )
    return shared


def build_page(
    *,
    suite: str,
    budget: Sequence[str],
    cache_dir: str,
    profile_dir: str,
    page: Path,
    rows: Sequence[str] = (),
) -> dict[str, object]:
    """Write the page and its figures; returns what was found (runs missing, profiles, figures)."""
    human = human_section(page)  # before any work: a page without markers is refused untouched
    overrides = [f"suite={suite}", *budget, f"cache_dir={cache_dir}"]
    with composer() as compose:
        cfg = plain(compose(overrides))
        cfg["suite"] = select_rows(cfg["suite"], rows)
        state = suite_from_cache(cfg, overrides)
    profiles = find_profiles(Path(profile_dir))
    fig_dir = page.with_suffix("")  # docs/reproduction.md -> docs/reproduction/
    for old in fig_dir.glob("*.png") if fig_dir.is_dir() else []:
        if old.name.startswith(FIGURE_PREFIXES):
            old.unlink()  # a figure of a row or profile that is gone must not stay on the page
    rel = fig_dir.name
    scatter = fig_dir / f"suite_{suite}_delta_vs_paper.png"
    has_scatter = suite_figure(state, scatter)
    figures: dict[str, list[str]] = {}
    for p in profiles:
        stem = "profile_" + re.sub(r"[^A-Za-z0-9]+", "_", p.label).strip("_")
        figures[p.label] = [f"{rel}/{f.name}" for f in profile_figures(p, fig_dir, stem)]
    budget_txt = " ".join(budget)
    text = "\n".join([
        "# Reproduction: Mishkin et al.'s module analysis and Canziani et al.'s cost analysis",
        "",
        "<!-- generated by `python -m experiments.reproduce`: edit only the human section; everything else is "
        "rebuilt from the caches -->",
        "",
        "Rebuild this page (tables and figures) from the caches, without training or timing anything:",
        "",
        "```bash",
        shlex.join(["python", "-m", "experiments.reproduce", "--suite", suite, "--budget", budget_txt,
                    "--cache-dir", cache_dir, "--profile-dir", profile_dir, "--page", str(page)]),
        "```",
        "",
        "## What carries over from ImageNet (written by hand)",
        "",
        HUMAN_BEGIN,
        human,
        HUMAN_END,
        "",
        suite_markdown(state, budget=budget, cache_dir=cache_dir,
                       figure=f"{rel}/{scatter.name}" if has_scatter else None),
        "The suite on both cores: two processes with one thread each on one cache (each run is claimed with a file "
        "lock, so none is trained twice; each worker gets its own output folder and both share the W&B group). "
        "On the 2-core development machine that was 1.28x faster than one process with two threads (the same "
        "8 runs: 40.1 s vs 51.2 s; docs/ablation.md, \"Both cores\"), and the published suite ran that way.",
        "",
        "```bash",
        *worker_commands(suite, budget, cache_dir),
        "```",
        "",
        profile_markdown(profiles, figures=figures, profile_dir=profile_dir),
        "The profile runs (each network gets `--budget` seconds per runtime; a batch size that would overrun it is "
        "skipped and reported):",
        "",
        "```bash",
        *profile_commands(profile_dir),
        "```",
        "",
    ])  # fmt: skip
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    return {
        "runs_total": state.runs_total,
        "runs_missing": state.runs_missing,
        "rows_missing": state.rows_missing,
        "profiles": [p.label for p in profiles],
        "figures": sorted(str(p) for p in fig_dir.glob("*.png")) if fig_dir.is_dir() else [],
    }
