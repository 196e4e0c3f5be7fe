"""The orders component: the order aggregate, kept as a stream of events, and the saga it drives."""
