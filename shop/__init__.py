"""The shop component: its own logic here (catalogue, checkout, cancellation, validation, the
order-status read model, its worker `shop.tasks`), its HTTP side in `shop.web` (`create_app`).

The app factory lives in `shop.web.app` and is imported on first use, so the shop's Celery worker,
which imports this package for its tasks, does not load Flask and the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shop.web.app import create_app as create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from shop.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
