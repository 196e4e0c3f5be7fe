"""The failure matrix: the real processes, broken on purpose, on Redis and on RabbitMQ.

Each scenario places orders over HTTP, injects its fault, waits until the shop is quiet and then
checks the invariants of tests/support/invariants.py: every order shipped, cancelled or parked;
nobody charged twice; the charges equal the paid totals; stock conserved.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.chaos import audit
from tests.chaos.conftest import WORKERS, Chaos
from tests.chaos.flow import (
    assert_sound,
    completions,
    consumers,
    inject,
    log_lines,
    place_many,
    reordering_plan,
    settle,
)
from tests.support.invariants import LATE, Outcome, views
from tests.support.shop import FAILING_CARD, order_body, wait_for
from workers.messaging.chaos import SHOP_DELAYS_S

pytestmark = pytest.mark.timeout(600)


def paid_attempts(chaos: Chaos) -> int:
    """Deliveries of payment requests that finished (paid, skipped by the inbox, or parked)."""
    done = completions(chaos)
    return sum(n for (name, _id), n in done.items() if name == "payments.on_payment_requested")


def only_late(outcome: Outcome, *also: str) -> bool:
    """True when the only broken invariant is orders not there yet (plus the given problems)."""
    allowed = (LATE, *also)
    return outcome.charged_twice == 0 and all(
        any(text in problem for text in allowed) for problem in outcome.problems
    )


@pytest.mark.chaos_fast
def test_1_payments_worker_stopped(chaos: Chaos) -> None:
    # Given the payments worker is down
    count = chaos.scale(50, 20)
    chaos.processes.stop("payments")
    # When orders are placed, they wait for it
    order_ids = place_many(chaos, count)
    time.sleep(2)
    waiting = views(chaos.shop, order_ids)
    assert {v["status"] for v in waiting.values()} <= {"PLACED", "PAYMENT_PENDING"}
    assert chaos.shop.charges() == []
    # Then, once it is back, every one of them ships
    chaos.processes.start("payments")
    outcome = settle(chaos, order_ids)
    assert_sound(outcome)
    assert outcome.shipped == count


def test_2_workers_killed_mid_task(chaos: Chaos) -> None:
    # Given a slow gateway, so that a payments worker is often killed inside a charge
    chaos.processes.restart("gateway", {"SHOESHOP_GATEWAY_LATENCY_MS": "150"})
    count = chaos.scale(60, 20)
    rng = random.Random(3)
    order_ids: list[str] = []
    placing = threading.Thread(target=lambda: order_ids.extend(place_many(chaos, count)))
    # When workers are SIGKILLed again and again during the burst
    placing.start()
    kills = []
    # Each worker is killed as often as the others, in an order shuffled for every round.
    victims = [w for _ in range(2) for w in rng.sample(WORKERS, len(WORKERS))]
    for victim in victims[: chaos.scale(8, 4)]:
        time.sleep(rng.uniform(0.3, 1.5))
        chaos.processes.kill(victim)
        kills.append(victim)
        chaos.processes.start(victim)
    placing.join()
    # Then nothing is lost and nobody is charged twice
    # (a killed worker's taken messages come back after SHOESHOP_VISIBILITY_TIMEOUT on Redis)
    outcome = settle(chaos, order_ids, timeout_s=120)
    outcome.notes.append(f"killed: {', '.join(kills)}")
    assert_sound(outcome)
    assert outcome.shipped == count


def test_3_broker_down_at_checkout(chaos: Chaos) -> None:
    # Given the broker is down
    count = chaos.scale(20, 10)
    chaos.broker.down()
    # When customers check out, the outbox keeps their orders: every checkout is accepted
    started = time.monotonic()
    order_ids = place_many(chaos, count)
    intake_s = time.monotonic() - started
    chaos.broker.up()
    # Then, once the broker is back, the relay publishes them and everything ships
    outcome = settle(chaos, order_ids, timeout_s=180)
    outcome.notes.append(f"{count} checkouts with the broker down took {intake_s:.1f}s")
    assert_sound(outcome)
    assert outcome.shipped == count


def test_4_broker_restarts_mid_flow(chaos: Chaos) -> None:
    # Given orders flowing, with a slow gateway so that payments is always holding messages
    chaos.processes.restart("gateway", {"SHOESHOP_GATEWAY_LATENCY_MS": "500"})
    count = chaos.scale(40, 15)
    order_ids: list[str] = []
    placing = threading.Thread(target=lambda: order_ids.extend(place_many(chaos, count)))
    placing.start()
    # When the broker goes away and comes back in the middle of it
    time.sleep(1.0)
    chaos.broker.down()
    time.sleep(3.0)
    chaos.broker.up()
    placing.join()
    # Then nothing is lost
    outcome = settle(chaos, order_ids, timeout_s=120)
    assert_sound(outcome)
    assert outcome.shipped == count


@pytest.mark.chaos_fast
def test_5_every_event_delivered_twice(chaos: Chaos) -> None:
    # Given orders in flight
    count = chaos.scale(20, 10)
    order_ids = place_many(chaos, count)
    # When every event of every outbox is sent again, mid-flow and once more when all is done
    sent: Counter[str] = Counter(json.loads(inject(chaos, "resend")))
    settle(chaos, order_ids)
    sent.update(json.loads(inject(chaos, "resend")))

    # Then every copy is consumed (same task id as its original, so each id finishes again) ...
    def consumed() -> bool:
        done = Counter(task_id for _name, task_id in completions(chaos).elements())
        return all(done[task_id] >= copies + 1 for task_id, copies in sent.items())

    wait_for(consumed, timeout_s=60, every_s=0.5)
    # ... and every effect happened once: one charge, one shipment per order
    outcome = settle(chaos, order_ids)
    outcome.notes.append(f"{sum(sent.values())} task messages sent again")
    assert_sound(outcome)
    assert outcome.shipped == count
    assert sorted(chaos.shop.shipments().values()) == [1] * count


POISON_KINDS = ("not-json", "unknown-type", "schema")
QUEUES = ("shop", "orders", "payments", "shipping")


def test_6_poison_message_on_each_queue(chaos: Chaos) -> None:
    # Given orders flowing
    count = chaos.scale(20, 10)
    order_ids: list[str] = []
    placing = threading.Thread(target=lambda: order_ids.extend(place_many(chaos, count)))
    placing.start()
    # When a bad message of each kind lands on each queue
    subjects = {
        (queue, kind): inject(chaos, "poison", queue, kind)
        for queue in QUEUES
        for kind in POISON_KINDS
    }
    placing.join()
    # Then every event-shaped one is parked at once (first attempt), naming its fault ...
    expected = {s: k for (_q, k), s in subjects.items() if k != "not-json"}
    poisoned = {s: q for (q, _k), s in subjects.items()}

    def parked() -> dict[str, dict[str, object]] | None:
        # The poison's own letter: a rejected order's notice can park later on notifications,
        # which never heard of the order (it was never placed), about the same subject.
        found = {
            d["subject"]: d
            for d in chaos.shop.dead_letters()
            if d["subject"] in expected and d["queue"] == poisoned[d["subject"]]
        }
        return found if len(found) == len(expected) else None

    letters = wait_for(parked, timeout_s=30, every_s=0.5)
    assert {subject: letter["attempts"] for subject, letter in letters.items()} == {
        subject: 1 for subject in expected
    }
    for subject, kind in expected.items():
        wanted = "UnknownEventType" if kind == "unknown-type" else "InvalidEvent"
        assert letters[subject]["exception"] == wanted, letters[subject]

    # ... a body that is not JSON never reaches a task: the worker parks its raw bytes with the
    # queue it came from before Celery acknowledges it ...
    def undecodable() -> set[str] | None:
        found = {d["queue"] for d in chaos.shop.dead_letters() if d["task"] == "(undecodable)"}
        return found if found >= set(WORKERS) else None

    wait_for(undecodable, timeout_s=30, every_s=0.5)
    # ... and the orders flowed on past all of them
    outcome = settle(chaos, order_ids)
    outcome.notes.append("8 poison events and 4 non-JSON bodies parked at once")
    assert_sound(outcome)
    assert outcome.shipped == count


def test_7_gateway_fails_thirty_percent(chaos: Chaos) -> None:
    # Given a gateway that fails 30% of calls before recording anything
    chaos.processes.restart("gateway", {"SHOESHOP_GATEWAY_FAULT_RATE": "0.3"})
    count = chaos.scale(40, 15)
    # When orders are placed
    order_ids = place_many(chaos, count)
    # Then every order is paid exactly once (retries absorb the faults)
    outcome = settle(chaos, order_ids, timeout_s=180)
    assert_sound(outcome)
    # Six failures in a row (0.3**6, under 0.1% an order) would park it: legitimate, but say so.
    assert outcome.shipped + outcome.parked == count
    if outcome.parked:
        outcome.notes.append(f"{outcome.parked} order(s) parked after six faults in a row")
    assert outcome.parked <= 1
    assert log_lines(chaos, "transient failure", ("payments",)) > 0


@pytest.mark.chaos_fast
def test_8_last_five_pairs(chaos: Chaos) -> None:
    # Given five pairs left of one size
    sku, size = "RUN-001", "42"
    chaos.shop.set_available(sku, size, 5)
    body = order_body(sku=sku, size=size, quantity=1)
    # When twenty customers check out at the same moment
    barrier = threading.Barrier(20)

    def checkout(_index: int) -> httpx.Response:
        barrier.wait()
        return httpx.post(f"{chaos.shop.url}/api/orders", json=body, timeout=60)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(checkout, range(20)))
    # Then exactly five succeed, the rest are told it is sold out, and stock never goes negative
    codes = sorted(response.status_code for response in responses)
    assert codes == [202] * 5 + [409] * 15
    order_ids = [r.json()["id"] for r in responses if r.status_code == 202]
    row = chaos.shop.stock()[(sku, size)]
    assert row["available"] == 0 and row["reserved"] + row["sold"] == 5
    outcome = settle(chaos, order_ids, initial={(sku, size): 5})
    outcome.notes.append("20 concurrent checkouts for 5 pairs: 5 accepted, 15 refused (409)")
    assert_sound(outcome)
    assert outcome.shipped == 5
    assert chaos.shop.stock()[(sku, size)] == {"available": 0, "reserved": 0, "sold": 5}


def test_9_gateway_down_then_replay(chaos: Chaos) -> None:
    # Given a gateway that fails every call
    chaos.processes.restart("gateway", {"SHOESHOP_GATEWAY_FAULT_RATE": "1"})
    good = place_many(chaos, chaos.scale(10, 5))
    doomed = place_many(chaos, 2, card=FAILING_CARD, start=100)
    # When their retries are exhausted, every order ends in the dead letters, uncharged
    wait_for(
        lambda: all(v.get("delayed") for v in views(chaos.shop, good + doomed).values()),
        timeout_s=120,
        every_s=0.5,
    )
    letters = chaos.shop.dead_letters()
    assert len(letters) == len(good + doomed)
    assert {letter["attempts"] for letter in letters} == {6}
    assert chaos.shop.charges() == []
    # And when the gateway is healthy again and an operator replays everything
    chaos.processes.restart("gateway", {"SHOESHOP_GATEWAY_FAULT_RATE": "0"})
    chaos.shop.cli("dlq", "replay", "--all")
    first = settle(chaos, good + doomed, timeout_s=120)
    assert first.shipped == len(good)
    charges = chaos.shop.charges()
    # Then each is paid exactly once, and the always-failing card is parked again
    assert sorted(c["order_id"] for c in charges) == sorted(good)
    still = chaos.shop.dead_letters()
    assert sorted(letter["subject"] for letter in still) == sorted(doomed)
    # And replaying every letter again, the paid ones included, changes nothing
    before = paid_attempts(chaos)
    for letter in letters:
        chaos.shop.cli("dlq", "replay", letter["id"])
    wait_for(lambda: paid_attempts(chaos) >= before + len(letters), timeout_s=60, every_s=0.5)
    outcome = settle(chaos, good + doomed, timeout_s=120)
    outcome.notes.append(f"{len(good)} paid once after replay; {len(doomed)} x 0259 parked again")
    assert_sound(outcome)
    assert chaos.shop.charges() == charges
    assert outcome.shipped == len(good)
    assert outcome.parked == len(doomed)


def test_10_a_poison_event_at_each_stage_ends_its_order(chaos: Chaos) -> None:
    # Given orders waiting for their payment (payments and shipping are down)
    count = chaos.scale(20, 8)
    chaos.processes.stop("payments")
    chaos.processes.stop("shipping")
    order_ids = place_many(chaos, count)
    wait_for(
        lambda: {v["status"] for v in views(chaos.shop, order_ids).values()} == {"PAYMENT_PENDING"},
        timeout_s=60,
        every_s=0.5,
    )
    # When, for one order per stage, an event about it that nothing can apply reaches that
    # stage's queue (data that breaks the contract): an order.placed at orders and a status
    # change at the shop now, a payment request at payments behind the real ones ...
    poisoned = dict(zip(QUEUES, order_ids, strict=False))
    for queue in ("orders", "shop", "payments"):
        inject(chaos, "poison", queue, "schema", poisoned[queue])
    chaos.processes.start("payments")
    # ... and a parcel request at shipping once the others are paid
    rest = [oid for oid in order_ids if oid not in (poisoned["orders"], poisoned["shop"])]
    wait_for(
        lambda: all(views(chaos.shop, rest)[oid]["status"] != "PAYMENT_PENDING" for oid in rest),
        timeout_s=60,
        every_s=0.5,
    )
    inject(chaos, "poison", "shipping", "schema", poisoned["shipping"])
    chaos.processes.start("shipping")

    # Then each poison event is parked, and orders ends its order (invalid_order): cancelled
    # at once before payment, its late payment refunded; once paid, cancelled and refunded if
    # shipping can still stop the parcel (it leaves at once here, so it ships). None hangs.
    def ended() -> dict[str, dict[str, object]] | None:
        found = views(chaos.shop, order_ids)
        final = all(v["status"] in ("SHIPPED", "CANCELLED") for v in found.values())
        return found if final else None

    found = wait_for(ended, timeout_s=120, every_s=0.5)
    for queue in ("orders", "shop"):
        assert found[poisoned[queue]]["reason"] == "invalid_order", (queue, found[poisoned[queue]])
    for queue in ("payments", "shipping"):
        view = found[poisoned[queue]]
        assert view["status"] == "SHIPPED" or view["reason"] == "invalid_order", (queue, view)
    assert set(poisoned.values()) <= {d["subject"] for d in chaos.shop.dead_letters()}
    outcome = settle(chaos, order_ids)
    cancelled = sorted(q for q, oid in poisoned.items() if found[oid]["status"] == "CANCELLED")
    outcome.notes.append(f"a poison event about a live order at each stage; cancelled: {cancelled}")
    assert_sound(outcome)
    assert outcome.shipped + outcome.cancelled == count
    assert outcome.cancelled == len(cancelled)


# The seed of the reordering hook (SHOESHOP_CHAOS_REORDER): any from 1 does; issue #19 asked.
REORDER_SEED = 19
# The size and time: 100 orders, from the first checkout to quiet within 3 minutes. Not
# fewer with --chaos-fast: about one order in seven has its status changes reach the shop out of
# order, and the scenario checks that some did.
REORDERED_ORDERS = 100
REORDERED_WITHIN_S = 180


@pytest.mark.shop(copies=2, threads=2, env={"SHOESHOP_CHAOS_REORDER": str(REORDER_SEED)})
def test_11_reordered_events_never_move_a_status_backwards(chaos: Chaos) -> None:
    # Given every consumer run as two workers of two threads, every event sent late, twice or
    # out of order by the reordering hook, and every write to the shop's order view and to
    # orders' order list recorded by triggers in their databases
    audit.install(chaos.shop.env)
    count = REORDERED_ORDERS
    started = time.monotonic()
    # When 100 orders are placed
    order_ids = place_many(chaos, count)
    outcome = settle(chaos, order_ids, timeout_s=REORDERED_WITHIN_S)
    # (the copies held back longest are still on their way: wait until the writes stop too)
    wait_for(_writes_stopped(chaos), timeout_s=60, every_s=0.5)
    took = time.monotonic() - started
    # Then no write moved a status backwards ...
    writes = audit.writes(chaos.shop.env)
    backwards = [f"backwards: {write}" for write in writes if write.backwards]
    outcome.problems += backwards
    # ... every order ends the same in the shop's view, its counts and orders' order list ...
    shop_ends = audit.ends(chaos.shop.env, "shop")
    orders_ends = audit.ends(chaos.shop.env, "orders")
    outcome.problems += [
        f"order {oid}: the shop has {shop_ends.get(oid)}, orders {orders_ends.get(oid)}"
        for oid in order_ids
        if shop_ends.get(oid) != orders_ends.get(oid)
    ]
    view, kept = audit.status_counts(chaos.shop.env)
    if view != kept:
        outcome.problems.append(f"order_counts {dict(kept)} differ from the view {dict(view)}")
    # ... nothing was parked: late, repeated and reordered events are no fault
    outcome.problems += [f"parked: {letter}" for letter in chaos.shop.dead_letters()]
    plan = reordering_plan(chaos, REORDER_SEED)
    reordered = audit.heard_out_of_order(chaos.shop.env)
    skipped = log_lines(chaos, "already applied by", consumers(chaos))
    hooked = log_lines(chaos, "reordering hook:", (*consumers(chaos), "web", "relay"))
    redelivered = log_lines(chaos, "re-sent", ("relay",))
    note = (
        f"{plan['sends']} sends: {plan['twice']} sent twice, {plan['held back']} copies held "
        f"back 1-2 s, to the shop 1-6 s ({hooked} logged by the hook); {len(reordered)} orders' "
        f"status changes reached the shop out of order; {skipped} repeats skipped by inboxes; "
        f"{redelivered} relay sweeps that re-sent events; {len(writes)} status writes audited, "
        f"{len(backwards)} backwards; {took:.0f}s from the first checkout to quiet"
    )
    outcome.notes.append(note)
    # ... and the shop is sound: all shipped, each charged once, stock conserved
    assert_sound(outcome)
    assert outcome.shipped == count
    # The hook did reorder: a scenario that delivered everything in order would prove nothing.
    # (Each figure is in the message: a run without reordering says where it stopped.)
    assert plan["twice"] > 0 and plan["held back"] > 0 and hooked > 0, note
    assert reordered and skipped > 0, note
    # The triggers saw every order come into each table and move to SHIPPED.
    for component in audit.AUDITED:
        mine = [w for w in writes if w.component == component]
        assert {w.order_id for w in mine if w.op == "INSERT"} == set(order_ids), component
        shipped = {w.order_id for w in mine if w.new == "SHIPPED" and w.old != "SHIPPED"}
        assert shipped == set(order_ids), component
    assert took < REORDERED_WITHIN_S


def _writes_stopped(chaos: Chaos) -> Callable[[], bool]:
    """A probe true once the audit has not grown for longer than the hook holds a copy back."""
    seen: list[tuple[int, float]] = []

    def probe() -> bool:
        now = (len(audit.writes(chaos.shop.env)), time.monotonic())
        if not seen or seen[-1][0] != now[0]:
            seen.append(now)
        return now[1] - seen[-1][1] > max(SHOP_DELAYS_S) + 1

    return probe
