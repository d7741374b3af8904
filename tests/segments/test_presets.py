"""Each preset on a hand-built store whose members are known, edge cases included.

Every test writes a small warehouse (the real schema, in a real DuckDB file), opens it the
way the pages do (read-only, sealed), and checks the exact member set, the count and the
sendable figures against what the preset's wording and docs/segments.md say. The
customers are named after the case they stand for, so a failure reads as the rule broken.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import duckdb
import pytest

from studio import schema
from studio.segments import operations
from studio.segments.presets import presets
from studio.warehouse import connect_reader

AS_OF = datetime(2024, 6, 30, 12, 0, 0)
HOUR, DAY, SECOND = timedelta(hours=1), timedelta(days=1), timedelta(seconds=1)
LONG_AGO = AS_OF - 400 * DAY


class Store:
    """Rows for a hand-built warehouse, written in one go by :meth:`open`."""

    def __init__(self):
        self.rows: dict[str, list[dict]] = {}
        self._ids = count(1)

    def _add(self, table: str, **row) -> None:
        self.rows.setdefault(table, []).append(row)

    def _next(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def customer(self, customer_id: str, email: str | None = "{id}@example.com",
                 phone: str | None = None, signed_up_at: datetime | None = LONG_AGO) -> str:
        """A customer, with an e-mail address unless told otherwise."""
        self._add("customers", customer_id=customer_id,
                  email=email.format(id=customer_id) if email else email,
                  phone=phone, country="DE", acquisition_channel="organic",
                  signed_up_at=signed_up_at, updated_at=signed_up_at)
        return customer_id

    def order(self, customer_id: str, at: datetime, total: float = 100.0, kind: str = "sale",
              status: str = "completed", is_guest: bool = False) -> None:
        """An order with one line that adds up to its total."""
        order_id = self._next("o")
        self._add("orders", order_id=order_id, customer_id=customer_id, is_guest=is_guest,
                  ordered_at=at, kind=kind, status=status, currency="EUR", subtotal=total,
                  discount=0.0, total=total, updated_at=at)
        self._add("order_items", order_id=order_id, line_number=1, product_id="p1",
                  quantity=1 if total >= 0 else -1, unit_price=abs(total), discount=0.0)

    def event(self, customer_id: str, event_type: str, at: datetime) -> None:
        self._add("events", event_id=self._next("e"), customer_id=customer_id,
                  session_id=f"s-{customer_id}", event_type=event_type, occurred_at=at,
                  product_id="p1" if event_type in ("product_view", "add_to_cart") else None,
                  properties="{}")

    def consent(self, customer_id: str, channel: str, status: str,
                at: datetime = LONG_AGO, consent_event_id: str | None = None) -> None:
        self._add("consent_events", consent_event_id=consent_event_id or self._next("k"),
                  customer_id=customer_id, channel=channel, status=status, occurred_at=at,
                  source="signup_form")

    def open(self, settings) -> duckdb.DuckDBPyConnection:
        """Write the warehouse file and open it read-only, as the studio's pages do."""
        self._add("products", product_id="p1", name="Mug", category="Kitchen", price=10.0,
                  updated_at=LONG_AGO)
        with duckdb.connect(str(settings.warehouse_path)) as con:
            schema.create_all(con)
            for table, rows in self.rows.items():
                columns = list(rows[0])
                con.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    [[row[c] for c in columns] for row in rows])
        return connect_reader(settings)


def check_preset(settings, store: Store, slug: str, members: set[str], email: set[str],
                 sms: set[str]) -> None:
    """The preset's members are exactly ``members``; its count and sendables agree."""
    definition = presets()[slug]
    con = store.open(settings)
    try:
        found = operations.members(con, definition, AS_OF)
        assert set(found) == members, (
            f"missing {sorted(members - set(found))}, unexpected {sorted(set(found) - members)}")
        assert len(found) == len(set(found))
        result = operations.count(con, definition, AS_OF)
    finally:
        con.close()
    assert email <= members and sms <= members  # the test's own bookkeeping
    assert (result.matched, result.email_sendable, result.sms_sendable) == (
        len(members), len(email), len(sms))
    assert result.as_of == AS_OF


def test_every_preset_is_covered_here():
    assert set(presets()) == {
        "abandoned-cart", "browse-abandonment", "high-intent-no-recent-order", "lapsed-vips",
        "new-subscribers-without-purchase", "one-time-buyers", "winback-candidates"}


# ---------------------------------------------------------------- abandoned cart
# Added to cart in the last 7 days and no order event within 24 hours after it.


def test_abandoned_cart(settings):
    s = Store()
    cart = "add_to_cart"

    def cart_then(name: str, cart_at: datetime, *order_after: timedelta, **customer) -> str:
        s.customer(name, **customer)
        s.event(name, cart, cart_at)
        for gap in order_after:
            s.event(name, "order", cart_at + gap)
        return name

    in_order_25h_later = cart_then("order_25h_later", AS_OF - 25 * HOUR, 25 * HOUR,
                                   phone="+4915100001")
    cart_then("order_23h_later", AS_OF - 25 * HOUR, 23 * HOUR)
    cart_then("order_exactly_24h_later", AS_OF - 48 * HOUR, 24 * HOUR)  # "within" includes 24 h
    in_same_instant = cart_then("order_same_instant", AS_OF - 30 * HOUR, timedelta(0))
    in_order_before = cart_then("order_before_cart", AS_OF - 3 * DAY, -HOUR)
    cart_then("cart_10h_ago", AS_OF - 10 * HOUR)  # 24 hours have not passed yet
    in_24h_ago = cart_then("cart_exactly_24h_ago", AS_OF - 24 * HOUR, phone="+4915100002")
    cart_then("cart_8_days_ago", AS_OF - 8 * DAY)  # outside the 7-day window
    cart_then("cart_exactly_7_days_ago", AS_OF - 7 * DAY)  # the window starts after it
    in_just_inside = cart_then("cart_7_days_less_1s_ago", AS_OF - 7 * DAY + SECOND)
    cart_then("cart_after_as_of", AS_OF + HOUR)
    # One abandoned cart is enough, even when another cart was followed by an order.
    in_second_cart = cart_then("second_cart_abandoned", AS_OF - 3 * DAY, 2 * HOUR)
    s.event(in_second_cart, cart, AS_OF - 2 * DAY)
    # Only the order event counts: a checkout start is not an order.
    in_checkout = cart_then("checkout_only", AS_OF - 2 * DAY)
    s.event(in_checkout, "checkout_start", AS_OF - 2 * DAY + HOUR)
    # The rule reads events, so an order row without an order event does not save the cart.
    in_order_row = cart_then("order_row_without_event", AS_OF - 2 * DAY)
    s.order(in_order_row, AS_OF - 2 * DAY + HOUR)
    s.customer("no_events")
    s.customer("views_only")
    s.event("views_only", "product_view", AS_OF - 2 * DAY)

    # Consent: subscribed now on e-mail; SMS for two, one without a phone number.
    for name in (in_order_25h_later, in_24h_ago, in_same_instant, in_just_inside):
        s.consent(name, "email", "subscribed")
    s.consent(in_order_25h_later, "sms", "subscribed")
    s.consent(in_24h_ago, "sms", "subscribed")
    s.consent(in_same_instant, "sms", "subscribed")  # no phone: not SMS sendable
    s.consent(in_just_inside, "email", "unsubscribed", AS_OF - DAY)  # unsubscribed since
    s.consent(in_order_before, "email", "subscribed", AS_OF + HOUR)  # after as_of: not yet

    check_preset(settings, s, "abandoned-cart",
                 members={in_order_25h_later, in_same_instant, in_order_before, in_24h_ago,
                          in_just_inside, in_second_cart, in_checkout, in_order_row},
                 email={in_order_25h_later, in_24h_ago, in_same_instant},
                 sms={in_order_25h_later, in_24h_ago})


# ---------------------------------------------------------------- browse abandonment
# Viewed a product in the last 3 days, no add-to-cart within 24 hours after, and no valid
# purchase in the last 3 days.


def test_browse_abandonment(settings):
    s = Store()

    def viewed(name: str, at: datetime, *cart_after: timedelta, **customer) -> str:
        s.customer(name, **customer)
        s.event(name, "product_view", at)
        for gap in cart_after:
            s.event(name, "add_to_cart", at + gap)
        return name

    in_plain = viewed("view_30h_ago", AS_OF - 30 * HOUR, phone="+4915100003")
    viewed("cart_5h_later", AS_OF - 30 * HOUR, 5 * HOUR)
    in_late_cart = viewed("cart_25h_later", AS_OF - 50 * HOUR, 25 * HOUR)
    viewed("view_20h_ago", AS_OF - 20 * HOUR)  # 24 hours have not passed
    viewed("view_exactly_3_days_ago", AS_OF - 3 * DAY)  # the window starts after it
    viewed("view_4_days_ago", AS_OF - 4 * DAY)
    in_order_event = viewed("view_then_order_event", AS_OF - 2 * DAY)
    s.event(in_order_event, "order", AS_OF - 2 * DAY + HOUR)  # an order event is no cart
    # Purchases in the last 3 days take a customer out; other orders do not.
    viewed("bought_yesterday", AS_OF - 2 * DAY)
    s.order("bought_yesterday", AS_OF - DAY)
    in_old_order = viewed("bought_4_days_ago", AS_OF - 2 * DAY)
    s.order(in_old_order, AS_OF - 4 * DAY)
    in_order_at_edge = viewed("bought_exactly_3_days_ago", AS_OF - 2 * DAY)
    s.order(in_order_at_edge, AS_OF - 3 * DAY)
    in_cancelled = viewed("cancelled_yesterday", AS_OF - 2 * DAY)
    s.order(in_cancelled, AS_OF - DAY, status="cancelled")
    in_refunded = viewed("refunded_yesterday", AS_OF - 2 * DAY)
    s.order(in_refunded, AS_OF - DAY, status="refunded")
    in_return = viewed("return_yesterday", AS_OF - 2 * DAY)
    s.order(in_return, AS_OF - DAY, total=-20.0, kind="return")
    in_guest = viewed("guest_checkout_yesterday", AS_OF - 2 * DAY)  # guests are not counted
    s.order(in_guest, AS_OF - DAY, is_guest=True)
    in_future_order = viewed("orders_after_as_of", AS_OF - 2 * DAY)
    s.order(in_future_order, AS_OF + HOUR)

    s.consent(in_plain, "email", "subscribed")
    s.consent(in_plain, "sms", "subscribed")
    s.consent(in_late_cart, "email", "subscribed", AS_OF - 10 * DAY)
    s.consent(in_late_cart, "email", "subscribed", AS_OF - 5 * DAY)
    s.consent(in_old_order, "email", "unsubscribed", AS_OF - 10 * DAY)  # never subscribed
    s.consent(in_cancelled, "sms", "subscribed")  # no phone
    s.customer("no_events")

    check_preset(settings, s, "browse-abandonment",
                 members={in_plain, in_late_cart, in_order_event, in_old_order,
                          in_order_at_edge, in_cancelled, in_refunded, in_return, in_guest,
                          in_future_order},
                 email={in_plain, in_late_cart}, sms={in_plain})


# ---------------------------------------------------------------- high intent
# (Added to cart, or viewed 3+ products, in the last 14 days) and no purchase in 30 days.


def test_high_intent_no_recent_order(settings):
    s = Store()

    def did(name: str, *moments: tuple[str, datetime], **customer) -> str:
        s.customer(name, **customer)
        for event_type, at in moments:
            s.event(name, event_type, at)
        return name

    view, cart = "product_view", "add_to_cart"
    in_cart = did("cart_13_days_ago", (cart, AS_OF - 13 * DAY), phone="+4915100004")
    did("cart_exactly_14_days_ago", (cart, AS_OF - 14 * DAY))
    did("cart_after_as_of", (cart, AS_OF + HOUR))
    in_views = did("three_views", (view, AS_OF - DAY), (view, AS_OF - 2 * DAY),
                   (view, AS_OF - 13 * DAY))
    did("two_views", (view, AS_OF - DAY), (view, AS_OF - 2 * DAY))
    did("third_view_too_old", (view, AS_OF - DAY), (view, AS_OF - 2 * DAY),
        (view, AS_OF - 15 * DAY))
    did("third_view_after_as_of", (view, AS_OF - DAY), (view, AS_OF - 2 * DAY),
        (view, AS_OF + HOUR))
    did("page_views_only", *[("page_view", AS_OF - k * DAY) for k in range(1, 6)])
    in_two_views_and_cart = did("two_views_and_a_cart", (view, AS_OF - DAY),
                                (view, AS_OF - 2 * DAY), (cart, AS_OF - 3 * DAY))
    # A purchase in the last 30 days takes a customer out.
    did("bought_29_days_ago", (cart, AS_OF - DAY))
    s.order("bought_29_days_ago", AS_OF - 29 * DAY)
    did("bought_just_now", (cart, AS_OF - DAY))
    s.order("bought_just_now", AS_OF)
    in_edge = did("bought_exactly_30_days_ago", (cart, AS_OF - DAY))
    s.order(in_edge, AS_OF - 30 * DAY)
    in_old = did("bought_31_days_ago", (cart, AS_OF - DAY))
    s.order(in_old, AS_OF - 31 * DAY)
    in_cancelled = did("cancelled_5_days_ago", (cart, AS_OF - DAY))
    s.order(in_cancelled, AS_OF - 5 * DAY, status="cancelled")
    in_after = did("bought_after_as_of", (cart, AS_OF - DAY))
    s.order(in_after, AS_OF + DAY)
    s.customer("no_events")

    s.consent(in_cart, "email", "subscribed")
    s.consent(in_cart, "sms", "subscribed")
    s.consent(in_views, "email", "subscribed", AS_OF - 10 * DAY)
    s.consent(in_views, "email", "unsubscribed", AS_OF - 5 * DAY)
    s.consent(in_views, "email", "subscribed", AS_OF - DAY)  # back again
    s.consent(in_old, "sms", "subscribed")  # no phone
    s.consent(in_edge, "email", "subscribed")
    s.customer("email_only_subscriber")  # subscribed but not matched: not counted
    s.consent("email_only_subscriber", "email", "subscribed")

    check_preset(settings, s, "high-intent-no-recent-order",
                 members={in_cart, in_views, in_two_views_and_cart, in_edge, in_old,
                          in_cancelled, in_after},
                 email={in_cart, in_views, in_edge}, sms={in_cart})


# ---------------------------------------------------------------- lapsed VIPs
# Spent 500 or more in all (valid purchases up to as_of), none in the last 120 days.


def test_lapsed_vips(settings):
    s = Store()

    def bought(name: str, *orders: tuple, **customer) -> str:
        """``orders``: (days ago, total) or (days ago, total, {order fields})."""
        s.customer(name, **customer)
        for days_ago, total, *fields in orders:
            s.order(name, AS_OF - days_ago * DAY, total, **(fields[0] if fields else {}))
        return name

    in_500 = bought("spent_500_00", (200, 500.0), phone="+4915100005")
    bought("spent_499_99", (200, 499.99))
    in_two_orders = bought("spent_300_plus_200", (300, 300.0), (200, 200.0))
    bought("cancelled_order_not_counted", (300, 450.0), (200, 100.0, {"status": "cancelled"}))
    bought("refunded_order_not_counted", (300, 450.0), (200, 100.0, {"status": "refunded"}))
    bought("guest_order_not_counted", (300, 450.0), (200, 100.0, {"is_guest": True}))
    in_return = bought("return_does_not_subtract", (300, 550.0),
                       (250, -100.0, {"kind": "return"}))
    in_120 = bought("last_order_exactly_120_days_ago", (300, 300.0), (120, 300.0))
    bought("last_order_119_days_ago", (300, 300.0), (119, 300.0))
    bought("small_recent_order", (300, 600.0), (10, 50.0))
    in_cancelled_recent = bought("cancelled_recent_order", (300, 600.0),
                                 (10, 50.0, {"status": "cancelled"}))
    bought("revenue_after_as_of_not_counted", (300, 400.0), (-1, 200.0))
    s.customer("never_bought")

    s.consent(in_500, "email", "subscribed")
    s.consent(in_500, "sms", "subscribed")
    s.consent(in_two_orders, "email", "subscribed", consent_event_id="k-a")
    s.consent(in_two_orders, "email", "unsubscribed", consent_event_id="k-b")  # tie: later id
    s.consent(in_return, "email", "unsubscribed", consent_event_id="k-c")
    s.consent(in_return, "email", "subscribed", consent_event_id="k-d")  # tie: later id
    s.consent(in_120, "sms", "subscribed", AS_OF - DAY)  # no phone

    check_preset(settings, s, "lapsed-vips",
                 members={in_500, in_two_orders, in_return, in_120, in_cancelled_recent},
                 email={in_500, in_return}, sms={in_500})


# ---------------------------------------------------------------- new subscribers
# Signed up in the last 30 days, subscribed to e-mail now, no valid purchase up to as_of.


def test_new_subscribers_without_purchase(settings):
    s = Store()
    recent = AS_OF - 10 * DAY

    def signed(name: str, at: datetime | None = recent, subscribe: bool = True,
               **customer) -> str:
        s.customer(name, signed_up_at=at, **customer)
        if subscribe:
            s.consent(name, "email", "subscribed", recent)
        return name

    in_plain = signed("signed_10_days_ago", phone="+4915100006")
    s.consent(in_plain, "sms", "subscribed", recent)
    signed("signed_exactly_30_days_ago", AS_OF - 30 * DAY)
    in_edge = signed("signed_30_days_less_1s_ago", AS_OF - 30 * DAY + SECOND)
    signed("signed_31_days_ago", AS_OF - 31 * DAY)
    signed("signed_after_as_of", AS_OF + DAY)
    signed("signup_date_unknown", None)
    signed("never_subscribed", subscribe=False)
    signed("sms_only", subscribe=False, phone="+4915100007")
    s.consent("sms_only", "sms", "subscribed", recent)
    signed("unsubscribed_since")
    s.consent("unsubscribed_since", "email", "unsubscribed", recent + DAY)
    in_resubscribed = signed("resubscribed", subscribe=False)
    s.consent(in_resubscribed, "email", "subscribed", recent)
    s.consent(in_resubscribed, "email", "unsubscribed", recent + DAY)
    s.consent(in_resubscribed, "email", "subscribed", recent + 2 * DAY)
    signed("subscribed_after_as_of", subscribe=False)
    s.consent("subscribed_after_as_of", "email", "subscribed", AS_OF + HOUR)
    signed("tie_won_by_unsubscribe", subscribe=False)
    s.consent("tie_won_by_unsubscribe", "email", "subscribed", recent, "k-1")
    s.consent("tie_won_by_unsubscribe", "email", "unsubscribed", recent, "k-2")
    in_tie = signed("tie_won_by_subscribe", subscribe=False)
    s.consent(in_tie, "email", "unsubscribed", recent, "k-3")
    s.consent(in_tie, "email", "subscribed", recent, "k-4")
    signed("bought")
    s.order("bought", recent + DAY)
    in_cancelled = signed("only_a_cancelled_order")
    s.order(in_cancelled, recent + DAY, status="cancelled")
    in_after = signed("bought_after_as_of")
    s.order(in_after, AS_OF + HOUR)
    in_no_address = signed("subscribed_without_address", email=None)
    in_empty_address = signed("subscribed_with_empty_address", email="")

    check_preset(settings, s, "new-subscribers-without-purchase",
                 members={in_plain, in_edge, in_resubscribed, in_tie, in_cancelled,
                          in_after, in_no_address, in_empty_address},
                 email={in_plain, in_edge, in_resubscribed, in_tie, in_cancelled, in_after},
                 sms={in_plain})


# ---------------------------------------------------------------- one-time buyers
# Exactly one valid purchase up to as_of, made between 30 and 90 days ago.


def test_one_time_buyers(settings):
    s = Store()

    def bought(name: str, *moments: datetime, **customer) -> str:
        s.customer(name, **customer)
        for at in moments:
            s.order(name, at)
        return name

    in_60 = bought("one_order_60_days_ago", AS_OF - 60 * DAY, phone="+4915100008")
    in_30 = bought("one_order_exactly_30_days_ago", AS_OF - 30 * DAY)
    bought("one_order_30_days_less_1s_ago", AS_OF - 30 * DAY + SECOND)
    bought("one_order_exactly_90_days_ago", AS_OF - 90 * DAY)
    in_89 = bought("one_order_90_days_less_1s_ago", AS_OF - 90 * DAY + SECOND)
    bought("one_order_10_days_ago", AS_OF - 10 * DAY)
    bought("one_order_120_days_ago", AS_OF - 120 * DAY)
    bought("two_orders", AS_OF - 60 * DAY, AS_OF - 200 * DAY)
    bought("two_orders_same_day", AS_OF - 60 * DAY, AS_OF - 60 * DAY + HOUR)
    in_cancelled = bought("one_order_and_a_cancelled_one", AS_OF - 60 * DAY)
    s.order(in_cancelled, AS_OF - 50 * DAY, status="cancelled")
    in_future = bought("second_order_after_as_of", AS_OF - 60 * DAY)
    s.order(in_future, AS_OF + DAY)
    in_return = bought("one_order_and_its_return", AS_OF - 60 * DAY)
    s.order(in_return, AS_OF - 55 * DAY, total=-100.0, kind="return")
    bought("only_a_refunded_order")
    s.order("only_a_refunded_order", AS_OF - 60 * DAY, status="refunded")
    bought("only_a_guest_order")
    s.order("only_a_guest_order", AS_OF - 60 * DAY, is_guest=True)
    bought("never_bought")

    s.consent(in_60, "email", "subscribed")
    s.consent(in_60, "sms", "subscribed")
    s.consent(in_30, "email", "subscribed")
    s.consent(in_30, "sms", "unsubscribed", AS_OF - DAY)  # never subscribed to SMS
    s.consent(in_89, "email", "subscribed")
    s.consent(in_89, "email", "unsubscribed", AS_OF - DAY)

    check_preset(settings, s, "one-time-buyers",
                 members={in_60, in_30, in_89, in_cancelled, in_future, in_return},
                 email={in_60, in_30}, sms={in_60})


# ---------------------------------------------------------------- winback candidates
# Two or more valid purchases, the last over 180 days ago, subscribed to e-mail now.


def test_winback_candidates(settings):
    s = Store()

    def repeat_buyer(name: str, last_days_ago: int = 200, subscribe: bool = True,
                     **customer) -> str:
        s.customer(name, **customer)
        s.order(name, AS_OF - 300 * DAY)
        s.order(name, AS_OF - last_days_ago * DAY)
        if subscribe:
            s.consent(name, "email", "subscribed")
        return name

    in_plain = repeat_buyer("two_orders_200_days_ago", phone="+4915100009")
    s.consent(in_plain, "sms", "subscribed")
    in_180 = repeat_buyer("last_order_exactly_180_days_ago", 180)
    repeat_buyer("last_order_179_days_ago", 179)
    repeat_buyer("unsubscribed", subscribe=True)
    s.consent("unsubscribed", "email", "unsubscribed", AS_OF - 30 * DAY)
    repeat_buyer("never_subscribed", subscribe=False)
    repeat_buyer("sms_subscriber_only", subscribe=False, phone="+4915100010")
    s.consent("sms_subscriber_only", "sms", "subscribed")
    repeat_buyer("subscribed_after_as_of", subscribe=False)
    s.consent("subscribed_after_as_of", "email", "subscribed", AS_OF + HOUR)
    in_future = repeat_buyer("ordered_again_after_as_of")
    s.order(in_future, AS_OF + DAY)
    repeat_buyer("ordered_again_recently")
    s.order("ordered_again_recently", AS_OF - 10 * DAY)
    in_cancelled_recent = repeat_buyer("cancelled_recent_order")
    s.order(in_cancelled_recent, AS_OF - 10 * DAY, status="cancelled")
    s.customer("one_order_and_a_cancelled_one")
    s.order("one_order_and_a_cancelled_one", AS_OF - 300 * DAY)
    s.order("one_order_and_a_cancelled_one", AS_OF - 250 * DAY, status="cancelled")
    s.consent("one_order_and_a_cancelled_one", "email", "subscribed")
    in_no_address = repeat_buyer("subscribed_without_address", email=None)

    check_preset(settings, s, "winback-candidates",
                 members={in_plain, in_180, in_future, in_cancelled_recent, in_no_address},
                 email={in_plain, in_180, in_future, in_cancelled_recent}, sms={in_plain})


@pytest.mark.parametrize("slug", sorted(presets()))
def test_an_empty_store_has_no_members(settings, slug):
    s = Store()
    s.customer("lonely")
    check_preset(settings, s, slug, members=set(), email=set(), sms=set())
