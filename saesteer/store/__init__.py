"""The embedded feature store."""

from saesteer.store.records import KINDS, Record
from saesteer.store.store import Store, check_artifact_fits, data_hash

__all__ = ["KINDS", "Record", "Store", "check_artifact_fits", "data_hash"]
