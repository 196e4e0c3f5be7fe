"""A worker loads every component's tasks (one Celery app), so each import there costs every
worker memory: the web stack and the HTTP client stay with the processes that use them."""

from __future__ import annotations

import json
import subprocess
import sys

LOAD_TASKS = """
import json, sys
from config.celery import app
app.loader.import_default_modules()
print(json.dumps({"tasks": sorted(app.tasks), "modules": sorted(sys.modules)}))
"""


def test_loading_every_task_leaves_the_web_stack_and_http_clients_out() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_TASKS], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert {
        "orders.on_order_placed",
        "payments.on_payment_requested",
        "shop.on_order_status_changed",
    } <= set(loaded["tasks"])
    # The PostgreSQL dialect only where a PostgreSQL URL is configured (not in this test).
    heavy = {"flask", "werkzeug", "jinja2", "httpx", "urllib3", "sqlalchemy.dialects.postgresql"}
    heavy &= set(loaded["modules"])
    assert not heavy, f"a worker would load {sorted(heavy)}"
