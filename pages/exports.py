"""Exports: send a saved segment to a file, a database, a send engine or a webhook; history."""

import streamlit as st

from studio import export_page as page
from studio import ui
from studio.audiences import history, schedules
from studio.audiences.audience import CHANNELS
from studio.audiences.retry import retry_dead_letters
from studio.audiences.runner import export_audience
from studio.errors import UserError
from studio.segments import builder, library

RESULT, SYNCED = "exports_result", "exports_synced"
NUMBER = st.column_config.NumberColumn

state = st.session_state


# ---------------------------------------------------------------- helpers






def with_progress(title: str, work):
    """Run ``work(progress)`` inside a status box whose bar the progress callback moves."""
    with st.status(title, expanded=True) as box:
        bar = st.progress(0.0, text="Starting…")
        try:
            outcome = work(lambda label, fraction: bar.progress(min(max(fraction, 0.0), 1.0),
                                                                text=label))
        except UserError:
            box.update(label=f"{title}: stopped", state="error", expanded=False)
            raise
        box.update(label=f"{title}: done", state="complete", expanded=False)
    return outcome


def show_figures(figures: list[page.Figure]) -> None:
    for column, figure in zip(st.columns(len(figures)), figures, strict=True):
        column.metric(figure.label, ui.format_count(figure.value), help=figure.help,
                      border=True)


def offer_download(settings, run: dict, key: str) -> None:
    download = page.run_download(settings, run)
    if download is not None:
        st.download_button(f"Download {download.file_name}", download.read,
                           file_name=download.file_name, mime=download.mime, key=key,
                           icon=":material/download:", on_click="ignore")


def show_result(settings, kind: str, result) -> None:
    if kind == "dry":
        st.markdown(f"##### Dry run {result.run_id}: nothing was sent")
        show_figures(page.diff_figures(result.counts))
        st.dataframe(page.diff_examples(result), hide_index=True, key="exports_diff",
                     column_config={"customers": NUMBER("customers", format="localized"),
                                    "first_ids": "first customer ids"})
        st.markdown("**Sample payloads**")
        st.dataframe(page.samples_frame(result), hide_index=True, key="exports_samples")
        return
    run = history.get_run(settings, result.run_id)
    st.markdown(f"##### Run {result.run_id} {result.status}: {run['segment']} → "
                f"{result.destination}")
    show_figures(page.reconciliation(result.counts))
    offer_download(settings, run, "exports_download")


# ---------------------------------------------------------------- sections


def export_form(settings, targets: list[str], segment: str) -> dict:
    """The export's settings as drawn; the destination spec is built when a button asks."""
    versions = [h["version"] for h in library.segment_history(settings, segment)]
    kind_column, version_column, channel_column = st.columns([3, 1, 1])
    kind = kind_column.selectbox("Destination", list(page.KINDS), format_func=page.KINDS.get,
                                 key="exports_kind")
    version = version_column.selectbox(
        "Version", versions, key=f"exports_version_{segment}",
        format_func=lambda v: f"v{v} (latest)" if v == versions[0] else f"v{v}")
    channel = channel_column.segmented_control(
        "Channel", list(CHANNELS), default="email", required=True, key="exports_channel",
        format_func={"email": "E-mail", "sms": "SMS"}.get,
        help="Only people subscribed on this channel now, with an address for it, are sent.")
    form = {"segment": segment, "kind": kind, "version": version, "channel": channel}
    if kind == "sql":
        url, table = st.columns([3, 1])
        form["url"] = url.text_input("SQLAlchemy URL", key="exports_sql_url",
                                     placeholder="sqlite:///audience.db",
                                     help="Any database SQLAlchemy reaches; a password in "
                                          "the URL is never stored or shown.")
        form["table"] = table.text_input("Table", value="audience", key="exports_sql_table")
    elif kind in ("omnisend", "webhook"):
        form["url"] = st.text_input(
            "Base URL" if kind == "omnisend" else "Webhook URL", key=f"exports_{kind}_url",
            placeholder="https://api.omnisend.com" if kind == "omnisend"
            else "https://example.com/hooks/audience")
        name, configured = page.secret_configured(kind)
        if configured:
            st.caption(f":material/key: {name} is configured.")
        else:
            st.warning(f"{name} is not set; set it in the environment or in "
                       ".streamlit/secrets.toml before exporting (a dry run needs none).",
                       icon=":material/key_off:")
    else:
        st.caption(f"The file is written under {page.exports_folder(settings)} and offered "
                   "for download after the export.")
    toggle, size, target = st.columns([2, 1, 2], vertical_alignment="bottom")
    ranked = toggle.toggle("Top N by score", key="exports_top", disabled=not targets,
                           help="Keep only the N consented members with the highest score."
                           if targets else "The warehouse holds no scores yet; score a model "
                           "on the Models page first.")
    if ranked:
        form["top_n"] = size.number_input("N", min_value=1, value=1000, step=100,
                                          key="exports_top_n")
        form["score_target"] = target.selectbox("Score", targets, key="exports_top_by")
    form["ranked"] = ranked
    return form


def spec_of(settings, form: dict) -> tuple[str, int | None, str | None]:
    top_n, target = page.check_top_n(form["ranked"], form.get("top_n"),
                                     form.get("score_target"))
    spec = page.destination_spec(settings, form["segment"], form["kind"],
                                 url=form.get("url", ""), table=form.get("table", ""),
                                 channel=form["channel"], top_n=top_n, score_target=target)
    return spec, top_n, target


def run_export(settings, form: dict, dry_run: bool) -> None:
    spec, top_n, target = spec_of(settings, form)
    common = {"version": form["version"], "channel": form["channel"], "top_n": top_n,
              "score_target": target}
    if dry_run:
        with st.spinner("Building the audience and its diff…"):
            result = export_audience(settings, form["segment"], spec, dry_run=True, **common)
    else:
        result = with_progress(f"Exporting {form['segment']}", lambda progress: export_audience(
            settings, form["segment"], spec, progress=progress, **common))
    state[RESULT] = ("dry" if dry_run else "run", result)


def keep_in_sync(settings, form: dict) -> None:
    spec, top_n, target = spec_of(settings, form)
    schedule_id = schedules.save_schedule(settings, form["segment"], spec,
                                          channel=form["channel"], top_n=top_n,
                                          score_target=target)
    ui.notify("success", f"Schedule {schedule_id}: “{form['segment']}” (its latest version) is "
                      "exported there on every sync.")
    st.rerun()


def show_schedules(settings) -> None:
    st.subheader("Schedules")
    listed = schedules.list_schedules(settings)
    if not listed:
        st.caption("Nothing is kept in sync yet: set an export up above and choose “Keep "
                   "this export in sync”. `studio audiences sync` (e.g. from cron) refreshes "
                   "every schedule.")
        return
    st.dataframe(page.schedules_frame(listed), hide_index=True, key="exports_schedules")
    chosen_column, remove_column, sync_column = st.columns([3, 1, 1],
                                                           vertical_alignment="bottom")
    chosen = chosen_column.selectbox(
        "Schedule", [s["schedule_id"] for s in listed], key="exports_schedule_pick",
        format_func=lambda i: next(f"{i} · {s['segment']} → {s['destination']}"
                                   for s in listed if s["schedule_id"] == i))
    if remove_column.button("Remove", key="exports_schedule_remove", width="stretch"):
        with ui.user_errors():
            schedules.remove_schedule(settings, chosen, user=library.current_user())
            ui.notify("success", f"Schedule {chosen} removed; its past runs stay in the history.")
            st.rerun()
    if sync_column.button("Sync all now", key="exports_sync", icon=":material/sync:",
                          width="stretch"):
        state[SYNCED] = with_progress("Syncing every schedule", lambda progress:
                                      schedules.sync_schedules(settings, progress=progress))
        st.rerun()
    if SYNCED in state:
        st.markdown("**Last sync**")
        st.dataframe(page.sync_frame(state[SYNCED]), hide_index=True, key="exports_sync_table")


def show_history(settings) -> None:
    st.subheader("History")
    runs = history.list_runs(settings)
    if not runs:
        st.caption("No exports yet.")
        return
    st.dataframe(page.runs_frame(runs), hide_index=True, key="exports_runs",
                 column_config={"dry_run": "dry run",
                                "created_by": "by",
                                **{name: NUMBER(name.replace("_", " "), format="localized")
                                   for name in page.RUN_COLUMNS[7:-1]}})
    by_id = {run["run_id"]: run for run in runs}
    # keyed by the newest run, so a new export selects itself
    chosen = st.selectbox("Run", list(by_id), key=f"exports_history_run_{runs[0]['run_id']}",
                          format_func=lambda i: page.run_label(by_id[i]))
    with st.container(key="exports_run_box"):
        show_run(settings, by_id[chosen])


def show_run(settings, run: dict) -> None:
    if run["message"]:
        st.caption(run["message"])
    if run["dry_run"]:
        st.caption("A dry run sends nothing, so it has no deliveries.")
        return
    show_figures(page.reconciliation(run))
    offer_download(settings, run, "exports_history_download")
    chosen = run["run_id"]
    dead = page.dead_letters_frame(settings, chosen)
    if dead.is_empty():
        st.caption("No dead letters in this run.")
        return
    st.markdown(f"**Dead letters** ({dead.height:,})")
    st.dataframe(dead, hide_index=True, key="exports_dead")
    override = None
    if page.retry_needs_destination(run):
        override = st.text_input("Destination, in full", type="password",
                                 key="exports_retry_spec",
                                 help="The run's record hides a password; give the spec "
                                      "again (e.g. sql:postgresql://user:pass@host/db#table).")
    if st.button("Retry dead letters", key="exports_retry", icon=":material/replay:"):
        with ui.user_errors():
            result = with_progress(f"Retrying run {chosen}", lambda progress: retry_dead_letters(
                settings, chosen, override or None, progress=progress))
            ui.notify("success", f"Run {chosen} is now {result.status}: "
                              f"{result.counts['sent']:,} sent, {result.counts['dead']:,} dead.")
            st.rerun()


@st.cache_data(max_entries=8, show_spinner=False)
def scored_targets(version, _con) -> list[str]:
    """The targets a top N can rank by, looked up once per published warehouse."""
    return builder.score_targets(_con)


# ---------------------------------------------------------------- the page

st.title("Exports")

with ui.user_errors():
    con, version = ui.require_snapshot()
    settings = ui.settings()
    st.caption("Send a saved segment's consented members to a file, a database table, a send "
               "engine or a webhook. Only changes since the last confirmed export are sent; a "
               "dry run shows them first.")
    saved = [s["name"] for s in library.list_segments(settings)]
    if not saved:
        st.info("No saved segments yet: build one on the Segments page and save it, then "
                "come back to export it.", icon=":material/groups:")
        st.stop()
    segment = st.selectbox("Segment", saved, key="exports_segment")
    form = export_form(settings, scored_targets(version, con), segment)
    dry, run, sync = st.columns(3)
    dry_clicked = dry.button("Dry run", key="exports_dry_run", icon=":material/visibility:",
                             width="stretch")
    run_clicked = run.button("Export", key="exports_run", type="primary",
                             icon=":material/outbox:", width="stretch")
    sync_clicked = sync.button("Keep this export in sync", key="exports_schedule",
                               icon=":material/schedule:", width="stretch",
                               help="Exports the segment's latest version there on every "
                                    "'studio audiences sync'.")
    with ui.user_errors():
        if dry_clicked or run_clicked:
            state.pop(RESULT, None)
            run_export(settings, form, dry_run=dry_clicked)
        if sync_clicked:
            keep_in_sync(settings, form)
    ui.show_notice(lasting=True)
    if RESULT in state:
        with st.container(key="exports_result_box"):
            show_result(settings, *state[RESULT])

    st.divider()
    show_schedules(settings)
    st.divider()
    show_history(settings)
