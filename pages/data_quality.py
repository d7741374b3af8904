"""Data quality: what each ETL run loaded, what it quarantined and which checks passed."""

import polars as pl
import streamlit as st

from studio import quality, ui

QUARANTINE_PAGE_ROWS = 100
COUNT_COLUMNS = {name: st.column_config.NumberColumn(name.replace("_", " "), format="localized")
                 for name in ("files", *quality.LEDGER_COLUMNS)}

st.title("Data quality")

with ui.user_errors():
    con = ui.reader()
    runs = quality.list_runs(ui.settings(), con=con)

    st.subheader("ETL runs")
    if not runs:
        if con is None:
            ui.show_empty_state()
        else:
            st.info("The warehouse exists but no ETL run is recorded in the state database.")
        st.stop()
    st.caption("Newest first. The counts are the run's ledger, summed over its tables; "
               "a failed run published nothing, so it has none.")
    runs_table = pl.DataFrame(runs, infer_schema_length=None).with_columns(
        pl.col("paths").cast(pl.List(pl.String)).list.join(", "),
    )
    with st.container(key="etl_runs"):
        st.dataframe(
            runs_table, hide_index=True, placeholder="—",
            column_order=["run_id", "status", "message", "started_at", "finished_at", "mapping",
                          "files", *quality.LEDGER_COLUMNS, "paths"],
            column_config={"run_id": st.column_config.NumberColumn("run", format="%d"),
                           "started_at": "started", "finished_at": "finished",
                           "message": st.column_config.TextColumn("message", width="medium"),
                           **COUNT_COLUMNS},
        )
    if con is None:
        ui.show_empty_state()
        st.stop()

    published = {run["run_id"]: run for run in runs if run["rows_in"] is not None}
    if published:
        st.subheader("Ledger by table")
        run_id = st.selectbox(
            "Run", list(published), key="ledger_run",
            format_func=lambda rid: f"Run {rid} · {published[rid]['started_at']} · "
            f"{published[rid]['mapping']}",
        )
        st.dataframe(quality.run_ledger(con, run_id), hide_index=True,
                     column_config={"source_files": "source files", **COUNT_COLUMNS})

    st.subheader("Quarantine")
    summary = quality.quarantine_summary(con)
    if summary.is_empty():
        st.success("No row has been quarantined.", icon=":material/check_circle:")
    else:
        reasons = summary.rows(named=True)
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        choice = left.selectbox(
            "Reason", range(len(reasons)), key="quarantine_reason",
            format_func=lambda i: f"{reasons[i]['reason']} · {reasons[i]['entity']} "
            f"({reasons[i]['rows']:,} rows)",
        )
        reason = reasons[choice]
        pages = -(-reason["rows"] // QUARANTINE_PAGE_ROWS)
        page = 1
        if pages > 1:
            page = right.number_input(f"Page (of {pages})", min_value=1, max_value=pages,
                                      value=1, key=f"quarantine_page_{choice}")
        offset = (page - 1) * QUARANTINE_PAGE_ROWS
        rows = quality.quarantine_rows(con, reason["reason"], entity=reason["entity"],
                                       limit=QUARANTINE_PAGE_ROWS, offset=offset)
        st.caption(f"Rows {offset + 1:,}–{offset + rows.height:,} of {reason['rows']:,}, "
                   "with the source file and line each came from and the fields as read.")
        st.dataframe(rows.drop("entity"), hide_index=True, column_config={
            "run_id": st.column_config.NumberColumn("run", format="%d"),
            "source_file": "source file",
            "source_line": st.column_config.NumberColumn("line", format="%d"),
        })

    st.subheader("Expectations")
    results = quality.expectation_results(con)
    if results.is_empty():
        st.info("No Great Expectations results are stored in the warehouse yet.")
    else:
        failed = results.filter(~pl.col("success")).height
        st.caption(f"Run {results['run_id'][0]}: {results.height - failed} of {results.height} "
                   "expectations passed. 'Rows validated' below 'rows in table' means the "
                   "suite checked a sample.")
        if failed:
            st.warning(f"{failed} expectation(s) failed; they are listed first in each table.")
        st.dataframe(
            results.with_columns(
                pl.when(pl.col("success")).then(pl.lit("pass"))
                .otherwise(pl.lit("FAIL")).alias("result")
            ),
            hide_index=True,
            column_order=["result", "table_name", "expectation", "column_name", "observed",
                          "rows_validated", "rows_in_table", "details"],
            column_config={
                "table_name": "table", "column_name": "column",
                "rows_validated": st.column_config.NumberColumn("rows validated",
                                                                format="localized"),
                "rows_in_table": st.column_config.NumberColumn("rows in table",
                                                               format="localized"),
            },
        )
