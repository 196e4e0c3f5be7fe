"""The back-office components (orders, payments, shipping), the messaging kit and the CLI."""
