"""``shoeshop-worker`` is Celery's ``worker`` command on the shop's app, without what the
``celery`` command group loads around it (issue #20: every worker within 80 MB)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from workers.celery_worker import starts_a_worker

# What `celery -A config.celery_process worker` loads into a worker and no worker uses:
# Flower's plugin (and redis-py through it, on RabbitMQ too) and `celery amqp`'s shell.
NOT_IN_A_WORKER = {
    "flower",
    "tornado",
    "prometheus_client",
    "humanize",
    "click_repl",
    "prompt_toolkit",
}

HELP_THEN_MODULES = """
import json, sys
from workers.celery_worker import main
try:
    main(["--help"])
except SystemExit as done:
    assert done.code == 0, done.code
from celery import current_app
print(json.dumps({
    "app": current_app.main,
    "top": sorted({name.split(".")[0] for name in sys.modules}),
}))
"""


def test_the_worker_command_is_celerys_on_the_shops_app_without_the_plugins() -> None:
    run = subprocess.run(
        [sys.executable, "-c", HELP_THEN_MODULES], capture_output=True, text=True, check=True
    )
    help_text, _, last = run.stdout.rstrip().rpartition("\n")
    loaded = json.loads(last)

    assert "Usage: shoeshop-worker" in help_text
    for option in ("-Q, --queues", "-E, --task-events", "-P, --pool", "-c, --concurrency"):
        assert option in help_text
    assert loaded["app"] == "shoeshop"
    assert "celery" in loaded["top"] and "config" in loaded["top"]
    assert NOT_IN_A_WORKER.isdisjoint(loaded["top"]), NOT_IN_A_WORKER & set(loaded["top"])


def test_the_celery_command_does_load_them() -> None:
    # The reason for the command above: should Celery stop loading its plugins into a worker,
    # this fails and `celery -A config.celery_process worker` can come back.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, celery.bin.celery;"
            "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {"flower", "prompt_toolkit"} <= set(json.loads(loaded))


def test_one_predicate_tells_a_worker_command_line_however_it_was_written() -> None:
    # The Procfile's line, the same as /proc shows it (interpreter and paths in front), and a
    # bench baseline's `celery … worker`: each starts a worker.
    assert starts_a_worker(shlex.split("shoeshop-worker -Q orders -n orders@%h -E"))
    assert starts_a_worker(["/o/.venv/bin/python3", "/o/.venv/bin/shoeshop-worker", "-Q", "x"])
    assert starts_a_worker(shlex.split("celery -A workers.bench.naive_app worker -Q x"))
    assert starts_a_worker(["/v/bin/python", "-m", "celery", "-A", "app", "worker"])
    # Other Celery commands and the shop's own are not workers, even with "worker" in a value.
    assert not starts_a_worker(shlex.split("celery -A config.celery_process flower"))
    assert not starts_a_worker(shlex.split("celery -A config.celery_process beat"))
    assert not starts_a_worker(shlex.split("shoeshop relay"))
    assert not starts_a_worker(shlex.split("gunicorn -n worker 'shop:create_app()'"))
