"""The A/B results page as Streamlit runs it (AppTest), checked against the library and
against independent counts: SQL for the arms, scipy for the split, the power formula."""

from __future__ import annotations

import io
import json
import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats
from streamlit.testing.v1 import AppTest

from studio.experiments.analysis import AnalysisSettings, analyze_experiment
from studio.experiments.campaigns import aggregate_campaign
from studio.experiments.power import compute_power, required_units_per_arm
from studio.experiments.reading import describe_result, describe_srm, format_share, result_frame
from studio.warehouse import connect_reader
from tests.app.page_checks import assert_clean, record_downloads, stored_file
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.app

PAGE = "../../pages/ab_results.py"  # relative to this file, as AppTest.from_file resolves it
TIMEOUT = 60
CAMPAIGN = "CMP004"  # three arms (A control, B, C), e-mail, a 34/33/33 plan
NUMBERS = ["units", "lift", "lift_low", "lift_high", "difference", "adjusted_p_value"]


def open_page(home, monkeypatch) -> AppTest:
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()


def library_result(settings, campaign_id: str, analysis: AnalysisSettings | None = None,
                   **aggregation):
    con = connect_reader(settings)
    try:
        return analyze_experiment(aggregate_campaign(con, campaign_id, **aggregation),
                                  analysis or AnalysisSettings())
    finally:
        con.close()


def shown_table(app: AppTest) -> pl.DataFrame:
    [table] = app.dataframe
    return pl.from_pandas(table.value)


def assert_table_matches(app: AppTest, result) -> None:
    """The page's table holds the library's numbers, row for row."""
    shown, expected = shown_table(app), result_frame(result).fill_nan(None)
    assert shown["metric"].to_list() == expected["metric"].to_list()
    assert shown["arm"].to_list() == expected["arm"].to_list()
    for column in NUMBERS:
        for got, want in zip(shown[column].to_list(), expected[column].to_list(), strict=True):
            if want is None:
                assert got is None or math.isnan(got), column
            else:
                assert got == pytest.approx(want, rel=1e-12, abs=1e-15), column
    assert shown["chance_to_win"].to_list() == [
        None if chance is None else format_share(chance) for chance in expected["chance_to_win"]]


def chart_lifts(app: AppTest) -> dict[str, float]:
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    return {label: x for trace in spec["data"] for label, x in zip(trace["y"], trace["x"],
                                                                    strict=True)}


def pick_campaign(app: AppTest, campaign_id: str) -> AppTest:
    app.selectbox(key="ab_campaign").set_value(campaign_id).run()
    assert_clean(app)
    return app


def upload(app: AppTest, name: str, text: str) -> AppTest:
    app.segmented_control(key="ab_source").set_value("file").run()
    app.file_uploader(key="ab_upload").set_value((name, text.encode(), "text/csv")).run()
    return app


def units_csv(counts: dict[str, tuple[int, int]]) -> str:
    """A file of units: per arm (units, converters), the converters first."""
    lines = ["user,variant,converted"]
    for arm, (units, converters) in counts.items():
        lines += [f"{arm}{i},{arm},{int(i < converters)}" for i in range(units)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- a campaign


def test_a_campaign_shows_the_library_figures(demo_home, monkeypatch):
    app = pick_campaign(open_page(demo_home.home, monkeypatch), CAMPAIGN)
    result = library_result(demo_home, CAMPAIGN)
    assert_table_matches(app, result)

    # Independently of the library: each recipient once, in the arm of their first send.
    con = connect_reader(demo_home)
    try:
        per_arm = dict(con.execute(
            "SELECT variant, count(*) FROM (SELECT customer_id, arg_min(variant, sent_at) AS "
            "variant FROM campaign_sends WHERE campaign_id = ? GROUP BY customer_id) "
            "WHERE variant IS NOT NULL GROUP BY variant", [CAMPAIGN]).fetchall())
    finally:
        con.close()
    counts = [per_arm[arm] for arm in "ABC"]
    assert shown_table(app).filter(pl.col("metric") == "open rate")["units"].to_list() == counts
    oracle = stats.chisquare(counts, [sum(counts) * w for w in (0.34, 0.33, 0.33)])
    assert result.srm.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert [s.value for s in app.success] == [describe_srm(result)]
    assert f"p = {oracle.pvalue:.3g}" in app.success[0].value

    opens = shown_table(app).filter(pl.col("metric") == "open rate")
    rates = [s.value for s in result.summaries if s.metric == "open_rate"]
    assert opens["value"].to_list() == [f"{rate:.2%}" for rate in rates]

    lifts = chart_lifts(app)
    expected = {f"{c.metric.title} · {c.variant}": c.relative.estimate
                for c in result.comparisons if math.isfinite(c.relative.estimate)}
    assert lifts == pytest.approx(expected, rel=1e-12)
    assert len(lifts) >= 10  # every metric and variant but a control at zero

    cards = {m.label: m for m in app.metric}
    conversion = result.comparison("conversion_rate", "B")
    assert cards["Conversion rate · B"].delta == f"{conversion.relative.estimate:+.1%}"
    reading = describe_result(result)
    assert app.markdown[-1].value == "\n".join(f"- {line}" for line in reading[1:])
    assert any("not significant yet" in line and "more recipients per arm would detect"
               in line for line in reading)
    assert "it is not a p-value" in app.markdown[-1].value
    assert [w.value for w in app.warning] == list(result.warnings)
    assert result.warnings  # CMP004 is small: few clicks and conversions per arm


def test_the_settings_reach_the_analysis(demo_home, monkeypatch):
    app = pick_campaign(open_page(demo_home.home, monkeypatch), CAMPAIGN)
    app.number_input(key="ab_window").set_value(3)
    app.number_input(key="ab_cap").set_value(99.0)
    app.toggle(key="ab_cap_nonzero").set_value(True)
    app.selectbox(key="ab_alpha").set_value(0.1)
    app.selectbox(key="ab_alternative").set_value("greater")
    app.selectbox(key="ab_correction").set_value("bh").run()
    assert_clean(app)
    expected = library_result(
        demo_home, CAMPAIGN, AnalysisSettings(alpha=0.1, alternative="greater", correction="bh"),
        window_days=3, cap_percentile=99.0, cap_nonzero=True)
    default = library_result(demo_home, CAMPAIGN)
    assert_table_matches(app, expected)
    assert expected.comparison("conversion_rate", "B").relative.estimate != (
        default.comparison("conversion_rate", "B").relative.estimate)  # the window moved it
    assert math.isinf(expected.comparison("click_rate", "B").relative.ci_high)  # one-sided


def test_the_download_holds_the_results_table(demo_home, monkeypatch):
    stores = record_downloads(monkeypatch)
    app = pick_campaign(open_page(demo_home.home, monkeypatch), CAMPAIGN)
    button = app.get("download_button")[0]
    assert button.label == "Download the results (CSV)"
    stored = stored_file(stores, button)
    assert stored.filename == f"ab-{CAMPAIGN}.csv"
    expected = result_frame(library_result(demo_home, CAMPAIGN))
    downloaded = pl.read_csv(io.BytesIO(stored.content))
    assert downloaded.columns == expected.columns and downloaded.height == 6 * 3
    # DuckDB adds doubles in parallel, in no fixed order: the last digits may differ
    assert_frame_equal(downloaded, pl.read_csv(io.BytesIO(expected.write_csv().encode())),
                       check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


# ---------------------------------------------------------------- a file


def test_hillstrom_uploaded_gives_its_published_figures(demo_home, monkeypatch):
    stores = record_downloads(monkeypatch)
    content = (SHARED_DATA / "hillstrom" / "hillstrom.csv").read_text()
    app = upload(open_page(demo_home.home, monkeypatch), "hillstrom.csv", content)
    assert app.selectbox(key="ab_file_variant").value == "segment"
    assert app.selectbox(key="ab_file_control").value == "No E-Mail"
    app.multiselect(key="ab_file_metrics").set_value(["conversion", "spend"]).run()
    assert_clean(app)
    table = shown_table(app)
    assert table["arm"].to_list()[:3] == ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    assert table["units"].to_list()[:3] == [21_306, 21_307, 21_387]
    assert table["value"].to_list() == ["0.57%", "1.25%", "0.88%", "0.65", "1.42", "1.08"]
    assert any("conversion: a rate (0/1); spend: a mean" in c.value for c in app.caption)
    assert table["chance_to_win"][1] == ">99%"  # never a false 100%
    # Mens vs No E-Mail spend: (0.48514, 1.05452) by Student's t; Welch's agrees to 1e-5.
    button = app.get("download_button")[0]
    download = pl.read_csv(io.BytesIO(
        stored_file(stores, button).content))
    mens = download.filter((pl.col("metric") == "spend") & (pl.col("arm") == "Mens E-Mail"))
    assert mens["difference_low"][0] == pytest.approx(0.48514, abs=2e-5)
    assert mens["difference_high"][0] == pytest.approx(1.05452, abs=2e-5)


def test_a_sample_ratio_mismatch_raises_the_banner(demo_home, monkeypatch):
    # GrowthBook's vector: 1,000 vs 1,200 units on a 50/50 plan, p = 2.0079e-5.
    app = upload(open_page(demo_home.home, monkeypatch), "srm.csv",
                 units_csv({"A": (1000, 100), "B": (1200, 130)}))
    assert app.selectbox(key="ab_file_variant").value == "variant"
    assert app.selectbox(key="ab_file_control").value == "A"
    app.multiselect(key="ab_file_metrics").set_value(["converted"]).run()
    assert not app.exception
    [banner] = app.error
    assert banner.value.startswith("Sample ratio mismatch: the arms got 1,000 / 1,200 units")
    assert "p-value is 2.0e-05" in banner.value
    table = shown_table(app)
    assert table["units"].to_list() == [1000, 1200]
    assert table["value"].to_list() == ["10.00%", "10.83%"]
    assert table["lift"][1] == pytest.approx((130 / 1200) / (100 / 1000) - 1, rel=1e-12)


def test_a_balanced_file_has_no_banner(demo_home, monkeypatch):
    app = upload(open_page(demo_home.home, monkeypatch), "balanced.csv",
                 units_csv({"A": (1100, 100), "B": (1100, 130)}))
    app.multiselect(key="ab_file_metrics").set_value(["converted"]).run()
    assert_clean(app)
    assert app.success[0].value == "The split 1,100 / 1,100 matches the plan (sample-ratio " \
                                   "check p = 1)."
    lift = app.metric[1]
    assert (lift.label, lift.value, lift.delta) == ("Converted · B", "11.82%", "+30.0%")


def test_a_planned_split_changes_the_check(demo_home, monkeypatch):
    app = upload(open_page(demo_home.home, monkeypatch), "split.csv",
                 units_csv({"A": (1000, 100), "B": (1200, 130)}))
    app.multiselect(key="ab_file_metrics").set_value(["converted"])
    app.text_input(key="ab_file_split").set_value("A=5, B=6").run()
    assert_clean(app)
    assert "matches the plan (sample-ratio check p = 1)" in app.success[0].value


@pytest.mark.parametrize(("text", "message"), [
    ("user,spend\n1,3.5\n2,0\n3,7.25\n4,12\n" + "".join(f"{i},{i}.5\n" for i in range(5, 30)),
     "bad.csv has no column that could name the arms (one with 2 to 20 different values, "
     "such as variant or group); add one and upload the file again."),
    ("converted\n1\n0\n", "bad.csv has only the column 'converted'; an A/B file needs a "
     "column naming each unit's variant and at least one metric column."),
])
def test_a_bad_upload_is_one_sentence(demo_home, monkeypatch, text, message):
    app = upload(open_page(demo_home.home, monkeypatch), "bad.csv", text)
    assert not app.exception
    assert [e.value for e in app.error] == [message]


def test_a_bad_value_names_the_file_and_line(demo_home, monkeypatch):
    text = units_csv({"A": (30, 2), "B": (30, 4)}).replace("A2,A,0", "A2,A,maybe")
    app = upload(open_page(demo_home.home, monkeypatch), "units.csv", text)
    app.multiselect(key="ab_file_metrics").set_value(["converted"]).run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "Column 'converted' must be numeric, but line 4 holds 'maybe'."]


# ---------------------------------------------------------------- the planner


def open_planner(app: AppTest) -> AppTest:
    app.session_state["ab_tab"] = "Planner"
    return app.run()


def metric_value(app: AppTest, label: str) -> str:
    [value] = [m.value for m in app.metric if m.label == label]
    return value


def test_the_planner_gives_the_power_formula(demo_home, monkeypatch):
    app = open_planner(open_page(demo_home.home, monkeypatch))
    assert_clean(app)
    # 3% baseline, +10% relative, 80% power, alpha 0.05, two arms: docs/experiments.md's figure.
    per_arm = required_units_per_arm(0.003, 0.03 * 0.97, 0.033 * 0.967, 0.8, 0.05)
    assert per_arm == 53_208
    assert metric_value(app, "Recipients per arm") == "53,208"
    assert metric_value(app, "Recipients in all") == "106,416"

    app.segmented_control(key="ab_plan_mde_unit").set_value("absolute").run()
    app.number_input(key="ab_plan_mde_absolute").set_value(0.5)
    app.number_input(key="ab_plan_arms").set_value(3).run()
    assert_clean(app)
    per_arm = required_units_per_arm(0.005, 0.03 * 0.97, 0.035 * 0.965, 0.8, 0.025)
    assert metric_value(app, "Recipients per arm") == f"{per_arm:,}"
    assert metric_value(app, "Recipients in all") == f"{3 * per_arm:,}"


def test_the_planner_backwards_detects_a_lift_with_the_stated_power(demo_home, monkeypatch):
    app = open_planner(open_page(demo_home.home, monkeypatch))
    app.segmented_control(key="ab_plan_question").set_value("lift").run()
    app.number_input(key="ab_plan_units").set_value(20_000).run()
    assert_clean(app)
    relative = float(metric_value(app, "Detectable lift").rstrip("%")) / 100
    points = float(metric_value(app, "Detectable lift (points)"))
    assert points / 100 == pytest.approx(0.03 * relative, abs=0.03 * 0.0005 + 0.00005)
    # 20,000 per arm detect the shown lift with 80% power: a little less falls short, a
    # little more (the shown figure's rounding either way) is detected more often.
    for shift in (-0.0005, 0.0005):
        effect = 0.03 * (relative + shift)
        power = compute_power(effect, 0.03 * 0.97, (0.03 + effect) * (0.97 - effect), 20_000)
        assert (power < 0.8) == (shift < 0)
    assert metric_value(app, "Rate to detect") == f"{3 + points:.2f}%"


# ---------------------------------------------------------------- empty states


def test_without_a_warehouse_the_page_says_how_to_load_and_still_plans(settings, monkeypatch):
    app = open_page(settings.home, monkeypatch)
    assert_clean(app)
    assert "No data yet" in app.info[0].value and "studio demo" in app.info[0].value
    assert not app.dataframe
    open_planner(app)
    assert_clean(app)
    assert metric_value(app, "Recipients per arm") == "53,208"


def test_the_router_serves_the_page(demo_home, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(demo_home.home))
    monkeypatch.delenv("STUDIO_STATE_URL", raising=False)
    app = AppTest.from_file("../../studio/app.py", default_timeout=TIMEOUT).run()
    app.switch_page("../pages/ab_results.py").run()
    assert_clean(app)
    assert [t.value for t in app.title] == ["A/B results"]
    assert app.selectbox(key="ab_campaign").value == "CMP050"  # the newest test first
