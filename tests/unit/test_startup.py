"""Importing a module of the project does nothing but define it: the Celery app's start-up
(config.celery.wire_celery_process, run by config.celery_process, the entry of every Celery
process) is the one place Celery's signals are connected, and the
tables of each component are found through a map when a migration needs them (issue #12)."""

from __future__ import annotations

import subprocess
import sys

SIGNALS = ("after_setup_logger", "after_setup_task_logger", "task_prerun", "task_postrun")
COUNT = (
    "from celery import signals; "
    f"print(sum(len(getattr(signals, name).receivers or []) for name in {SIGNALS!r}), "
    "len(signals.celeryd_init.receivers or []), len(signals.worker_ready.receivers or []), "
    "len(signals.task_received.receivers or []), len(signals.worker_shutdown.receivers or []))"
)


def receivers_after(imports: str) -> list[int]:
    """How many receivers Celery's signals have once a fresh interpreter ran ``imports``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{imports}; {COUNT}"], capture_output=True, text=True, check=True
    )
    return [int(n) for n in out.stdout.split()]


def test_importing_the_kit_and_the_components_stores_connects_no_signal() -> None:
    imports = (
        "import workers.messaging.logs, workers.messaging.broker_dead, workers.messaging.consumer,"
        " workers.orders.store, workers.orders.projections, workers.payments.store,"
        " workers.shipping.store, shop.tables, workers.messaging.watchdog, workers.supervise"
    )
    assert receivers_after(imports) == [0, 0, 0, 0, 0]


def test_the_celery_app_connects_nothing_when_the_web_imports_it() -> None:
    assert receivers_after("import config.celery") == [0, 0, 0, 0, 0]


def test_a_celery_process_wires_each_signal_once() -> None:
    # celeryd_init: the schema guard and the watchdog's; worker_ready: the dead-letter route and
    # the watchdog; task_received: the watchdog; worker_shutdown: the watchdog and tracing's
    # flush (workers.messaging.tracing).
    assert receivers_after("import config.celery_process, config.celery_process") == [4, 2, 2, 1, 2]
    # Wiring again (a second start-up call) adds nothing.
    again = "import config.celery_process; config.celery.wire_celery_process()"
    assert receivers_after(again) == [4, 2, 2, 1, 2]
