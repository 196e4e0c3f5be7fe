"""The shop's edge: security headers on every response, and JSON refusals for the API."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from shop.web.errors import error_response

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
