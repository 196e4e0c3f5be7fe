# ruff: noqa: E402 - the imports follow gevent's patch on purpose (below)
"""Gunicorn's hooks for the web process: gevent's patch first, one Prometheus metrics
directory shared by its workers, and each worker's spans exported as it stops.

The server model: gunicorn's gevent workers (the Procfile's ``--worker-class gevent``, with
``--worker-connections 10000``: streams, events_stream.MAX_STREAMS_PER_PROCESS, and pages). A
tracking page holds its stream open for minutes while nothing happens; a thread each (gunicorn's
threaded workers) made two streams per process the limit. A greenlet each holds thousands per
process for a few kilobytes apiece, and pages, the API and checkouts are served by the same workers,
the Flask app unchanged: gevent makes the standard library's sockets, locks and queues cooperative,
and psycopg 3 waits on its sockets through them (SQLite's calls are short and block their worker for
as long as they take). Chosen over an ASGI server beside the app because one server keeps one port,
one set of hooks and one app, and over eventlet because gevent is the one gunicorn's documentation
and most deployments pair with it.

gevent patches the standard library here, first: this module is what gunicorn loads before
anything of the shop, so every lock the shop's modules create (workers.messaging.database's among
them, held across a connect) is a cooperative one. A lock made before the patch would be a real
lock, and a greenlet waiting on it while another holds it across I/O would stop the process.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from config.settings import COMPONENTS, ConfigurationError, get_settings

# gunicorn --workers 2 runs two Python processes; the checkout histogram of each lives in files
# under this directory (prometheus_client's multiprocess mode) and /metrics adds them up.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    """Before any worker forks: refuse to serve from databases behind this code (one line,
    instead of a traceback from every worker), then a fresh metrics directory for this server,
    inherited by its workers."""
    refuse_outdated_schemas(server)
    if os.environ.get(MULTIPROC_ENV):
        return  # the operator chose one
    parent = get_settings().data_dir / "metrics"
    _remove_dead_servers(parent)
    directory = parent / f"web-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)


def refuse_outdated_schemas(server: Any) -> None:
    """Stop gunicorn with one line when a setting is out of range or a database is not current."""
    from workers.messaging.database import dispose_all
    from workers.schema.guard import require_current_schemas
    from workers.schema.revision import SchemaError

    try:
        require_current_schemas(COMPONENTS)
    except (SchemaError, ConfigurationError) as exc:
        server.log.error("refusing to start: %s", exc)
        sys.exit(1)
    finally:
        dispose_all()  # the workers open their own connections after the fork


def post_worker_init(worker: Any) -> None:
    """In each worker after the fork: its log lines are written off the gevent loop
    (shop.web.log_thread), so a log reader that falls behind does not hold pages and streams."""
    from shop.web.log_thread import move_off_loop

    worker.shoeshop_off_loop_logs = move_off_loop(
        [logging.getLogger("gunicorn.access"), logging.getLogger("gunicorn.error")]
    )


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker as it stops (SIGTERM included): write the log lines still queued and export
    the spans it still buffers."""
    from shop.web.log_thread import stop_all
    from workers.messaging import tracing

    try:
        stop_all(getattr(worker, "shoeshop_off_loop_logs", []))
    finally:
        tracing.shutdown()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _remove_dead_servers(parent: Path) -> None:
    """Directories of servers that are gone would otherwise pile up, one per restart."""
    if not parent.is_dir():
        return
    for entry in parent.glob("web-*"):
        pid = entry.name.removeprefix("web-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds that pid
    return True
