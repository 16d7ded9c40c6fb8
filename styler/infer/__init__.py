"""Inference: the Stylizer, its backends, tiling and colour handling."""
