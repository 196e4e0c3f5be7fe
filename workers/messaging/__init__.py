"""The kit every component uses to talk in events: envelope, contracts, subscriptions, outbox,
inbox, unit of work, publisher, parking dead letters. The operators' tools (relay, redelivery,
the dead letters' operator side, replay) are a component of their own: workers.operations."""
