"""A shopper in headless Chromium against the real shop: buy, watch it ship, a decline, errors."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.shop import DECLINED_CARD, FAILING_CARD, GOOD_CARD
from tests.system.conftest import RunningShop
from workers.messaging.contracts import wire_type

# Payment, shipping and the page's update all happen within seconds; a minute is generous.
SETTLE_MS = 60_000
ORDER_PAGE = re.compile(r".*/orders/[0-9a-f-]{36}$")
# The admin password `shoeshop up` runs with in development (SHOESHOP_ADMIN_PASSWORD unset).
ADMIN_PASSWORD = "admin"
# The confirmation mail goes out once the notifications worker hears order.placed: seconds.
MAIL_WAIT_S = 30


def shoot(page: Any, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def add_to_basket(page: Any, shop: RunningShop, sku: str, size: str, quantity: str) -> None:
    page.goto(f"{shop.url}/products/{sku}")
    page.select_option("#size", size)
    page.fill("#quantity", quantity)
    page.get_by_role("button", name="Add to basket").click()
    page.wait_for_url(re.compile(r".*/basket$"))


def fill_checkout(page: Any, *, card: str, email: str) -> None:
    page.fill("#name", "Ada Lovelace")
    page.fill("#email", email)
    page.fill("#line1", "Keizersgracht 1")
    page.fill("#postal_code", "1015 CJ")
    page.fill("#city", "Amsterdam")
    page.fill("#country", "NL")
    page.fill("#card_number", card)
    page.fill("#exp_month", "12")
    page.fill("#exp_year", "2031")
    page.fill("#cvc", "123")


def choose_and_fill(page: Any, shop: RunningShop, *, card: str, email: str) -> None:
    """One pair of RUN-001 in size 42 in the basket, and the checkout form filled in."""
    add_to_basket(page, shop, "RUN-001", "42", "1")
    fill_checkout(page, card=card, email=email)


def place(page: Any) -> None:
    page.get_by_role("button", name="Place order and pay").click()
    page.wait_for_url(ORDER_PAGE)


def test_a_shopper_browses_buys_and_watches_the_shoes_ship(
    running_shop: RunningShop, page: Any, screenshots: Path
) -> None:
    page.goto(running_shop.url)
    assert page.locator("#products li").count() >= 12
    shoot(page, screenshots, "1-catalogue")
    page.click('a[href="/products/RUN-001"]')
    page.wait_for_url(re.compile(r".*/products/RUN-001$"))
    shoot(page, screenshots, "2-product")

    choose_and_fill(page, running_shop, card=GOOD_CARD, email="ada@example.com")
    shoot(page, screenshots, "3-checkout-form")
    place(page)
    page.wait_for_selector("#order-status[data-status=SHIPPED]", timeout=SETTLE_MS)
    shoot(page, screenshots, "4-shipped")

    assert page.locator("#order").get_attribute("data-live") == "stream"
    assert page.locator("#tracking-number").inner_text().strip()
    assert page.locator("#status-label").inner_text() == "Shipped"
    timeline = page.locator("#timeline li")
    assert timeline.count() >= 4
    assert timeline.first.get_attribute("data-type") == wire_type("order.placed")


def test_a_basket_of_several_pairs_is_changed_and_checked_out_at_once(
    running_shop: RunningShop, page: Any, screenshots: Path
) -> None:
    add_to_basket(page, running_shop, "RUN-001", "42", "1")
    add_to_basket(page, running_shop, "TRL-001", "43", "2")
    add_to_basket(page, running_shop, "CAS-002", "41", "1")
    assert page.locator("#basket-count").inner_text() == "4"
    assert page.locator("#basket-lines tbody tr").count() == 3

    # More pairs of the first line, the last line taken out; the total follows.
    page.fill("#quantity-0", "3")
    page.locator("#line-0").get_by_role("button", name="Update").click()
    page.wait_for_selector('#line-0[data-quantity="3"]')
    page.click("#remove-2")
    page.wait_for_function("document.querySelectorAll('#basket-lines tbody tr').length === 2")
    assert page.locator("#basket-count").inner_text() == "5"
    assert page.locator("#basket-total").inner_text() == "€615.00"  # 3 x 119 + 2 x 129
    shoot(page, screenshots, "12-basket")

    # A bad email is shown at its field, and the basket stays as it was.
    fill_checkout(page, card=GOOD_CARD, email="not-an-email")
    page.get_by_role("button", name="Place order and pay").click()
    page.wait_for_selector("#email-error")
    assert page.locator("#basket-lines tbody tr").count() == 2

    fill_checkout(page, card=GOOD_CARD, email="ada@example.com")
    place(page)
    order_id = page.url.rsplit("/", 1)[1]
    order = httpx.get(f"{running_shop.url}/api/orders/{order_id}", timeout=30).json()
    assert [(i["sku"], i["size"], i["quantity"]) for i in order["items"]] == [
        ("RUN-001", "42", 3),
        ("TRL-001", "43", 2),
    ]
    assert page.locator("#basket-count").inner_text() == "0"


def test_a_declined_card_cancels_the_order_and_says_why(
    running_shop: RunningShop, page: Any, screenshots: Path
) -> None:
    choose_and_fill(page, running_shop, card=DECLINED_CARD, email="ada@example.com")
    place(page)

    page.wait_for_selector("#order-status[data-status=CANCELLED]", timeout=SETTLE_MS)
    shoot(page, screenshots, "5-declined")

    reason = page.locator("#order-reason")
    assert reason.is_visible()
    assert "declined" in reason.inner_text()


def test_a_bad_email_is_shown_at_its_field(
    running_shop: RunningShop, page: Any, screenshots: Path
) -> None:
    choose_and_fill(page, running_shop, card=GOOD_CARD, email="not-an-email")

    page.get_by_role("button", name="Place order and pay").click()
    page.wait_for_selector("#email-error")
    shoot(page, screenshots, "6-form-error")

    assert "not a valid email address" in page.locator("#email-error").inner_text()
    assert page.locator("#email").get_attribute("aria-invalid") == "true"
    assert page.locator("#email").input_value() == "not-an-email"
    assert page.locator("#error-summary").is_visible()


def test_a_shopper_cancels_an_order_that_waits_for_its_payment(
    running_shop: RunningShop, page: Any, screenshots: Path
) -> None:
    # This card always fails transiently at the gateway: the order waits for payment.
    choose_and_fill(page, running_shop, card=FAILING_CARD, email="ada@example.com")
    place(page)
    page.wait_for_selector("#cancel-order", state="visible")
    shoot(page, screenshots, "7-before-cancel")

    page.click("#cancel-order")
    page.wait_for_selector("#order-status[data-status=CANCELLED]", timeout=SETTLE_MS)
    shoot(page, screenshots, "8-cancelled")

    assert "at your request" in page.locator("#order-reason").inner_text()
    assert page.locator("#cancel-order").is_hidden()


def test_the_tracking_page_follows_the_order_without_reloading(
    running_shop: RunningShop, page: Any, screenshots: Path
) -> None:
    # The order waits for its payment (a card that always fails for a while); then the customer
    # cancels it from another device, through the API: this page only listens.
    choose_and_fill(page, running_shop, card=FAILING_CARD, email="ada@example.com")
    place(page)
    page.wait_for_selector("#order-status[data-status=PAYMENT_PENDING]", timeout=SETTLE_MS)
    page.evaluate("window.shoeshopSameDocument = 'yes'")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    order_id = page.url.rsplit("/", 1)[1]

    answer = httpx.post(f"{running_shop.url}/api/orders/{order_id}/cancel", timeout=30)

    assert answer.status_code == 202, answer.text
    page.wait_for_selector("#order-status[data-status=CANCELLED]", timeout=SETTLE_MS)
    shoot(page, screenshots, "9-cancelled-elsewhere")
    assert page.evaluate("window.shoeshopSameDocument") == "yes"
    assert navigations == []
    assert page.locator("#order").get_attribute("data-live") == "stream"
    assert "at your request" in page.locator("#order-reason").inner_text()


def test_the_admin_reads_the_confirmation_mail_the_catcher_kept(
    running_shop: RunningShop, page: Any, screenshots: Path
) -> None:
    # `shoeshop up` with no SHOESHOP_SMTP_URL runs the local mail catcher; /admin/mail lists it.
    choose_and_fill(page, running_shop, card=GOOD_CARD, email="ada.mail@example.com")
    place(page)
    order_number = page.url.rsplit("/", 1)[1][:8].upper()
    token = base64.b64encode(f"ops:{ADMIN_PASSWORD}".encode()).decode()
    page.set_extra_http_headers({"Authorization": f"Basic {token}"})

    page.goto(f"{running_shop.url}/admin/mail")
    subject = f"We have your order {order_number}"
    link = page.locator("#mail a.mail-subject", has_text=subject)
    deadline = time.monotonic() + MAIL_WAIT_S
    while link.count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(1_000)
        page.reload()
    shoot(page, screenshots, "10-admin-mail")
    assert link.count() == 1, f"no mail {subject!r} at /admin/mail after {MAIL_WAIT_S} s"

    link.click()
    page.wait_for_selector("#mail-text")
    shoot(page, screenshots, "11-admin-mail-message")

    shown = page.locator("#main").inner_text()
    assert "Ada Lovelace" in shown
    assert order_number in shown
    assert "Track your order" in shown
    assert page.locator("#mail-subject").inner_text() == subject
    assert "Ada Lovelace" in page.locator("#mail-to").inner_text()
    assert "Track your order" in page.locator("#mail-text").inner_text()
    frame = page.frame_locator("#mail-html")
    assert "Track your order" in frame.locator("body").inner_text()
    assert page.locator("#mail-html").get_attribute("sandbox") == ""
