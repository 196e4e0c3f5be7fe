"""With tracing off, no process loads OpenTelemetry (issue #19): a worker stays within its
memory bound, and the web and the relay carry nothing they do not use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

LOAD_EVERYTHING = """
import json, sys
from config.celery_process import app
app.loader.import_default_modules()
import shop.web.app, workers.operations.relay
from workers.messaging import tracing
from workers.messaging.contracts import ShipmentCancelled, new_event
order = "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11"
event = tracing.stamped(new_event(ShipmentCancelled(order_id=order), source="/t", subject=order))
with tracing.processing(event, "shipping.on_x"):
    tracing.failed(ValueError("x"))
assert tracing.scheduled(order) is None and not event.traceparent
print(json.dumps(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
"""


def test_with_tracing_off_no_process_imports_opentelemetry() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", LOAD_EVERYTHING], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert json.loads(out) == []
