"""The kit every component uses to talk in events: envelope, subscriptions, outbox, inbox, relay."""
