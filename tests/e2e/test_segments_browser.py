"""The Segments page in a real browser: pick a preset, read its count, change it."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import expect

from studio.segments import library, operations
from studio.segments.definition import definition_to_document, parse_definition
from studio.segments.presets import presets
from studio.warehouse import connect_reader

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def wait_until_idle(page) -> None:
    """Wait until Streamlit has finished running the script after the last action."""
    page.wait_for_selector(IDLE, state="attached")


def count_of(settings, document_or_definition, as_of=None) -> operations.SegmentCount:
    definition = (parse_definition(document_or_definition)
                  if isinstance(document_or_definition, dict) else document_or_definition)
    con = connect_reader(settings)
    try:
        return operations.count(con, definition, as_of, library.resolver(settings))
    finally:
        con.close()


def metric_value(page, label: str):
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
    return metric.get_by_test_id("stMetricValue")


def test_a_preset_counts_and_reacts_to_edits(studio_url, page, demo_home):
    preset = presets()["lapsed-vips"]
    expected = count_of(demo_home, preset)
    raised = definition_to_document(preset)
    raised["rule"]["all"][0]["orders"]["value"] = 1000
    expected_raised = count_of(demo_home, raised)
    expected_june = count_of(demo_home, raised, datetime(2024, 6, 30, 23, 59, 59))
    assert expected.matched > expected_raised.matched  # the edits must show a change
    assert expected_raised.matched != expected_june.matched

    page.goto(studio_url)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Segments").click()
    page.get_by_role("heading", name="Segments").wait_for()
    wait_until_idle(page)
    assert "/segments" in page.url

    source = page.locator(".st-key-segment_source input")
    source.click()
    source.fill("Lapsed VIPs")
    page.get_by_role("option", name="Preset · Lapsed VIPs").click()
    page.locator(".st-key-segment_load button").click()
    expect(metric_value(page, "Matched")).to_have_text(f"{expected.matched:,}")
    wait_until_idle(page)
    assert metric_value(page, "E-mail sendable").inner_text() == f"{expected.email_sendable:,}"
    assert metric_value(page, "SMS sendable").inner_text() == f"{expected.sms_sendable:,}"

    revenue = page.locator("[class*='-orders-value-revenue-gte'] input")
    revenue.fill("1000")
    revenue.press("Enter")
    expect(metric_value(page, "Matched")).to_have_text(f"{expected_raised.matched:,}")
    wait_until_idle(page)

    page.get_by_role("spinbutton", name="month, As of").click()
    page.keyboard.type("06")
    page.keyboard.type("30")
    page.get_by_role("heading", name="Segments").click()  # the date is taken on blur
    expect(metric_value(page, "Matched")).to_have_text(f"{expected_june.matched:,}")
    wait_until_idle(page)
    assert not page.get_by_test_id("stException").count()


def test_explain_in_the_browser(studio_url, page, demo_home):
    con = connect_reader(demo_home)
    try:
        member = operations.members(con, presets()["winback-candidates"])[0]
    finally:
        con.close()
    page.goto(f"{studio_url}/segments")
    page.get_by_role("heading", name="Segments").wait_for()
    wait_until_idle(page)
    source = page.locator(".st-key-segment_source input")
    source.click()
    source.fill("Winback")
    page.get_by_role("option", name="Preset · Winback candidates").click()
    page.locator(".st-key-segment_load button").click()
    metric_value(page, "Matched").wait_for()
    wait_until_idle(page)
    page.get_by_role("tab", name="Explain").click()
    box = page.locator(".st-key-segment_explain_id input")
    box.fill(member)
    box.press("Enter")
    expect(page.get_by_text(f"{member} is in the segment.")).to_be_visible()
    # the group and its three rows; the table may draw after the sentence, so wait for it
    expect(page.get_by_text("yes", exact=True)).to_have_count(4)
    assert not page.get_by_test_id("stException").count()
