"""The small Streamlit helper every page uses: settings, the warehouse, errors, empty state.

Besides :mod:`studio.app` and the page scripts, this is the only module that imports
Streamlit, so everything it does is about showing things, never about computing them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb
import polars as pl
import streamlit as st

from studio.config import Settings, load_settings
from studio.errors import UserError
from studio.warehouse import connect_reader, warehouse_version

EMPTY_STATE = (
    "No data yet: there is no warehouse at `{path}`. Load the demo store with "
    "`make demo` (or `studio demo`), or your own files with `studio etl load <files>`, "
    "then reload this page."
)


@st.cache_resource(show_spinner=False)
def _settings_for(environment: tuple[tuple[str, str], ...], cwd: str) -> Settings:
    # Both arguments are the cache key (Streamlit skips only names starting with "_").
    del environment, cwd
    return load_settings()


def settings() -> Settings:
    """The studio's settings, read once per distinct ``STUDIO_*`` environment and folder.

    The cache key is the environment rather than nothing, so a process that serves
    several homes (the app tests do) never sees another home's settings.
    """
    environment = tuple(sorted(
        (name, value) for name, value in os.environ.items() if name.startswith("STUDIO_")
    ))
    return _settings_for(environment, os.getcwd())


@st.cache_resource(max_entries=1, show_spinner=False)
def _warehouse_snapshot(_settings: Settings, path: str,
                        version: tuple[int, int]) -> duckdb.DuckDBPyConnection:
    del path, version  # the cache key only: a new publication is a new connection
    return connect_reader(_settings)


Version = tuple[int, int]
"""A published warehouse's identity (:func:`studio.warehouse.warehouse_version`)."""


def snapshot() -> tuple[duckdb.DuckDBPyConnection, Version] | None:
    """A read-only cursor on the latest published warehouse and that warehouse's version.

    The connection is cached per published version, so every session shares one, a newly
    published warehouse is picked up on the next rerun, and a load in progress never makes
    a page wait or fail: the loader writes a copy and swaps it in. Each call returns its
    own cursor, because a DuckDB connection must not run two sessions' queries at once.
    The version is the one the cursor reads, for keying cached results
    (:func:`cached_frames`); ``None`` when nothing has been loaded yet.
    """
    current = settings()
    version = warehouse_version(current)
    if version is None:
        return None
    cursor = _warehouse_snapshot(current, str(current.warehouse_path), version).cursor()
    cursor.execute("USE warehouse")
    return cursor, version


def reader() -> duckdb.DuckDBPyConnection | None:
    """:func:`snapshot`'s cursor alone, or ``None`` if there is no warehouse yet."""
    found = snapshot()
    return None if found is None else found[0]


def show_empty_state() -> None:
    """Tell the user there is nothing to show yet and how to load data."""
    st.info(EMPTY_STATE.format(path=settings().warehouse_path), icon=":material/database:")


def require_snapshot() -> tuple[duckdb.DuckDBPyConnection, Version]:
    """:func:`snapshot`, or the empty-state message and the end of the page run."""
    found = snapshot()
    if found is None:
        show_empty_state()
        st.stop()
    return found


def require_reader() -> duckdb.DuckDBPyConnection:
    """:func:`require_snapshot`'s cursor alone."""
    return require_snapshot()[0]


@st.cache_data(max_entries=64, show_spinner="Querying the warehouse…")
def _frame(_con: duckdb.DuckDBPyConnection, path: str, version: Version, sql: str,
           params: tuple) -> pl.DataFrame:
    del path, version  # with the query, the cache key: a published warehouse never changes
    return _con.sql(sql, params=list(params)).pl()


def cached_frames(version: Version) -> Callable[[duckdb.DuckDBPyConnection, str, list],
                                                 pl.DataFrame]:
    """Run a query into a polars frame, at most once per published warehouse ``version``.

    For views whose widgets rerun the page (a heatmap's metric, a bar width): each query
    the page has already run on this warehouse comes back at once, in every session,
    and only the queries a change touches run again, behind a spinner. ``version`` must
    be the one the cursor reads (:func:`snapshot`), never read again later: a warehouse
    published in between would otherwise file the old one's results under the new one.
    """
    path = str(settings().warehouse_path)

    def read(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pl.DataFrame:
        return _frame(con, path, version, sql, tuple(params))

    return read


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a :class:`UserError` raised inside the block as one ``st.error`` sentence.

    Every page wraps its body in this block: a user's mistake (a bad setting, a
    missing file) reads as a sentence with its fix, and anything else is a bug whose
    traceback Streamlit shows as usual.
    """
    try:
        yield
    except UserError as error:
        st.error(str(error), icon=":material/error:")


def follow_default(key: str, default) -> None:
    """Let the keyed widget ``key`` follow its ``default`` until the user changes it.

    A keyed widget keeps its value across reruns even when the default it was drawn with
    changes, so a date range drawn over the data's days would stay on the old days after a
    load brings new ones. Call this before drawing the widget, and draw it without
    ``value``: an untouched widget moves to the new default, a changed one stays as the
    user left it.
    """
    marker = f"{key}__default"
    if key not in st.session_state or st.session_state[key] == st.session_state.get(marker):
        st.session_state[key] = default
    st.session_state[marker] = default


NOTICE = "studio_notice"


def notify(kind: str, text: str) -> None:
    """Keep an action's outcome (``error``, ``success`` or ``info``) for the next rerun.

    Button callbacks run before the page draws, and actions that end in ``st.rerun()``
    throw away what they drew: the outcome is kept in the session instead and drawn by
    :func:`show_notice` where the page wants it.
    """
    st.session_state[NOTICE] = (kind, text)


def show_notice(lasting: bool = False) -> None:
    """Draw the kept outcome once: an error stays on the page, the rest pop up briefly.

    ``lasting`` keeps successes on the page too, for outcomes worth reading twice (how
    many contacts an export sent).
    """
    if NOTICE not in st.session_state:
        return
    kind, text = st.session_state.pop(NOTICE)
    icon = {"error": ":material/error:", "success": ":material/check_circle:"}.get(
        kind, ":material/info:")
    if kind == "error":
        st.error(text, icon=icon)
    elif lasting:
        (st.success if kind == "success" else st.info)(text, icon=icon)
    else:
        st.toast(text, icon=icon)


def format_count(value: int) -> str:
    """``12345`` -> ``"12,345"``."""
    return f"{value:,}"


def format_money(value: float | None, decimals: int = 0) -> str:
    """``1234.5`` -> ``"1,235"``; ``None`` -> an em dash."""
    return "—" if value is None else f"{value:,.{decimals}f}"


def format_share(value: float | None) -> str:
    """``0.4567`` -> ``"45.7%"``; ``None`` -> an em dash."""
    return "—" if value is None else f"{value:.1%}"
