"""The shop's edge: security headers on every response, and JSON refusals for the API."""

from __future__ import annotations

from flask import Flask, Response, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from shop.web.errors import error_response
from workers.messaging.faults import is_transient

# Pages load only their own stylesheet and script; nothing inline, nothing from elsewhere.
# SVG shoes are inline markup (not inline style), so 'self' is enough for everything.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
API_PREFIX = "/api"


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
    app.register_error_handler(HTTPException, api_http_error)
    app.register_error_handler(SQLAlchemyError, database_error)


# How long a client is asked to wait when the database was busy: a lock held that long passes.
BUSY_RETRY_AFTER_S = 5


def database_error(exc: SQLAlchemyError) -> tuple[Response, int]:
    """A database that is busy or away for a moment (a lock held past the busy timeout, a lost
    connection: faults.is_transient) is a 503 with Retry-After, nothing changed (the transaction
    rolled back), in the API's error shape under /api and in a sentence on a page; any other
    database error is a bug, and stays a 500."""
    if not is_transient(exc):
        raise exc
    message = "the shop's database is busy; nothing was changed, try again in a few seconds"
    under_api = request.path == API_PREFIX or request.path.startswith(f"{API_PREFIX}/")
    if under_api:
        response, status = error_response(503, "database_busy", message)
    else:
        response, status = Response(message.capitalize() + ".", mimetype="text/plain"), 503
    response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
    return response, status


def add_security_headers(response: Response) -> Response:
    # setdefault: a view that needs a looser policy for itself can set its own header.
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def api_http_error(exc: HTTPException) -> HTTPException | tuple[Response, int]:
    """Under /api every refusal (404, 405, 413, a CSRF or size limit) has DESIGN's error shape."""
    under_api = request.path == API_PREFIX or request.path.startswith(f"{API_PREFIX}/")
    if not under_api or exc.code is None:
        return exc  # pages keep Werkzeug's (or their own) rendering
    # Werkzeug's name for the status, in the API's snake_case: "payload_too_large".
    code = (exc.name or "error").lower().replace(" ", "_").replace("-", "_")
    message = exc.description or exc.name or "the request was refused"
    if exc.code == 413:
        message = "the request body is too large"
    response, status = error_response(exc.code, code, message)
    allowed = getattr(exc, "valid_methods", None)  # a 405 says what would have worked
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response, status
