"""The embedded feature store."""

from saesteer.store.records import KINDS, Record
from saesteer.store.store import Store, data_hash

__all__ = ["KINDS", "Record", "Store", "data_hash"]
