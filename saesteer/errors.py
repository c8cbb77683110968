"""Typed errors: every message names the problem and how to fix it."""

from __future__ import annotations


class SaesteerError(Exception):
    """Base class of every error saesteer raises on bad input."""


class ModelNotFoundError(SaesteerError):
    """A model name, alias or path could not be resolved."""


class UnknownArchitectureError(SaesteerError):
    """The decoder layers of a model could not be located."""


class LayerError(SaesteerError):
    """A layer index is out of range for the model."""


class VectorError(SaesteerError):
    """A steering vector has the wrong shape or non-finite values."""


class DataError(SaesteerError):
    """A dataset is empty, malformed or missing fields."""


class MissingEndMarkerError(DataError):
    """after_prompt met a prompt without its end-of-instruction marker (it would steer nothing there)."""


class ConfigError(SaesteerError):
    """An option has an invalid value."""


class StoreError(SaesteerError):
    """A store is unusable, a record is missing, or a blob is corrupt."""


class SAEError(SaesteerError):
    """An SAE does not fit the model/layer, or cannot be loaded or trained."""


class DistributedError(SaesteerError):
    """A collective operation failed because a peer process stopped (killed, out of memory, crashed)."""
