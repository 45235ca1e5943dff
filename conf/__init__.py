"""The platform's Hydra configs as package data (Hydra reads them as `pkg://conf`): YAML files only, no code."""
