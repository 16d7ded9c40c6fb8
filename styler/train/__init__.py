"""Training: configuration and presets, the trainer, data, checkpoints and distributed runs."""
