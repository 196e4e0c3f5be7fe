"""``shoeshop-worker``: a component's Celery worker, without the ``celery`` command's plugins.

``celery -A config.celery_process worker`` builds the whole ``celery`` command group before it
starts the worker, and with it every command the group carries: ``celery amqp``'s shell
(click-repl, prompt_toolkit) and each command an installed package registers under the
``celery.commands`` entry point, here Flower's (tornado, prometheus_client, humanize, and
redis-py, which since version 8 imports OpenTelemetry's metrics SDK when it is installed). None
of it runs in a worker, yet every worker process kept it: 21.6 MB of RSS, measured on
2026-12-01 on this project's 2-core machine as the growth of a process that had loaded
``config.celery_process`` and its tasks, when it then imported ``celery.bin.celery`` (23.7 MB)
rather than ``celery.bin.worker`` (2.1 MB). The bound on a worker is 80 MB (issue #20).

This runs Celery's own ``worker`` command (``celery.bin.worker.worker``: the same options,
defaults, start-up and exit status) on the shop's app, with no group around it. Its arguments
are those of ``celery worker``: ``shoeshop-worker -Q orders -n orders@%h -E --pool threads``.
``NO_COLOR`` is honoured as the ``celery`` command honours it; the group's other options (``-A``,
``--broker``, ``--config``, ``--workdir``) have no use here: the app, its broker and its
configuration are the shop's (``config.celery_process``, from ``SHOESHOP_*`` settings).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import PurePath

# The console script (pyproject.toml) the Procfile starts each component's worker with.
COMMAND = "shoeshop-worker"


def starts_a_worker(argv: Sequence[str]) -> bool:
    """True when a command line (its words, as ``shlex.split`` or ``/proc/<pid>/cmdline`` give
    them) starts a Celery worker: ``shoeshop-worker …``, or ``celery … worker …`` as a
    baseline of the bench starts one; a path or an interpreter in front changes nothing."""
    names = [PurePath(word).name for word in argv]
    return COMMAND in names or ("celery" in names and "worker" in argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run a Celery worker of the shop's app with ``argv`` (default: this process's arguments)
    as ``celery worker``'s; exits with the worker's status (75 when its watchdog gave up on a
    silent consumer, ``workers.messaging.watchdog``)."""
    from celery.bin.base import CLIContext
    from celery.bin.worker import worker

    from config.celery_process import app

    context = CLIContext(app=app, no_color=bool(os.environ.get("NO_COLOR")), workdir=None)
    worker.main(
        args=list(sys.argv[1:] if argv is None else argv),
        prog_name=COMMAND,
        obj=context,
    )


if __name__ == "__main__":
    main()
