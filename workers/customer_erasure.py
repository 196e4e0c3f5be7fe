"""Erasing a customer on request (issue #14): the one procedure `shoeshop erase` and the admin
page (/admin/erasure, /api/admin/erasure) both run, from the email an operator typed to the
counts they are told.

It checks the email (``check_email``), finds the customer's orders in the shop (the one component
that knows a customer by email), erases operations' copies (dead letters, archive files) and then
the shop's, which tells orders and shipping to erase theirs (``customer.erased``). It joins the
shop (shop.erasure) and operations (workers.operations.erasure), so it lives beside the CLI, not
in either, and loads no Flask: the CLI imports it without the web stack.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass

from celery import Celery
from sqlalchemy.exc import SQLAlchemyError

from shop import erasure as shop_erasure
from workers.messaging.contracts import EMAIL_PATTERN, UNCARRIABLE
from workers.messaging.erasure import ERASED_EMAIL
from workers.operations import erasure as operations_erasure

log = logging.getLogger(__name__)

_UNCARRIABLE = re.compile(f"[{UNCARRIABLE}]")
# RFC 5321's limit on an address in a mail's path: no mailbox is longer. Above the contracts'
# EMAIL_LENGTH, so every email the shop ever took can be erased.
MAX_EMAIL_LENGTH = 254


class InvalidEmail(Exception):
    """What was typed cannot be a customer's email; nothing was read or changed. The message is
    a sentence an operator reads at the field."""


class ErasureUnfinished(Exception):
    """A database or an archive file could not be used partway (the cause is chained). What was
    erased stays erased, and running the erasure again finishes it: operations' copies go
    first, so until the shop's are erased the shop still finds the customer."""


@dataclass(frozen=True)
class Erased:
    """What one erasure rewrote: the customer's orders in the shop (orders and shipping erase
    theirs as they hear ``customer.erased``), dead letters about them and archived outbox rows.
    All zero when the shop knows no customer with the email."""

    orders: int
    dead_letters: int
    archived_rows: int

    def to_dict(self) -> dict[str, int]:
        """``{"orders", "dead_letters", "archived_rows"}``, as the admin API answers."""
        return asdict(self)


def check_email(email: str) -> str:
    """``email`` without the spaces around it, if a customer could have it; raises
    InvalidEmail saying why not (empty, no @ or nothing on one side of it, a control character,
    or a surrogate, longer than MAX_EMAIL_LENGTH, or the address an erased customer's
    orders read, which would match every erased order)."""
    email = email.strip()
    if not email:
        raise InvalidEmail("The customer's email address is required.")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"An email address has at most {MAX_EMAIL_LENGTH} characters.")
    local, at, domain = email.rpartition("@")
    if not at:
        raise InvalidEmail("An email address has an @.")
    if not local or not domain:
        raise InvalidEmail("An email address has a name before its @ and a domain after it.")
    if _UNCARRIABLE.search(email):
        # What no event carries (contracts.UNCARRIABLE); any other character, a zero-width
        # joiner or a private-use one, may be in an email a checkout took.
        raise InvalidEmail(
            "An email address has no control characters, direction marks or surrogates."
        )
    if not re.fullmatch(EMAIL_PATTERN, email):
        # No checkout took it (the contracts' pattern: no spaces, one @, a dot after it): a
        # name with the address in brackets, or two words, would otherwise erase nobody.
        raise InvalidEmail(
            "An email address has no spaces and one @, with a dot in the domain after it."
        )
    if email.rstrip(".").lower() == ERASED_EMAIL:  # a trailing dot names the same domain
        raise InvalidEmail("That is what an erased email reads: it is no customer's.")
    return email


def erase_customer(app: Celery, email: str) -> Erased:
    """Erase the personal data of the customer with ``email`` (any case, any script) from every
    component, publishing ``customer.erased`` through ``app``. Raises InvalidEmail before
    anything is read, ErasureUnfinished when a database or an archive file failed partway."""
    email = check_email(email)
    try:
        order_ids = shop_erasure.orders_of(email)
        # Operations' copies first: should they fail, the shop still knows the customer, and
        # the same erasure, run again, finishes it.
        letters, archived = operations_erasure.erase(order_ids)
        in_shop = shop_erasure.erase(app, email)
        late = sorted(set(in_shop) - set(order_ids))
        if late:  # placed while operations' copies were being erased: theirs too
            more_letters, more_archived = operations_erasure.erase(late)
            letters, archived = letters + more_letters, archived + more_archived
        order_ids = sorted(set(order_ids) | set(in_shop))
    except (SQLAlchemyError, OSError, ValueError) as exc:
        # ValueError: an archive file that is no UTF-8 (UnicodeDecodeError) among them.
        raise ErasureUnfinished(_first_line(exc)) from exc
    erased = Erased(orders=len(order_ids), dead_letters=letters, archived_rows=archived)
    # Never the email: personal data must not land in the logs an erasure cannot reach.
    log.info(
        "customer erased: %d order(s), %d dead letter(s), %d archived row(s)",
        erased.orders,
        erased.dead_letters,
        erased.archived_rows,
    )
    return erased


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
