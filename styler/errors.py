"""One exception family for everything a user can get wrong, so the CLI can print a clean message and exit."""

from __future__ import annotations

__all__ = ["StylerError", "WeightsError", "ModelFileError", "ImageError", "DatasetError", "TrainingError"]


class StylerError(Exception):
    """Base class: an error whose message is meant for the user (no traceback needed)."""


class WeightsError(StylerError):
    """The VGG16 loss-network weights are missing, unreadable or not what they claim to be."""


class ModelFileError(StylerError):
    """A styler model or checkpoint file is missing, truncated, foreign or inconsistent."""


class ImageError(StylerError):
    """An image could not be read, decoded or written."""


class DatasetError(StylerError):
    """A training dataset folder is missing, empty or holds no readable image."""


class TrainingError(StylerError):
    """Training cannot continue (for example, the loss became NaN or infinite)."""
