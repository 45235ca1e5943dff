"""Studies built on the engine: train, ablate, profile, bench, reports."""
