"""Models: each target's champion and card, its backtest, scores and drivers; retrain."""

import streamlit as st

from models.backtest import TARGET_KINDS, Target
from models.registry import champion_pointer, load_model, promote, rollback
from studio import jobs, ui
from studio import model_report as report
from studio.errors import UserError
from studio.warehouse import warehouse_version

SECTIONS = ["Card", "Backtest", "Scores", "Drivers"]
SEEN_JOB = "models_seen_job"
KIND, HORIZON, ORIGINS = "models_retrain_kind", "models_retrain_horizon", "models_retrain_origins"
TOP = 15
NUMBER = st.column_config.NumberColumn
SHARE = {"format": "percent"}

state = st.session_state


# ---------------------------------------------------------------- actions (callbacks)




def start_retrain() -> None:
    try:
        target = Target(state[KIND], int(state[HORIZON]))
        report.start_retrain(ui.settings(), target, int(state[ORIGINS]))
    except UserError as error:
        ui.notify("error", str(error))


def start_rescore(target_name: str) -> None:
    try:
        report.start_rescore(ui.settings(), target_name)
    except UserError as error:
        ui.notify("error", str(error))


def make_champion(version: str) -> None:
    try:
        promote(ui.settings(), version)
    except UserError as error:
        ui.notify("error", str(error))
        return
    ui.notify("success", f"{version} is now the champion; score again to use it in segments.")


def roll_back(target_name: str) -> None:
    try:
        pointer = rollback(ui.settings(), target_name)
    except UserError as error:
        ui.notify("error", str(error))
        return
    ui.notify("success", f"{target_name} is back on {pointer['current']}.")




# ---------------------------------------------------------------- cached reads

# Keys: the studio home (one process may serve several), the model version (immutable)
# and the warehouse publication; the connection and card are not part of the key.


@st.cache_resource(max_entries=16, show_spinner=False)
def loaded_model(home: str, version: str):
    return load_model(ui.settings(), version)


@st.cache_data(max_entries=16, show_spinner=False)
def champion_curves(home: str, version: str, warehouse, _con, _card):
    return report.champion_curves(_con, _card)


@st.cache_data(max_entries=4, show_spinner=False)
def scoring_features(home: str, warehouse, _con):
    return report.scoring_features(_con)


@st.cache_data(max_entries=16, show_spinner=False)
def feature_importance(home: str, version: str, warehouse, _con):
    return report.feature_importance(loaded_model(home, version),
                                     scoring_features(home, warehouse, _con))


# ---------------------------------------------------------------- retrain


@st.fragment(run_every=1.0)
def show_progress(job: jobs.Job) -> None:
    if job.running:
        st.progress(job.fraction, text=f"{job.title}: {job.step}")
    else:
        st.rerun()  # the whole page, so the new champion shows


def show_retrain(settings, expanded: bool) -> None:
    job = jobs.current_job(settings)
    running = job is not None and job.running
    with st.expander("Retrain", icon=":material/model_training:",
                     expanded=expanded or running):
        if running:
            show_progress(job)
            st.caption("Training runs in the background: you can leave this page and come "
                       "back.")
        else:
            kind, horizon, origins, button = st.columns([2, 2, 2, 2],
                                                        vertical_alignment="bottom")
            kind.selectbox("Target", TARGET_KINDS, key=KIND, format_func=str.capitalize)
            horizon.number_input("Horizon (days)", min_value=1, max_value=730, value=90,
                                 step=1, key=HORIZON)
            origins.number_input("Backtest origins", min_value=1, max_value=12, value=3,
                                 step=1, key=ORIGINS,
                                 help="Test cutoffs 30 days apart: more give a steadier "
                                      "choice of champion and take longer.")
            button.button("Retrain", type="primary", icon=":material/model_training:",
                          key="models_retrain", on_click=start_retrain, width="stretch")
            st.caption("Backtests every candidate, registers the best as the champion and "
                       "rescores every buyer; a minute or two on a small store.")
    # A finished job's outcome shows once per session, outside the (then closed) expander.
    if job is not None and not running and state.get(SEEN_JOB) != job.started_at:
        state[SEEN_JOB] = job.started_at
        if job.status == "failed":
            st.error(job.message, icon=":material/error:")
        else:
            st.success(job.message, icon=":material/check_circle:")


# ---------------------------------------------------------------- sections


def show_card(settings, card: dict, name: str) -> None:
    for column, figure in zip(st.columns(4), report.headline(card), strict=True):
        column.metric(figure.label, figure.value, help=figure.help, border=True)
    for flag in card["flags"]:
        st.warning(flag, icon=":material/flag:")
    st.table(report.card_facts(card).rename({"field": "Field", "value": "Value"}),
             hide_index=True)  # a table wraps the long values a dataframe would cut
    with st.expander(f"Features ({len(card['features'])})"):
        st.dataframe(card["features"], hide_index=True, key=f"models_features_{name}")

    st.markdown("##### Versions")
    versions = report.target_versions(settings, name)
    st.dataframe(versions, hide_index=True, key=f"models_versions_{name}",
                 column_order=["version", "champion", "candidate", "backtest_auroc",
                               "created_at"],
                 column_config={"backtest_auroc": NUMBER("Backtest AUROC", format="%.4f"),
                                "created_at": "created at"})
    chosen_column, promote_column, rollback_column = st.columns(
        [4, 2, 2], vertical_alignment="bottom")
    chosen = chosen_column.selectbox("Version", [row["version"] for row in versions],
                                     key=f"models_version_{name}_{len(versions)}")
    pointer = champion_pointer(settings, name)
    promote_column.button("Make champion", key=f"models_promote_{name}",
                          on_click=make_champion, args=(chosen,),
                          disabled=chosen == pointer["current"], width="stretch")
    rollback_column.button("Roll back", key=f"models_rollback_{name}", on_click=roll_back,
                           args=(name,), disabled=not pointer["history"], width="stretch",
                           help="Make the previous champion current again.")
    st.caption("Scores keep the model that wrote them until the target is scored again "
               "(the Scores tab, or `studio models score`).")


def show_backtest(settings, con, card: dict, name: str) -> None:
    st.dataframe(report.backtest_table(card), hide_index=True, key=f"models_backtest_{name}",
                 column_config={
                     "test_cutoff": "test cutoff", "auroc": NUMBER("AUROC", format="%.4f"),
                     "pr_auc": NUMBER("PR-AUC", format="%.4f"),
                     "log_loss": NUMBER("log-loss", format="%.4f"),
                     "brier": NUMBER("Brier", format="%.4f"),
                     "lift_at_10": NUMBER("lift @10%", format="%.2f"),
                     "capture_at_10": NUMBER("capture @10%", **SHARE),
                     "lift_at_20": NUMBER("lift @20%", format="%.2f"),
                     "capture_at_20": NUMBER("capture @20%", **SHARE),
                     "mean_prediction": NUMBER("mean prediction", **SHARE),
                     "actual_rate": NUMBER("actual rate", **SHARE),
                     "actual_total": NUMBER("actual total", format="localized"),
                     "predicted_total": NUMBER("predicted total", format="localized"),
                     "total_ratio": NUMBER("predicted / actual", format="%.3f"),
                     "mae": NUMBER("MAE", format="%.2f"),
                     "spearman": NUMBER("Spearman", format="%.4f"),
                     "spend_capture_at_10": NUMBER("spend captured @10%", **SHARE)})
    if report.predicts_money(card):
        st.caption("Each origin fits on the purchase histories up to its cutoff and compares "
                   "the estimate with what each buyer spent after it; the champion has the "
                   "lowest mean absolute error. Spend is money, not a probability, so there "
                   "are no lift or calibration curves.")
        return
    st.caption("Each origin trains on the past, calibrates on a later window and tests on "
               "the window after it; the champion has the best mean AUROC. The heuristic "
               "only ranks, so it has no log-loss or Brier score.")
    origin = report.newest_origin(card)
    with st.spinner(f"Measuring {card['candidate']} on the test window after "
                    f"{origin.test_cutoff}…"):
        curves = champion_curves(str(settings.home), card["version"],
                                 warehouse_version(settings), con, card)
    lift, calibration = st.columns(2)
    lift.markdown(f"**Lift** after {origin.test_cutoff}")
    lift.plotly_chart(report.lift_figure(curves.lift), key=f"models_lift_{name}")
    calibration.markdown(f"**Calibration** after {origin.test_cutoff}")
    calibration.plotly_chart(report.calibration_figure(curves.calibration),
                             key=f"models_calibration_chart_{name}")
    st.caption(f"The champion's candidate refitted at the newest origin: AUROC "
               f"{curves.metrics['auroc']:.4f}, top 10% lift {curves.metrics['lift_at_10']:.2f}. "
               "Points on the diagonal mean the predicted rates come true; decile 1 holds "
               "the highest scores.")
    if not curves.matches_card:
        st.warning(f"The refit measures AUROC {curves.metrics['auroc']:.4f} where the card "
                   f"recorded {curves.recorded['auroc']:.4f}: the warehouse or the model code "
                   "changed since training; retrain to bring the card up to date.",
                   icon=":material/sync_problem:")
    st.dataframe(curves.calibration.select("decile", "count", "mean_prediction",
                                           "actual_rate"),
                 hide_index=True, key=f"models_calibration_{name}",
                 column_config={"mean_prediction": NUMBER("mean prediction", **SHARE),
                                "actual_rate": NUMBER("actual rate", **SHARE)})


def show_scores(settings, con, card: dict, name: str) -> None:
    money = report.predicts_money(card)
    run = report.latest_score_run(con, name, upper=None if money else 1.0)
    if run is None:
        st.info(f"No scores for {name} yet: score them below, or run "
                f"`studio models score --target {name}`.", icon=":material/leaderboard:")
    else:
        columns = st.columns(3)
        columns[0].metric("Customers scored", ui.format_count(run.customers), border=True)
        columns[1].metric("Mean score", ui.format_money(run.mean_score, 2) if money
                          else ui.format_share(run.mean_score), border=True)
        columns[2].metric("Scored as of", f"{run.scored_at:%d %b %Y}", border=True)
        current = champion_pointer(settings, name)["current"]
        if run.model_version != current:
            st.warning(f"These scores come from {run.model_version}, not the champion "
                       f"{current}; score again to use the champion.", icon=":material/sync:")
        st.plotly_chart(report.score_figure(run.histogram, money),
                        key=f"models_scores_{name}")
        st.dataframe(run.deciles, hide_index=True, key=f"models_deciles_{name}",
                     column_config={"min_score": NUMBER("lowest", format="%.3f"),
                                    "max_score": NUMBER("highest", format="%.3f"),
                                    "mean_score": NUMBER("mean", format="%.3f")})
        st.caption(f"Written by {run.model_version}; decile 1 is the highest-scored tenth."
                   + (" The last band of the chart holds every spend above the 99th "
                      "percentile." if money else ""))
    st.button("Score with the champion", key=f"models_rescore_{name}",
              icon=":material/leaderboard:", on_click=start_rescore, args=(name,))


def show_drivers(settings, con, model, name: str) -> None:
    home, warehouse = str(settings.home), warehouse_version(settings)
    if report.has_contributions(model):
        with st.spinner("Averaging contributions over a sample of customers…"):
            importance = feature_importance(home, model.version, warehouse, con)
        top = importance.head(TOP)
        st.markdown("**What drives the score**")
        st.plotly_chart(report.bars_figure(top["feature"].to_list(),
                                           top["mean_abs_contribution"].to_list(),
                                           "Mean |contribution| (log-odds)"),
                        key=f"models_importance_chart_{name}")
        st.caption(f"SHAP contributions of the {TOP} strongest features, averaged over up to "
                   f"{report.IMPORTANCE_SAMPLE:,} buyers as of the data's last day.")
        with st.expander("Every feature"):
            st.dataframe(importance, hide_index=True, key=f"models_importance_{name}")
    else:
        st.info(f"Contributions exist for LightGBM only; this champion is a "
                f"{model.fitted.kind} model, so a customer's features are shown instead.",
                icon=":material/info:")
    features = scoring_features(home, warehouse, con)
    example = features["customer_id"][0] if len(features) else None
    customer_id = st.text_input("Customer id", key=f"models_customer_{name}",
                                placeholder=f"e.g. {example}" if example else "").strip()
    if not customer_id:
        return
    with ui.user_errors():
        explanation = report.explain_customer(con, model, features, customer_id)
        columns = st.columns(3)
        if report.predicts_money(model.card):
            columns[0].metric("Expected spend", ui.format_money(explanation.score, 2),
                              border=True, help="As of the data's last day.")
        else:
            columns[0].metric("Score", ui.format_share(explanation.score), border=True,
                              help="The calibrated probability, as of the data's last day.")
        if explanation.contributions is None:
            st.dataframe(explanation.features, hide_index=True,
                         key=f"models_customer_features_{name}")
            return
        columns[1].metric("Log-odds", f"{explanation.log_odds:+.3f}", border=True,
                          help="The model's raw margin: the baseline plus every contribution, "
                               "before calibration.")
        columns[2].metric("Baseline", f"{explanation.baseline:+.3f}", border=True)
        pushes = explanation.contributions.slice(1, 10)
        st.plotly_chart(report.bars_figure(pushes["feature"].to_list(),
                                           pushes["contribution"].to_list(),
                                           "Contribution (log-odds)"),
                        key=f"models_customer_chart_{name}")
        st.dataframe(explanation.contributions, hide_index=True,
                     key=f"models_customer_contributions_{name}",
                     column_config={"contribution": NUMBER("contribution", format="%+.4f")})


def show_target(settings, con, name: str) -> None:
    version = report.shown_version(settings, name)
    model = loaded_model(str(settings.home), version)
    if champion_pointer(settings, name)["current"] is None:
        st.warning(f"No version of {name} is champion; showing the newest, {version}.",
                   icon=":material/warning:")
    st.caption(f"{version}: {model.card['definition']}.")
    card, backtest, scores, drivers = st.tabs(SECTIONS, key=f"models_section_{name}",
                                              on_change="rerun")
    if card.open:
        with card:
            show_card(settings, model.card, name)
    if backtest.open:
        with backtest:
            show_backtest(settings, con, model.card, name)
    if scores.open:
        with scores:
            show_scores(settings, con, model.card, name)
    if drivers.open:
        with drivers:
            show_drivers(settings, con, model, name)


# ---------------------------------------------------------------- page

st.title("Models")
ui.show_notice()

with ui.user_errors():
    con = ui.require_reader()
    settings = ui.settings()
    targets = report.registered_targets(settings)
    show_retrain(settings, expanded=not targets)
    if not targets:
        st.info(report.NO_MODELS, icon=":material/model_training:")
        st.stop()
    for tab, name in zip(st.tabs(targets, key="models_target", on_change="rerun"), targets,
                         strict=True):
        if tab.open:
            with tab:
                show_target(settings, con, name)
