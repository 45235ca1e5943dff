"""`python -m experiments.summary model=resnet50`: per-layer table of output shape, params and MACs."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from nas.cli import user_errors
from nas.config import CONFIG_PATH, resolve_spec, to_plain


@hydra.main(config_path=CONFIG_PATH, config_name="summary", version_base="1.3")
@user_errors("summary")
def main(cfg: DictConfig) -> None:
    from blocks import build_model
    from blocks.summary import format_summary, summarize

    plain = to_plain(cfg)
    spec = plain["model"] if plain["native"] else resolve_spec(plain)
    model = build_model(spec)
    scale = "native" if plain["native"] else plain["data"]["name"]
    title = f"{spec.get('name', 'model')} at {spec['input_size']} px, {spec['num_classes']} classes ({scale})"
    print(format_summary(summarize(model, depth=int(plain["depth"])), title=title))


if __name__ == "__main__":
    main()
