"""The shop front's Flask app factory: catalogue, checkout and order tracking.

Flask finds the templates and static files beside this module, in shop/web/templates and
shop/web/static.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from config.settings import COMPONENTS, ConfigurationError, get_settings
from workers.messaging import tracing
from workers.messaging.database import transaction

# Checkout bodies are small; anything larger is refused before it is read.
MAX_REQUEST_BYTES = 64 * 1024
DEV_SECRET_KEY = "dev-only-secret-key"
DEV_ADMIN_PASSWORD = "admin"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    settings = get_settings()
    if settings.is_production and settings.secret_key == DEV_SECRET_KEY:
        raise ConfigurationError("SHOESHOP_SECRET_KEY must be set when SHOESHOP_ENV=production")
    if settings.is_production and settings.admin_password == DEV_ADMIN_PASSWORD:
        raise ConfigurationError("SHOESHOP_ADMIN_PASSWORD must be set when SHOESHOP_ENV=production")
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        WTF_CSRF_TIME_LIMIT=None,
    )
    if test_config:
        app.config.update(test_config)
    # A span per request when tracing is on: a checkout's order.placed is created inside it.
    # Set up here, in each gunicorn worker (the factory runs after the fork), before any engine
    # opens; nothing when it is off.
    tracing.instrument_flask(app)

    from shop.sealing import Sealer
    from shop.web import admin, api, health, pages, url_converters

    url_converters.init_app(app)
    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)  # JSON clients authenticate nothing by cookie, so CSRF does not apply
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(pages.bp)
    csrf.exempt(admin.api_bp)  # its POSTs must be application/json, which no foreign form can send
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin.api_bp)
    admin.add_metric_sources(app)  # operations' outbox backlogs and dead letters at /metrics
    _register_operability(app)
    from shop.web import limits

    limits.init_app(app)  # after every blueprint and view it limits is registered
    app.extensions["shoeshop.sealer"] = Sealer(settings.gateway_url)
    _prepare_database()
    return app


def _register_operability(app: Flask) -> None:
    """Security headers, /metrics, the live order feed and the API's description."""
    from shop.web import deadlines, events_stream, metrics, openapi, security

    security.init_app(app)
    deadlines.init_app(app)
    metrics.init_app(app)
    events_stream.init_app(app)
    app.register_blueprint(openapi.bp)


def _prepare_database() -> None:
    from shop.seed import seed_if_empty
    from workers.schema.guard import require_current_schemas

    # Refuse to serve (SchemaNotCurrent names the database and the command) rather than fail
    # on every request: an order's timeline and the admin pages read every component's tables.
    require_current_schemas(COMPONENTS)
    with transaction("shop") as conn:
        seed_if_empty(conn)
