"""The entry of every Celery process (``celery -A config.celery_process worker|beat|flower``):
the shared app, with a Celery process's start-up (``wire_celery_process``) run once.

Only Celery's command imports this module; the web and the CLI import config.celery, which
wires nothing.
"""

from __future__ import annotations

from config.celery import app, wire_celery_process

wire_celery_process()

__all__ = ["app"]
