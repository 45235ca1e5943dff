"""`python -m experiments.train model=... data=...`: fit, validate and test one configuration."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nas.cli import user_errors
from nas.config import CONFIG_PATH, to_plain


def summary_lines(result) -> list[str]:
    """The human summary of one run."""
    m = result.metrics
    lines = [
        f"run        {result.name}",
        f"val acc    {m.get('val/acc', float('nan')):.4f}   (best {m.get('val/acc_best', float('nan')):.4f})",
    ]
    if "test/acc" in m:
        lines.append(f"test acc   {m['test/acc']:.4f}   (top-5 {m.get('test/acc5', float('nan')):.4f})")
    lines += [
        f"params     {result.params:,}",
        f"MACs       {result.macs:,}",
        f"wall time  {result.wall_time_s:.1f} s",
        f"train      {result.train_images_per_s:,.0f} images/s",
        f"outputs    {result.output_dir}",
    ]
    return lines


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
@user_errors("train")
def main(cfg: DictConfig) -> float:
    from nas.fit import fit
    from nas.tracking import offline_mark, sync_command

    plain = to_plain(cfg)
    plain["output_dir"] = HydraConfig.get().runtime.output_dir
    if plain.get("resume_dir") is None:  # beside the run folders, where the same command run again looks
        plain["resume_dir"] = str(Path(plain["output_dir"]).parent / "resume")
    mark = offline_mark()
    result = fit(plain)
    print("\n".join(summary_lines(result)))
    hint = sync_command(since=mark)
    if hint:
        print(f"W&B is offline: upload the run with\n  {hint}")
    return result.metrics.get("val/acc", float("nan"))


if __name__ == "__main__":
    main()
