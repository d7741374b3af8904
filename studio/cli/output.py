"""What every command shares: consoles, the progress bar, JSON and table output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

err = Console(stderr=True)
out = Console() if sys.stdout.isatty() else Console(width=160)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, float], None]]:
    """A ``(label, fraction)`` callback drawing one bar on stderr."""
    if not enabled:
        yield lambda _label, _fraction: None
        return
    bar = Progress(TextColumn("{task.description:<32}"), BarColumn(), TaskProgressColumn(),
                   TimeElapsedColumn(), console=err, transient=True)
    task = None

    def update(label: str, fraction: float) -> None:
        nonlocal task
        if task is None:  # drawn on first report, so an early user error shows no bar
            bar.start()
            task = bar.add_task(label, total=1.0)
        bar.update(task, description=label, completed=min(max(fraction, 0.0), 1.0))

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()


def print_json(payload) -> None:
    """Machine-readable output on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def print_table(title: str, rows: list[dict], columns: list[str] | None = None) -> None:
    """Rows of dicts as a table on stdout."""
    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else
                        f"{row[c]:,}" if isinstance(row[c], int) and not isinstance(row[c], bool)
                        else str(row[c]) for c in columns))
    out.print(table)
