"""Files: images, self-describing model files, the model zoo, atomic writes."""
