"""Segment page benchmark: how long the page takes to show a new count after one edit.

On the warehouse of ``benchmarks/segments.py`` (1,000,000 customers; build it with that
script first), the Segments page runs under Streamlit's AppTest with the lapsed-VIPs
preset loaded. Each round changes the revenue threshold (a value never used before, so no
cache can answer) and times the page's rerun until it shows the new count; in the same
round, the hand-written DuckDB query for the same rule (three figures) is timed on its own
connection, and so is the studio's count alone (the page's overhead is the difference).
The page's time includes everything a user waits for: the script, the compile, the query,
the widgets. Goal: page / raw query at most 1.5 (median over rounds).

    python benchmarks/segment_page.py --home /tmp/segbench-home --rounds 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from segments import hand_sql  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from studio.config import Settings  # noqa: E402
from studio.segments import operations  # noqa: E402
from studio.segments.definition import parse_definition  # noqa: E402
from studio.warehouse import connect_reader  # noqa: E402

PAGE = REPO_ROOT / "pages" / "segments.py"
PRESET_THRESHOLD = ">= 500"


def revenue_widget(app: AppTest):
    """The number input of the preset's first condition (revenue at least ...)."""
    row = app.session_state["segment_tree"]["children"][0]
    key = f"{row['id']}-{row['kind']}-value"
    return next(w for w in app.number_input if w.key and w.key.startswith(key))


def matched_on_page(app: AppTest) -> int:
    return next(int(m.value.replace(",", "")) for m in app.metric if m.label == "Matched")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True,
                        help="studio home holding the benchmark warehouse")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ["STUDIO_HOME"] = str(args.home)
    os.environ.pop("STUDIO_STATE_URL", None)
    settings = Settings(home=args.home, state_url=f"sqlite:///{args.home / 'state.db'}")
    con = connect_reader(settings)
    as_of = operations.default_as_of(con)

    app = AppTest.from_file(str(PAGE), default_timeout=600).run()
    app.selectbox(key="segment_source").set_value("preset:lapsed-vips")
    app.button(key="segment_load").click().run()
    if app.exception or app.error:
        raise SystemExit(f"the page failed: {[e.value for e in [*app.exception, *app.error]]}")
    print(f"page loaded on {args.home}; {matched_on_page(app):,} lapsed VIPs as of {as_of}")

    page_seconds, sql_seconds, count_seconds = [], [], []
    for round_number in range(args.rounds + 1):  # round 0 warms up, untimed
        threshold = 600 + 37 * round_number
        widget = revenue_widget(app)
        started = time.perf_counter()
        widget.set_value(float(threshold)).run()
        page = time.perf_counter() - started
        query = hand_sql("lapsed-vips", as_of, True).replace(PRESET_THRESHOLD,
                                                             f">= {threshold}")
        started = time.perf_counter()
        expected = con.execute(query).fetchall()[0][0]
        raw = time.perf_counter() - started
        definition = parse_definition(app.session_state["segment_document"])
        started = time.perf_counter()
        operations.count(con, definition, as_of)
        studio = time.perf_counter() - started
        shown = matched_on_page(app)
        if shown != expected:
            raise SystemExit(f"the page shows {shown:,} for revenue >= {threshold}, "
                             f"the hand-written query {expected:,}")
        if round_number:
            page_seconds.append(page)
            sql_seconds.append(raw)
            count_seconds.append(studio)
            print(f"revenue >= {threshold}: {shown:,} matched; page {page:.3f} s, "
                  f"raw query {raw:.3f} s, studio count alone {studio:.3f} s, "
                  f"page / raw {page / raw:.2f}")
    ratio = statistics.median(p / r for p, r in zip(page_seconds, sql_seconds, strict=True))
    print(f"\nmedian page {statistics.median(page_seconds):.3f} s vs raw query "
          f"{statistics.median(sql_seconds):.3f} s: page / raw = {ratio:.2f} (goal <= 1.5): "
          f"{'met' if ratio <= 1.5 else 'NOT met'}")
    overhead = statistics.median(p - c for p, c in zip(page_seconds, count_seconds, strict=True))
    print(f"the page's own work beyond the studio's count query: median {overhead:.3f} s "
          f"(count alone {statistics.median(count_seconds):.3f} s)")


if __name__ == "__main__":
    main()
