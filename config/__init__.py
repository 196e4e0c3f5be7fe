"""Configuration shared by every component: settings from the environment and the Celery app."""
