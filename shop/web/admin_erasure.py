"""The admin's erasure of a customer (issue #14): the page /admin/erasure and the JSON
POST /api/admin/erasure, on the admin blueprints (``add_routes``), so behind their password.

Both run workers.customer_erasure, the erasure `shoeshop erase` runs too: the email is checked
there, operations' copies are erased before the shop's, and the counts come back from there.
Here are only the HTTP answers: what was typed that is no customer's email is a 422 with the
sentence at the field (on the page, a box left unticked too) and changes nothing; a database or
an archive file that fails partway is a 503, and running the erasure again finishes it.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from config.celery import app as celery_app
from shop.validation import UnreadableBody, read_json
from shop.web.errors import error_response
from workers.customer_erasure import (
    MAX_EMAIL_LENGTH,
    Erased,
    ErasureUnfinished,
    InvalidEmail,
    check_email,
    erase_customer,
)

log = logging.getLogger(__name__)

ERASURE_UNFINISHED = (
    "A database or an archive file did not answer, so the erasure is not finished. Try again "
    "shortly: running it again finishes it."
)
NOT_CONFIRMED = "Tick the box to confirm: an erasure cannot be undone."
NO_CUSTOMER = "The shop knows no customer with that email: nothing was erased."


def add_routes(pages: Blueprint, api: Blueprint) -> None:
    """The page on the admin pages' blueprint, the JSON on the admin API's (their guards ask
    for the password; the API's wants a JSON body, the page's form a CSRF token)."""
    pages.add_url_rule("/erasure", "erasure_page", erasure_page, methods=["GET"])
    pages.add_url_rule("/erasure", "erase", erase, methods=["POST"])
    api.add_url_rule("/erasure", "erase_json", erase_json, methods=["POST"])


def erasure_page() -> ResponseReturnValue:
    return _form()


def erase() -> ResponseReturnValue:
    email = request.form.get("email", "")
    errors: dict[str, str] = {}
    try:
        check_email(email)
    except InvalidEmail as exc:
        errors["email"] = str(exc)
    if request.form.get("confirm") != "yes":
        errors["confirm"] = NOT_CONFIRMED
    if errors:
        return _form(email, errors=errors), 422
    try:
        erased = erase_customer(celery_app, email)
    except ErasureUnfinished:
        log.warning("erasure not finished", exc_info=True)
        return _form(email, problem=ERASURE_UNFINISHED), 503
    if not erased.orders:
        return _form(email, notice=NO_CUSTOMER)
    flash(_done(erased), "ok")
    return redirect(url_for("admin.erasure_page"), code=303)


def erase_json() -> ResponseReturnValue:
    """``{"email"}`` → 200 ``{"orders", "dead_letters", "archived_rows"}`` (all 0 when the shop
    knows no customer with that email); 400 no JSON object, 422 no customer's email, 503 not
    finished (run it again)."""
    # The checkout's strict reading: a key twice (which one counts?), NaN, bytes that are no
    # UTF-8 are refused, not guessed at: an erasure cannot be undone.
    try:
        body = read_json(request.get_data())
    except UnreadableBody as exc:
        return error_response(400, "invalid_json", f"the request body is unreadable: {exc}")
    if not isinstance(body, dict):
        return error_response(400, "invalid_json", "the request body must be a JSON object")
    email = body.get("email")
    if not isinstance(email, str):
        return _invalid("The customer's email address is required, as a string.")
    try:
        erased = erase_customer(celery_app, email)
    except InvalidEmail as exc:
        return _invalid(str(exc))
    except ErasureUnfinished:
        log.warning("erasure not finished", exc_info=True)
        message = "a database or an archive file did not answer; run the erasure again shortly"
        return error_response(503, "erasure_unfinished", message)
    return jsonify(erased.to_dict())


def _form(
    email: str = "",
    *,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    notice: str | None = None,
) -> str:
    return render_template(
        "admin_erasure.html",
        email=email,
        errors=errors or {},
        problem=problem,
        notice=notice,
        max_length=MAX_EMAIL_LENGTH,
    )


def _invalid(message: str) -> tuple[Response, int]:
    return error_response(422, "invalid_fields", "some fields are invalid", {"email": message})


def _done(erased: Erased) -> str:
    return (
        f"Erased {_counted(erased.orders, 'order')} from the shop, "
        f"{_counted(erased.dead_letters, 'dead letter')} and "
        f"{_counted(erased.archived_rows, 'archived row')}. Orders, shipping and notifications "
        "erase theirs as they hear customer.erased."
    )


def _counted(number: int, thing: str) -> str:
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"
