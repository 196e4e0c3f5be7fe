"""A deadline for reading a request's body: a client that sends it slowly, or stops halfway,
holds one greenlet of the web for at most SHOESHOP_READ_TIMEOUT seconds, then gets 408.

The headers have their deadline in gunicorn: its gevent workers read each request's line and
headers under a ``gevent.Timeout`` of the keep-alive setting (2 s by default), and drop a client
that has not sent them by then. The body is read by the app, so its deadline is here: the whole
body is read up front, under a timeout, into Werkzeug's cache (which the form parser and
``get_json`` read from afterwards). Outside gevent (the test client, a threaded server) the
timeout never fires: the read does not yield to gevent's hub.
"""

from __future__ import annotations

import gevent
from flask import Flask, request
from werkzeug.exceptions import RequestTimeout

from config.settings import get_settings

BODY_TOO_SLOW = "the request's body did not arrive in time"


def init_app(app: Flask) -> None:
    """First of the app's before-request functions: CSRF's check, which reads the form, would
    otherwise read the body with no deadline."""
    app.before_request_funcs.setdefault(None, []).insert(0, read_body_in_time)


def read_body_in_time() -> None:
    """Read the body now, under the deadline. Raises RequestTimeout (408: the API's error shape
    under /api, shop.web.security)."""
    if not request.content_length and request.headers.get("Transfer-Encoding") is None:
        return
    with gevent.Timeout(get_settings().read_timeout_s, False):
        request.get_data(cache=True, parse_form_data=False)
        return
    raise RequestTimeout(BODY_TOO_SLOW) from None
