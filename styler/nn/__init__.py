"""Networks: the norm registry, the normalization layers and the transformer network."""
