"""The platform's Hydra configs as package data (found beside the `nas` package: nas.config.CONF_DIR): YAML files only, no code."""
