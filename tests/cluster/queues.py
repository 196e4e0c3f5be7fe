"""Declare the shop's queues (the component queues and the dead-letter route) through the broker
of SHOESHOP_BROKER_URL: with ``queue_leader_locator = client-local`` a quorum queue's leader is
the node its declaring connection is on, so a scenario places leaders by naming one node.

    SHOESHOP_BROKER_URL=amqp://…:5681/vhost python -m tests.cluster.queues
"""

from __future__ import annotations

from config.celery import app
from workers.messaging import broker_dead


def main() -> None:
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in app.conf.task_queues:
            queue.bind(channel).declare()
        broker_dead.declare(connection)


if __name__ == "__main__":
    main()
