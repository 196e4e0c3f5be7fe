"""A stand-in for a payment service provider, for development and tests."""
