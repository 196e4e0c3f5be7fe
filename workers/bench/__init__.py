"""``shoeshop bench``: the shop under load beside a raw Celery baseline on the same broker."""
