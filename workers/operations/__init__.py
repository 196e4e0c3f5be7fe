"""Operations: the operators' component, and the only code that reads the kit's tables (outbox,
inbox) of every component.

It owns the outbox relay and the redelivery sweep (``relay``, ``redelivery``: the ``shoeshop
relay`` process), the operators' side of the dead letters (``dlq``: list, show, replay, discard;
``shoeshop dlq``, the admin pages), the drain of RabbitMQ's own dead-letter queue
(``broker_drain``), and replay (``replay``: history re-sent to one subscriber; ``shoeshop
replay``). What every worker needs to park a message stays in the messaging kit
(``workers.messaging.deadletters``). Only ``workers.cli`` and the admin blueprint
(``shop.web.admin``) import this package; the import-linter contracts in pyproject.toml check it.
"""
