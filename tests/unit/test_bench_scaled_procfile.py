"""`shoeshop bench --processes N`: the Procfile it runs the system from."""

from __future__ import annotations

import re
from pathlib import Path

from config.settings import QUEUES
from workers.bench.stack import PROJECT_ROOT, scaled_procfile
from workers.launcher import procfile_processes


def test_each_worker_line_runs_n_times_under_node_names_of_its_own(tmp_path: Path) -> None:
    scaled = procfile_processes(scaled_procfile(tmp_path, 3))
    original = procfile_processes(PROJECT_ROOT / "Procfile")

    assert {name: scaled[name] for name in original} == original  # every line, unchanged
    for queue in QUEUES:
        copies = [scaled[queue], scaled[f"{queue}-2"], scaled[f"{queue}-3"]]
        nodes = [re.search(r"-n (\S+)@%h", line).group(1) for line in copies]  # type: ignore[union-attr]
        assert nodes == [queue, f"{queue}2", f"{queue}3"]
        assert all(f"-Q {queue} " in line for line in copies)
        # `shoeshop up` supervises the originals (named after their queue); the copies are
        # written supervised.
        assert all(line.startswith("shoeshop supervise -- shoeshop-worker ") for line in copies[1:])
    assert len(scaled) == len(original) + 2 * len(QUEUES)
