"""The engine: data, the LightningModule, fitting one configuration, latency, search spaces, the study."""
