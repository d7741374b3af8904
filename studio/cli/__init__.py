"""The ``studio`` command: demo, serve, and the ETL for people who live in a terminal.

Every command turns a :class:`~studio.errors.UserError` into one sentence on stderr and
exit code 2; any other failure is a bug, reported in one line (with the traceback only
when ``STUDIO_DEBUG=1``) and exit code 1. ``--json`` output goes to stdout alone, while
progress bars draw on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from studio.cli.output import err, out, print_json, print_table, progress_bar
from studio.config import Settings, load_settings
from studio.errors import UserError

app = typer.Typer(help="Audience Studio: analytics and segmentation for online stores.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
etl_app = typer.Typer(help="Load source files into the warehouse and inspect past runs.",
                      no_args_is_help=True)
app.add_typer(etl_app, name="etl")

def _ledger_table(ledger: list[dict]) -> Table:
    table = Table(title="Ledger")
    columns = ["entity", "rows_in", "inserted", "updated", "unchanged", "duplicates",
               "quarantined"]
    for column in columns:
        table.add_column(column, justify="left" if column == "entity" else "right")
    for row in ledger:
        table.add_row(*(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c])
                        for c in columns))
    return table


@etl_app.command("load")
def etl_load(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to load.")],
    mapping: Annotated[str, typer.Option(
        "--mapping", "-m",
        help="canonical, online-retail, orders-csv, or a mapping file.")] = "canonical",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Load source files through a mapping, with checks, quarantine and a ledger."""
    from etl.load import load_files

    settings = load_settings()
    with progress_bar(enabled=True) as update:
        result = load_files(settings, paths, mapping=mapping, progress=update)
    if as_json:
        print_json(result.to_dict())
        return
    for file in result.files:
        out.print(f"{file['status']:>10}  {file['path']}")
    if result.ledger:
        out.print(_ledger_table(result.ledger))
    out.print(f"Run {result.run_id} done in {result.seconds:.1f} s; expectations: "
              f"{result.expectations_passed} passed, {result.expectations_failed} failed.")


@etl_app.command("runs")
def etl_runs(
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """List ETL runs, newest first, with their ledger totals."""
    from studio.quality import list_runs

    runs = list_runs(load_settings())
    if as_json:
        print_json(runs)
        return
    if not runs:
        out.print("No ETL runs yet; load files with 'studio etl load PATH --mapping NAME'.")
        return
    columns = [c for c in ("run_id", "status", "mapping", "started_at", "rows_in", "inserted",
                           "updated", "unchanged", "duplicates", "quarantined", "message")
               if c in runs[0]]
    print_table("ETL runs", runs, columns)


def serve_studio(settings: Settings, port: int) -> None:
    """Replace this process with the Streamlit server for the studio on 127.0.0.1."""
    repo_root = Path(__file__).resolve().parents[2]
    app_path = repo_root / "studio" / "app.py"
    if not (repo_root / "pages").is_dir():
        raise UserError(f"The pages folder is missing beside {app_path}; install the studio "
                        "from its source checkout (pip install -e .).")
    os.environ["STUDIO_HOME"] = str(settings.home)
    os.chdir(repo_root)  # Streamlit reads .streamlit/config.toml from the working folder
    err.print(f"Serving Audience Studio on http://127.0.0.1:{port} (Ctrl+C to stop)")
    command = [sys.executable, "-m", "streamlit", "run", str(app_path),
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    os.execv(sys.executable, command)


@app.command("serve")
def serve(
    port: Annotated[int | None, typer.Option(help="Port to serve on (default 8501).")] = None,
) -> None:
    """Serve the studio in the browser on http://127.0.0.1:PORT."""
    settings = load_settings()
    serve_studio(settings, port or settings.port)


@app.command("demo")
def demo(
    customers: Annotated[int, typer.Option(help="Customers in the generated store.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same store.")] = 7,
    serve_after: Annotated[bool, typer.Option(
        "--serve/--no-serve", help="Serve the studio when the demo is ready.")] = True,
    reset: Annotated[bool, typer.Option(
        help="Replace a warehouse that holds other data.")] = False,
) -> None:
    """Generate a demo store, load it, and serve the studio."""
    from studio.demo import prepare_demo

    settings = load_settings()
    with progress_bar() as update:
        summary = prepare_demo(settings, customers=customers, seed=seed, reset=reset,
                               progress=update)
    out.print(summary)
    if serve_after:
        serve_studio(settings, settings.port)


from studio.cli import segments as _segments  # noqa: E402 - registers its commands on app

app.add_typer(_segments.segments_app, name="segments")
from studio.cli import ab as _ab  # noqa: E402

app.add_typer(_ab.ab_app, name="ab")
from studio.cli import models as _models  # noqa: E402

app.add_typer(_models.models_app, name="models")
from studio.cli import audiences as _audiences  # noqa: E402

app.add_typer(_audiences.audiences_app, name="audiences")


def main() -> None:
    """Entry point of the console script: run the app, turning errors into sentences."""
    try:
        app()  # Click reports usage mistakes itself and exits with code 2
    except UserError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as error:  # the last line of defence: no traceback for users
        if os.environ.get("STUDIO_DEBUG") == "1":
            raise
        err.print(f"[red]internal error:[/red] {type(error).__name__}: {error} "
                  "(set STUDIO_DEBUG=1 to see the traceback, and please report it)",
                  highlight=False, soft_wrap=True)
        sys.exit(1)
