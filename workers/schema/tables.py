"""Where each component declares its tables: what its migrations are written against and the
drift check compares a migrated database with.

A map, read when a migration or a check needs it, instead of each store registering its tables
as it is imported: importing a module does nothing but define it.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from config.settings import COMPONENTS
from workers.messaging.tables import kit_metadata, operations_metadata

# Component → the modules whose ``metadata`` holds its own tables (beside the kit's outbox and
# inbox, which every component's database has).
TABLE_MODULES: dict[str, tuple[str, ...]] = {
    "shop": ("shop.tables",),
    "orders": ("workers.orders.store",),  # projections.py adds its tables to store.metadata
    "payments": ("workers.payments.store",),
    "shipping": ("workers.shipping.store",),
    "notifications": ("workers.notifications.store",),
    "operations": (),
}
# Modules that add tables to another module's metadata, imported with it.
_ALSO = {"workers.orders.store": ("workers.orders.projections",)}


def metadata_of(component: str) -> list[MetaData]:
    """Every table of the component's database: the kit's, and those its modules declare.
    Raises ValueError for a name that is not a component."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}")
    found = [kit_metadata]
    if component == "operations":
        found.append(operations_metadata)
    for name in TABLE_MODULES[component]:
        for extra in _ALSO.get(name, ()):
            importlib.import_module(extra)
        found.append(importlib.import_module(name).metadata)
    return found
