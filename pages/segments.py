"""Segments: build an audience from rules, watch its size live, save, explain and compare it."""

from datetime import date

import streamlit as st

from studio import ui
from studio.errors import UserError
from studio.segments import builder, library, operations
from studio.segments.definition import parse_definition
from studio.warehouse import warehouse_version

ROWS_PER_PAGE = 50
TABS = ["Conditions", "Preview", "Explain", "Overlap", "SQL", "Save & history"]
NEEDS_RULE = "Finish the conditions (or fix the error above) to see this."

# Session state: the draft lives under plain keys; widgets showing it get their own keys,
# which Streamlit drops when the page is left, and are filled again from the draft.
TREE, NAME, DESCRIPTION, AS_OF, PINNED = ("segment_tree", "segment_draft_name",
                                          "segment_draft_description", "segment_draft_as_of",
                                          "segment_pinned_as_of")
DOCUMENT, JSON_ERROR = "segment_document", "segment_json_error"
WIDGET_OF = {NAME: "segment_name", DESCRIPTION: "segment_description",
             AS_OF: "segment_as_of"}

state = st.session_state


# ---------------------------------------------------------------- actions (callbacks)




def put_draft(draft: builder.Draft) -> None:
    state[TREE] = draft.tree
    state[NAME], state[DESCRIPTION], state[PINNED] = draft.name, draft.description, draft.as_of
    if draft.as_of is not None:
        state[AS_OF] = draft.as_of.date()
    for key in WIDGET_OF.values():
        state.pop(key, None)


def load_source() -> None:
    source = state["segment_source"]
    try:
        draft = builder.load_source(ui.settings(), source)
    except UserError as error:
        ui.notify("error", str(error))
        return
    put_draft(draft)
    if draft.name:
        ui.notify("success", f"Loaded “{draft.name}”.")


def load_version(name: str, version: int) -> None:
    try:
        put_draft(builder.draft_from_definition(
            library.load_segment(ui.settings(), name, version)))
    except UserError as error:
        ui.notify("error", str(error))
        return
    ui.notify("success", f"Loaded version {version} of “{name}” into the builder.")


def apply_json(text_key: str) -> None:
    try:
        put_draft(builder.draft_from_text(state.get(text_key, "")))
    except UserError as error:
        state[JSON_ERROR] = str(error)
        return
    ui.notify("success", "Applied the JSON to the builder.")


def edit_tree(change, *args) -> None:
    try:
        state[TREE] = change(state[TREE], *args)
    except UserError as error:
        ui.notify("error", str(error))


def save_draft() -> None:
    settings = ui.settings()
    document = builder.segment_document(state[NAME], state[DESCRIPTION], state[TREE],
                                        state[PINNED])
    try:
        saved = library.save_segment(settings, parse_definition(document),
                                     user=library.current_user(),
                                     note=state.get("segment_note", "").strip())
    except UserError as error:
        ui.notify("error", str(error))
        return
    if saved["new"]:
        state["segment_note"] = ""
        ui.notify("success", f"Saved “{saved['name']}” as version {saved['version']}.")
    else:
        ui.notify("info", f"Nothing new to save: version {saved['version']} of "
                       f"“{saved['name']}” already has exactly this rule.")


def take_snapshot(name: str) -> None:
    # The date is read now, not bound when the button was drawn: a date typed just before
    # the click arrives in the same rerun as the click.
    con = ui.require_reader()
    chosen = state.get(WIDGET_OF[AS_OF], state[AS_OF])
    moment = builder.as_of_moment(chosen, state[PINNED] or operations.default_as_of(con))
    try:
        taken = library.take_snapshot(ui.settings(), con, name, moment)
    except UserError as error:
        ui.notify("error", str(error))
        return
    ui.notify("success", f"Snapshot {taken['snapshot_id']}: {taken['members']:,} members of "
                      f"version {taken['version']} as of {taken['as_of']:%d %b %Y}.")


# ---------------------------------------------------------------- drawing helpers




def bound(widget, label: str, store: str, **options):
    """A widget showing ``state[store]``; what the user enters goes back there."""
    if WIDGET_OF[store] not in state:
        state[WIDGET_OF[store]] = state[store]
    state[store] = widget(label, key=WIDGET_OF[store], **options)
    return state[store]


@st.cache_data(max_entries=512, show_spinner=False)
def lookup(version, name: str, args: tuple, _con):
    return builder.LOOKUPS[name](_con, *args)


def new_line():
    return st.container(horizontal=True, vertical_alignment="center", gap="small")


def draw_input(item: builder.Input, key: str, lines: list):
    """Draw ``item`` on the last of ``lines`` (a ``line`` input starts a new one)."""
    if item.widget == "line":
        lines.append(new_line())
    with lines[-1]:
        return draw_widget(item, key)


def draw_widget(item: builder.Input, key: str):
    common = {"key": key, "label_visibility": "collapsed", "width": item.width}
    if item.widget in ("words", "line"):
        st.markdown(builder.escape_markdown(item.label), width="content")
        return None
    if item.widget == "select":
        options = list(item.options)
        return st.selectbox(item.label, options, format_func=item.label_of,
                            index=options.index(item.value) if item.value in options else None,
                            accept_new_options=item.free_entry, placeholder=item.placeholder,
                            **common)
    if item.widget == "multiselect":
        return st.multiselect(item.label, list(item.options), default=item.value,
                              format_func=item.label_of, accept_new_options=item.free_entry,
                              placeholder=item.placeholder, **common)
    if item.widget == "number":
        return st.number_input(item.label, min_value=item.minimum, max_value=item.maximum,
                               value=item.value, step=item.step, format=item.format, **common)
    if item.widget == "date":
        return st.date_input(item.label, value=item.value, min_value=date(1900, 1, 1),
                             max_value=date(2100, 12, 31), format="YYYY-MM-DD", **common)
    return st.text_input(item.label, value=item.value, placeholder=item.placeholder, **common)


def row_controls(column, node: dict, what: str, removable: bool = True) -> bool:
    """The NOT toggle and the remove button at the right of a row; returns NOT."""
    with column.container(horizontal=True, horizontal_alignment="right",
                          vertical_alignment="center", gap="small"):
        negate = st.toggle("NOT", value=node["not"], key=f"{node['id']}-not")
        if removable:
            st.button("", icon=":material/close:", key=f"{node['id']}-remove",
                      type="tertiary", help=f"Remove this {what}", on_click=edit_tree,
                      args=(builder.remove_node, node["id"]))
    return negate


def render_condition(node: dict, choices: builder.Choices) -> dict:
    node_id = node["id"]
    with st.container(border=True, key=f"condition-{node_id}"):
        main, controls = st.columns([14, 2.2], vertical_alignment="center")
        with main:
            lines = [new_line()]
            with lines[0]:
                kinds = list(builder.KIND_LABELS)
                kind = st.selectbox("Condition type", kinds, index=kinds.index(node["kind"]),
                                    format_func=builder.KIND_LABELS.get,
                                    key=f"{node_id}-kind", label_visibility="collapsed",
                                    width=205)
            body = node["body"] if kind == node["kind"] else builder.default_body(
                kind, choices.as_of)
            body = builder.edit_condition(
                kind, body, choices,
                lambda item: draw_input(item, f"{node_id}-{kind}-{item.key}", lines))
        negate = row_controls(controls, node, "condition")
        problem = builder.problem(kind, body)
        if problem:
            st.caption(f":orange[{builder.escape_markdown(problem)}]")
    return {**node, "kind": kind, "body": body, "not": negate}


def render_group(node: dict, depth: int, choices: builder.Choices) -> dict:
    node_id = node["id"]
    with st.container(border=depth > 0, key=f"group-{node_id}"):
        head, controls = st.columns([14, 2.2], vertical_alignment="center")
        with head.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.markdown("Customers who match" if depth == 0 else "Match", width="content")
            op = st.segmented_control("Match", list(builder.GROUP_LABELS),
                                      default=node["group"], required=True,
                                      format_func=builder.GROUP_LABELS.get,
                                      key=f"{node_id}-group", label_visibility="collapsed")
            st.markdown("of these conditions" if depth == 0 else "of", width="content")
        negate = row_controls(controls, node, "group", removable=depth > 0)
        children = []
        for position, child in enumerate(node["children"]):
            if position:
                st.markdown(f":gray-badge[{'AND' if op == 'all' else 'OR'}]")
            children.append(render_group(child, depth + 1, choices) if "group" in child
                            else render_condition(child, choices))
        if not node["children"]:
            st.caption("No conditions yet: add one below." if depth == 0 else
                       ":orange[This group is empty: add a condition or remove it.]")
        with st.container(horizontal=True, gap="small"):
            st.button("Condition", icon=":material/add:", key=f"{node_id}-add-condition",
                      on_click=edit_tree, args=(builder.add_condition, node_id, "profile",
                                                state[AS_OF]))
            if depth < builder.MAX_DEPTH:
                st.button("Group", icon=":material/add_box:", key=f"{node_id}-add-group",
                          help="A nested group: match all or any of its own conditions.",
                          on_click=edit_tree, args=(builder.add_group, node_id, state[AS_OF]))
    return {**node, "group": op, "not": negate, "children": children}


def render_json_editor(document: dict) -> None:
    with st.expander("Edit as JSON", icon=":material/data_object:",
                     expanded=JSON_ERROR in state):
        st.caption("The same document the CLI takes (`studio segments count FILE`). Edit it "
                   "and apply it to replace the builder's rows.")
        text_key = f"segment_json_{builder.document_key(document)}"
        st.text_area("Segment document", value=builder.document_text(document), height=320,
                     key=text_key, label_visibility="collapsed")
        st.button("Apply JSON", key="segment_json_apply", on_click=apply_json,
                  args=(text_key,))
        if JSON_ERROR in state:
            st.error(state.pop(JSON_ERROR), icon=":material/error:")


def show_count(result: operations.SegmentCount, total: int) -> None:
    def share(part: int, whole: int) -> str:
        return ui.format_share(part / whole if whole else None)

    matched, email, sms = st.columns(3)
    matched.metric("Matched", ui.format_count(result.matched),
                   delta=f"{share(result.matched, total)} of {ui.format_count(total)} customers",
                   delta_color="off", delta_arrow="off",
                   help="Customers who meet the rule as of the date.")
    email.metric("E-mail sendable", ui.format_count(result.email_sendable),
                 delta=f"{share(result.email_sendable, result.matched)} of matched",
                 delta_color="off", delta_arrow="off",
                 help="Matched, subscribed to e-mail as of the date, with an address.")
    sms.metric("SMS sendable", ui.format_count(result.sms_sendable),
               delta=f"{share(result.sms_sendable, result.matched)} of matched",
               delta_color="off", delta_arrow="off",
               help="Matched, subscribed to SMS as of the date, with a phone number.")


# ---------------------------------------------------------------- the page

st.title("Segments")

with ui.user_errors():
    con = ui.require_reader()
    settings = ui.settings()
    latest = operations.default_as_of(con)
    state.setdefault(TREE, builder.blank_tree())
    for store, initial in ((NAME, ""), (DESCRIPTION, ""), (AS_OF, latest.date()),
                           (PINNED, None)):
        state.setdefault(store, initial)

    st.caption("Build an audience from profiles, consent, orders, events, campaigns, scores "
               "and RFM groups. Counts update after every change and use only data up to the "
               "as-of date. NOT on a row keeps the customers for whom it does not hold.")
    sources = builder.sources(settings)
    start, load, as_of_column = st.columns([4, 1, 1.4], vertical_alignment="bottom")
    start.selectbox("Start from", list(sources), format_func=sources.get,
                    key="segment_source",
                    help="A blank segment, a preset that ships with the studio, or a saved "
                         "segment (its latest version). Loading replaces the builder's rows.")
    load.button("Load", key="segment_load", icon=":material/upload:", on_click=load_source,
                width="stretch")
    as_of = bound(as_of_column.date_input, "As of", AS_OF, format="YYYY-MM-DD",
                  min_value=date(1900, 1, 1), max_value=max(date.today(), latest.date()),
                  help="Counts look at data up to the end of this day. The default is the "
                       "day of the latest order, and then counts stop at that order.")
    moment = builder.as_of_moment(as_of, state[PINNED] or latest)
    name_column, description_column = st.columns([2, 3])
    with name_column:
        name = bound(st.text_input, "Name", NAME, placeholder="Name this segment")
    with description_column:
        bound(st.text_input, "Description", DESCRIPTION,
              placeholder="What the segment is for (optional)")
    ui.show_notice()

    summary = st.container(border=True, key="segment_summary")
    conditions, preview, explain, overlap, sql, save = st.tabs(
        TABS, key="segment_tab", on_change="rerun")
    resolver = library.resolver(settings)

    if conditions.open:
        with conditions:
            version = warehouse_version(settings)
            choices = builder.Choices(
                lambda lookup_name, *args: lookup(version, lookup_name, args, con),
                [saved["name"] for saved in library.list_segments(settings)], as_of)
            state[TREE] = render_group(state[TREE], 0, choices)

    document = builder.segment_document(state[NAME], state[DESCRIPTION], state[TREE],
                                        state[PINNED])
    state[DOCUMENT] = document
    if conditions.open:
        with conditions:
            render_json_editor(document)

    definition = result = None
    with summary:
        unfinished = builder.problems(state[TREE])
        if unfinished:
            st.info("Add a condition to see who matches, or start from a preset above."
                    if not state[TREE]["children"] else
                    f"Finish {len(unfinished)} condition(s) marked in orange to see the count.",
                    icon=":material/edit_note:")
        else:
            with ui.user_errors():
                definition = parse_definition(document)
                with st.spinner("Counting…"):
                    result = operations.count(con, definition, moment, resolver)
                show_count(result, builder.total_customers(con))
                st.caption(f"As of {moment:%d %b %Y, %H:%M}"
                           + (", the latest order in the warehouse." if moment == latest
                              else "."))

    if preview.open:
        with preview:
            if result is None:
                st.info(NEEDS_RULE)
            elif not result.matched:
                st.info("No customer matches the rule as of this date.")
            else:
                pages = builder.preview_pages(result.matched, ROWS_PER_PAGE)
                sort_column, order_column, page_column = st.columns(
                    [2, 2, 1], vertical_alignment="bottom")
                sort_by = sort_column.selectbox(
                    "Sort by", list(operations.PREVIEW_COLUMNS), key="segment_preview_sort",
                    format_func=builder.PREVIEW_LABELS.get)
                order = order_column.segmented_control(
                    "Order", ["ascending", "descending"], default="ascending", required=True,
                    format_func=str.capitalize, key="segment_preview_order")
                page = page_column.number_input(f"Page (of {pages:,})", min_value=1,
                                                max_value=pages, value=1, step=1,
                                                key=f"segment_preview_page_{pages}")
                offset = (page - 1) * ROWS_PER_PAGE
                with st.spinner("Loading members…"):
                    members = operations.preview(con, definition, moment, resolver,
                                                 limit=ROWS_PER_PAGE, offset=offset,
                                                 sort_by=sort_by,
                                                 descending=order == "descending")
                st.dataframe(members, hide_index=True, key="segment_preview_table",
                             column_config={
                                 column: st.column_config.Column(label)
                                 for column, label in builder.PREVIEW_LABELS.items()}
                             | {"rfm_group": st.column_config.Column("RFM group"),
                                "revenue": st.column_config.NumberColumn(
                                    "Revenue", format="localized")})
                st.caption(f"Members {offset + 1:,}–{offset + members.height:,} of "
                           f"{result.matched:,}, by {builder.PREVIEW_LABELS[sort_by].lower()} "
                           f"({order}). Purchases and revenue count valid orders up to the "
                           "as-of date.")

    if explain.open:
        with explain:
            if result is None:
                st.info(NEEDS_RULE)
            else:
                st.caption("Why is a customer in the segment, or not? Each condition shows "
                           "whether it holds for them as of the date.")
                member = operations.preview(con, definition, moment, resolver, limit=1)
                example = member["customer_id"][0] if member.height else None
                customer_id = st.text_input(
                    "Customer id", key="segment_explain_id",
                    placeholder=f"e.g. {example}, a member" if example else "A customer id",
                ).strip()
                if customer_id:
                    with ui.user_errors():
                        with st.spinner("Checking each condition…"):
                            explanation = operations.explain(con, definition, customer_id,
                                                             moment, resolver)
                        if explanation.holds:
                            st.success(f"{customer_id} is **in** the segment.",
                                       icon=":material/check_circle:")
                        else:
                            st.warning(f"{customer_id} is **not in** the segment.",
                                       icon=":material/block:")
                        st.markdown(builder.explanation_markdown(explanation))

    if overlap.open:
        with overlap:
            options = {"current": f"This segment ({name or 'unsaved draft'})",
                       **builder.overlap_choices(settings)}
            chosen = st.multiselect("Segments to compare", list(options),
                                    format_func=options.get, key="segment_overlap",
                                    placeholder="Pick two or more segments")
            if len(chosen) < 2:
                st.info("Pick two or more segments to see how many customers they share.")
            else:
                with ui.user_errors():
                    with st.spinner("Counting every intersection…"):
                        definitions = builder.overlap_definitions(
                            settings, chosen, definition if result else None)
                        sizes = operations.overlap(con, definitions, moment, resolver)
                    st.plotly_chart(builder.overlap_figure(sizes), key="segment_overlap_chart")
                    st.dataframe(sizes, hide_index=True, column_config={
                        "segments": "Segments", "size": "Segments intersected",
                        "customers": st.column_config.NumberColumn("Customers",
                                                                   format="localized")})

    if sql.open:
        with sql:
            if result is None:
                st.info(NEEDS_RULE)
            else:
                st.caption("The members query with its values written in, for analysts to "
                           "copy into a notebook or the DuckDB shell. Read-only.")
                with ui.user_errors():
                    st.code(operations.show_sql(definition, moment, resolver,
                                                has_scores=operations.has_table(con, "scores")),
                            language="sql", wrap_lines=True)

    if save.open:
        with save:
            saved_names = {saved["name"] for saved in library.list_segments(settings)}
            note_column, button_column = st.columns([4, 1], vertical_alignment="bottom")
            note_column.text_input("Note for this version", key="segment_note",
                                   placeholder="What changed (optional)")
            button_column.button("Save segment", type="primary", key="segment_save",
                                 icon=":material/save:", on_click=save_draft,
                                 disabled=definition is None, width="stretch")
            st.caption(f"Each save adds a version, recorded as saved by "
                       f"{library.current_user()}; saving the same rule again adds none.")

            if name not in saved_names:
                st.info("Save the segment to keep its versions and take snapshots of its "
                        "members.", icon=":material/history:")
            else:
                history = library.segment_history(settings, name)
                current = builder.saved_version(history, document) if definition else None
                st.markdown("##### Versions")
                st.caption(f"The builder holds version {current}." if current else
                           "The builder has changes not saved yet.")
                with st.expander(f"Version history ({len(history)})"):
                    st.dataframe(builder.history_rows(history), hide_index=True,
                                 key="segment_history_table",
                                 column_config={"created_at": "saved at",
                                                "created_by": "saved by"})
                    versions = {row["version"]: row for row in history}
                    shown = st.selectbox("Show version", list(versions),
                                         format_func=lambda v: f"Version {v}",
                                         key=f"segment_history_version_{len(history)}")
                    st.code(versions[shown]["definition"], language="json")
                    st.button("Load this version into the builder",
                              key="segment_load_version", on_click=load_version,
                              args=(name, shown))

                st.markdown("##### Snapshots")
                st.button(f"Take a snapshot as of {moment:%d %b %Y}", key="segment_snapshot",
                          icon=":material/photo_camera:", on_click=take_snapshot,
                          args=(name,))
                st.caption("A snapshot records the members of the latest saved version; "
                           "compare two to see who entered and who left.")
                snapshots = library.list_snapshots(settings, name)
                if snapshots:
                    st.dataframe(snapshots, hide_index=True, key="segment_snapshots",
                                 column_order=["snapshot_id", "version", "as_of", "members",
                                               "taken_at", "taken_by"],
                                 column_config={"snapshot_id": "snapshot",
                                                "as_of": "as of", "taken_at": "taken at",
                                                "taken_by": "taken by"})
                if len(snapshots) >= 2:
                    ids = [snap["snapshot_id"] for snap in snapshots]
                    before_column, after_column = st.columns(2)
                    before = before_column.selectbox("Before", ids, index=1,
                                                     key=f"segment_snapshot_before_{len(ids)}",
                                                     format_func=lambda i: f"Snapshot {i}")
                    after = after_column.selectbox("After", ids, index=0,
                                                   key=f"segment_snapshot_after_{len(ids)}",
                                                   format_func=lambda i: f"Snapshot {i}")
                    change = library.compare_snapshots(settings, before, after)
                    entered, left, stayed = st.columns(3)
                    entered.metric("Entered", ui.format_count(len(change["entered"])))
                    left.metric("Left", ui.format_count(len(change["left"])))
                    stayed.metric("Stayed", ui.format_count(change["stayed"]))
                    for label, key in (("Who entered", "entered"), ("Who left", "left")):
                        with st.expander(f"{label} ({len(change[key]):,})"):
                            st.dataframe({"customer_id": change[key]}, hide_index=True,
                                         key=f"segment_snapshot_{key}")
