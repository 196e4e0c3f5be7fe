"""The shop component: its web front (`create_app`) and its worker (`shop.tasks`).

The app factory lives in `shop.app` and is imported on first use, so the shop's Celery worker,
which imports this package for its tasks, does not load Flask and the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shop.app import create_app as create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from shop.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
