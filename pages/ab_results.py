"""A/B results: read a campaign's test or an uploaded file of units; plan the next test."""

import streamlit as st

from studio import ab_planner, ab_report, ui
from studio.experiments.analysis import AnalysisSettings, analyze_experiment
from studio.experiments.campaigns import DEFAULT_WINDOW_DAYS, aggregate_campaign
from studio.experiments.reading import describe_result
from studio.warehouse import warehouse_version

SOURCES = {"campaign": "A campaign in the warehouse", "file": "A file of units (CSV)"}
ALPHAS = [0.01, 0.05, 0.10]
ALTERNATIVES = {"two-sided": "Two-sided: any difference", "greater": "One-sided: variant better",
                "less": "One-sided: variant worse"}
CORRECTIONS = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "None"}
NONE = "(none)"
NUMBER = st.column_config.NumberColumn
TABLE_COLUMNS = {
    "metric": "Metric", "arm": "Arm",
    "units": NUMBER("Units", format="localized"), "value": "Value",
    "lift": NUMBER("Lift", format="percent"), "lift_low": NUMBER("Lift low", format="percent"),
    "lift_high": NUMBER("Lift high", format="percent"),
    "difference": NUMBER("Difference", format="%+.4g"),
    "adjusted_p_value": NUMBER("p (adjusted)", format="%.3g"),
    "chance_to_win": "Chance to win", "reading": "Reading",
}


# ---------------------------------------------------------------- cached reads


@st.cache_data(max_entries=32, show_spinner=False)
def campaign_data(home: str, version, campaign_id: str, window_days: int,
                  cap_percentile: float | None, cap_nonzero: bool, _con):
    # Keys: the home and the warehouse publication; the connection is not part of them.
    return aggregate_campaign(_con, campaign_id, window_days=window_days,
                              cap_percentile=cap_percentile, cap_nonzero=cap_nonzero)


@st.cache_data(max_entries=8, show_spinner=False)
def uploaded_frame(content: bytes, name: str):
    return ab_report.read_upload(content, name)


# ---------------------------------------------------------------- inputs


def campaign_source() -> dict | None:
    """The campaign picker; ``None`` (with the reason shown) when there is nothing to pick."""
    con = ui.reader()
    if con is None:
        ui.show_empty_state()
        st.caption("You can still upload a file of units, or plan a test in the Planner tab.")
        return None
    choices = ab_report.campaign_choices(con)
    if not choices:
        st.info("No campaign in the warehouse is an A/B test (one with two or more variants); "
                "upload a file of units instead.", icon=":material/science:")
        return None
    campaign_id = st.selectbox("Campaign", list(choices), format_func=choices.get,
                               key="ab_campaign")
    return {"con": con, "campaign_id": campaign_id}


def file_source() -> dict | None:
    """The upload and its pickers; ``None`` until a file and a metric are chosen."""
    upload = st.file_uploader("File of units: a CSV with one row per unit", type=["csv"],
                              key="ab_upload")
    if upload is None:
        st.info("Upload a CSV with a header and one row per unit: a column naming each unit's "
                "variant and one or more metric columns (0/1 for rates, numbers for means).",
                icon=":material/upload_file:")
        return None
    content = upload.getvalue()
    frame = uploaded_frame(content, upload.name)
    variant_column, control_column = st.columns(2)
    variant_col = variant_column.selectbox(
        "Variant column", ab_report.variant_columns(frame, upload.name), key="ab_file_variant")
    arms = ab_report.arm_names(frame, variant_col)
    control = control_column.selectbox("Control arm", arms,
                                       index=arms.index(ab_report.guess_control(arms)),
                                       key="ab_file_control")
    others = [column for column in frame.columns if column != variant_col]
    chosen = st.multiselect("Metric columns", others, key="ab_file_metrics",
                            placeholder="Pick one or more")
    covariate_column, unit_column, split_column = st.columns(3)
    covariate = covariate_column.selectbox(
        "Pre-period covariate (CUPED)", [NONE, *others], key="ab_file_covariate",
        help="A number known before the test, such as past spend; it narrows the intervals.")
    unit_col = unit_column.selectbox("Unit id column", [NONE, *others], key="ab_file_unit",
                                     help="Spots units in several arms and repeated rows.")
    split = split_column.text_input("Planned split", key="ab_file_split",
                                    placeholder="Equal, or e.g. A=0.5, B=0.5")
    if not chosen:
        st.info("Pick at least one metric column to analyse.", icon=":material/rule:")
        return None
    metrics = ab_report.file_metrics(frame, chosen)
    st.caption("Read as " + "; ".join(
        f"{m.name}: {'a rate (0/1)' if m.kind == 'binary' else 'a mean'}" for m in metrics)
        + ".")
    return {"content": content, "name": upload.name, "variant_col": variant_col,
            "control": control, "metrics": metrics,
            "covariate": None if covariate == NONE else covariate,
            "unit_col": None if unit_col == NONE else unit_col,
            "split": ab_report.parse_split(split)}


def analysis_inputs(campaign: bool) -> tuple[AnalysisSettings, dict]:
    """The settings expander: how to read the test, and how to aggregate it."""
    with st.expander("Settings", icon=":material/tune:"):
        first = st.columns(3)
        window = DEFAULT_WINDOW_DAYS
        if campaign:
            window = first[0].number_input(
                "Attribution window (days)", min_value=1, max_value=90,
                value=DEFAULT_WINDOW_DAYS, step=1, key="ab_window",
                help="Orders count when placed within this many days after the send.")
        cap = first[1].number_input(
            "Cap revenue at percentile", min_value=50.0, max_value=100.0, value=None,
            step=0.1, format="%.1f", placeholder="No cap", key="ab_cap",
            help="Winsorise revenue (a file's mean metrics) at this pooled percentile, e.g. "
                 "99.9, so one huge order cannot decide the test.")
        nonzero = first[2].toggle("Percentile of buyers only", key="ab_cap_nonzero",
                                  help="Take the percentile over non-zero values only.")
        second = st.columns(3)
        alpha = second[0].selectbox("Significance level (alpha)", ALPHAS, index=1,
                                    format_func=lambda a: f"{a:g} ({1 - a:.0%} intervals)",
                                    key="ab_alpha")
        alternative = second[1].selectbox("Test", list(ALTERNATIVES),
                                          format_func=ALTERNATIVES.get, key="ab_alternative")
        correction = second[2].selectbox("Multiple-comparison correction", list(CORRECTIONS),
                                         format_func=CORRECTIONS.get, key="ab_correction")
    return (AnalysisSettings(alpha=alpha, alternative=alternative, correction=correction),
            {"window_days": int(window), "cap_percentile": cap, "cap_nonzero": nonzero})


# ---------------------------------------------------------------- the result


def show_headline(result) -> None:
    """Value, lift and chance to win of the headline metric, one card per arm."""
    cards = ab_report.headline_cards(result)
    for column, card in zip(st.columns(len(cards)), cards, strict=True):
        column.metric(card["label"], card["value"], delta=card["delta"], border=True,
                      delta_color="inverse" if card["inverse"] else "normal",
                      help=None if card["delta"] is None else "Relative lift against control.")
        if card["chance_to_win"] is not None:
            column.caption(f"Chance to win: **{card['chance_to_win']}**")


def show_result(result) -> None:
    reading = describe_result(result)
    if result.srm.flagged:
        st.error(ab_report.srm_banner(result), icon=":material/warning:")
    else:
        st.success(reading[0], icon=":material/check_circle:")
    for warning in result.warnings:
        st.warning(warning, icon=":material/report:")
    show_headline(result)

    st.subheader("Lifts")
    st.plotly_chart(ab_report.lift_figure(result), key="ab_lift_chart")
    st.caption("Each row is a variant against control on one metric: the dot is the relative "
               "lift, the bar its interval, the dashed line no difference. Metrics whose "
               "control is at zero have no relative lift and appear in the table only.")

    st.subheader("Per arm")
    st.dataframe(ab_report.arm_table(result), hide_index=True, key="ab_table",
                 column_config=TABLE_COLUMNS, placeholder="—", height="content")
    st.download_button("Download the results (CSV)", ab_report.results_csv(result),
                       file_name=ab_report.download_name(result), mime="text/csv",
                       icon=":material/download:", key="ab_download")

    st.subheader("Reading")
    st.markdown("\n".join(f"- {line}" for line in reading[1:]))


def show_results() -> None:
    source = st.segmented_control("Source", list(SOURCES), format_func=SOURCES.get,
                                  default="campaign", required=True, key="ab_source")
    campaign = source == "campaign"
    chosen = campaign_source() if campaign else file_source()
    settings, aggregation = analysis_inputs(campaign)
    if chosen is None:
        return
    with st.spinner("Analysing…"):
        if campaign:
            home = ui.settings()
            data = campaign_data(str(home.home), warehouse_version(home), chosen["campaign_id"],
                                 _con=chosen["con"], **aggregation)
            result = analyze_experiment(data, settings)
        else:
            result = ab_report.analyze_upload(
                chosen["content"], chosen["name"], variant_col=chosen["variant_col"],
                control=chosen["control"], metrics=chosen["metrics"], settings=settings,
                covariate=chosen["covariate"], unit_col=chosen["unit_col"],
                cap_percentile=aggregation["cap_percentile"],
                cap_nonzero=aggregation["cap_nonzero"], split=chosen["split"])
    if campaign:
        st.caption(f"{data.source['campaign']} ({data.source['channel']}): each recipient "
                   f"counts once, in the arm of their first send; orders count within "
                   f"{aggregation['window_days']} days of it.")
    show_result(result)


# ---------------------------------------------------------------- the planner


def show_planner() -> None:
    st.caption("Size the next test of a rate (conversion, click, open): how many recipients "
               "a lift needs, or which lift the recipients you have can detect.")
    question = st.segmented_control(
        "Question", ["size", "lift"], default="size", required=True, key="ab_plan_question",
        format_func={"size": "Recipients needed for a lift",
                     "lift": "Lift my recipients can detect"}.get)
    first = st.columns(3)
    baseline = first[0].number_input("Baseline rate (%)", min_value=0.01, max_value=99.0,
                                     value=3.0, step=0.1, format="%.2f", key="ab_plan_baseline",
                                     help="The control's expected rate, e.g. 3 for 3%.")
    if question == "size":
        relative = first[2].segmented_control(
            "Lift given as", ["relative", "absolute"], default="relative", required=True,
            key="ab_plan_mde_unit",
            format_func={"relative": "Relative (%)", "absolute": "Points"}.get) == "relative"
        mde = first[1].number_input(
            "Smallest lift worth detecting" + (" (%)" if relative else " (points)"),
            min_value=0.01, value=10.0 if relative else 0.3, step=0.1, format="%.2f",
            key=f"ab_plan_mde_{'relative' if relative else 'absolute'}",
            help="Relative: 10 means a tenth more than the baseline. Points: 0.3 means from "
                 "3.0% to 3.3%.")
    else:
        units = first[1].number_input("Recipients per arm", min_value=2, value=10_000,
                                      step=1_000, key="ab_plan_units")
    second = st.columns(3)
    power = second[0].number_input("Power (%)", min_value=50.0, max_value=99.9, value=80.0,
                                   step=5.0, format="%.1f", key="ab_plan_power",
                                   help="The chance to detect the lift if it is real.")
    alpha = second[1].selectbox("Significance level (alpha)", ALPHAS, index=1,
                                key="ab_plan_alpha")
    arms = second[2].number_input("Arms, control included", min_value=2, max_value=20, value=2,
                                  step=1, key="ab_plan_arms")

    if question == "size":
        plan = ab_planner.plan_for_lift(baseline, mde, relative=relative, power_percent=power,
                                        alpha=alpha, arms=int(arms))
    else:
        plan = ab_planner.plan_for_size(baseline, int(units), power_percent=power, alpha=alpha,
                                        arms=int(arms))
    cards = st.columns(3)
    if question == "size":
        cards[0].metric("Recipients per arm", ui.format_count(plan.units_per_arm), border=True)
        cards[1].metric("Recipients in all", ui.format_count(plan.total_units), border=True)
    else:
        cards[0].metric("Detectable lift", f"{plan.relative_effect:+.1%}", border=True,
                        help="The smallest relative rise detected with this power.")
        cards[1].metric("Detectable lift (points)", f"{plan.absolute_effect * 100:+.2f}",
                        border=True)
    cards[2].metric("Rate to detect", f"{plan.treatment_rate:.2%}", border=True)
    st.markdown(ab_planner.describe_plan(plan))


st.title("A/B results")
results_tab, planner_tab = st.tabs(["Results", "Planner"], key="ab_tab", on_change="rerun")
if results_tab.open:
    with results_tab, ui.user_errors():
        show_results()
if planner_tab.open:
    with planner_tab, ui.user_errors():
        show_planner()
