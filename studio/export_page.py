"""What the Exports page shows and builds, apart from Streamlit so it can be tested alone.

The page (``pages/exports.py``) lays out widgets and calls these functions: the
destination form becomes a spec string (the CLI's ``--to``), runs and dead letters become
tables, a finished file export becomes a download read on the click, and the counts of a
run become the reconciliation a marketer reads (matched, consented, sent, failed).

Files exported from the page go to one file per audience under ``<home>/exports``, named
after the segment, the channel and any top N, rather than one file per run: the diff of
the next export is then taken against the file the last one wrote (so a dry run shows who
entered and who left), scheduled syncs keep refreshing the same file, and the delivered
state does not grow by a whole audience on every export. The download is named after the
run it came from.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from studio.audiences import history, outbox
from studio.audiences.destinations import parse_destination
from studio.audiences.omnisend import API_KEY_NAME
from studio.audiences.rest_client import read_secret
from studio.audiences.runner import ExportResult
from studio.audiences.webhook import SECRET_NAME
from studio.config import Settings
from studio.errors import UserError

KINDS = {"csv": "CSV file (download)", "parquet": "Parquet file (download)",
         "sql": "Database table", "omnisend": "Send engine (Omnisend API)",
         "webhook": "Webhook"}
"""Destination kind -> the label the page offers."""
FILE_KINDS = ("csv", "parquet")
SECRET_OF = {"omnisend": API_KEY_NAME, "webhook": SECRET_NAME}
MIME_OF = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
DIFF_ACTIONS = {"add": "To add", "update": "To update", "remove": "To remove"}
EXAMPLES = 5
RUN_COLUMNS = ["run", "segment", "version", "destination", "status", "dry_run", "started",
               "matched", "consented", "to_add", "to_update", "to_remove", "unchanged",
               "sent", "failed", "dead", "created_by"]


def _slug(name: str) -> str:
    """A file-name-safe form of a segment name, with a digest so two names never collide."""
    readable = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "segment"
    return f"{readable}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:6]}"


def exports_folder(settings: Settings) -> Path:
    """Where the page writes its files: ``<home>/exports``."""
    return settings.home / "exports"


def export_path(settings: Settings, segment: str, kind: str, channel: str = "email",
                top_n: int | None = None, score_target: str | None = None) -> Path:
    """The one file of this audience under :func:`exports_folder`."""
    if kind not in FILE_KINDS:
        raise ValueError(f"{kind!r} is not a file kind")
    parts = [_slug(segment), channel]
    if top_n is not None:
        parts.append(f"top{top_n}-{re.sub(r'[^A-Za-z0-9_]+', '-', score_target or '')}")
    return exports_folder(settings) / f"{'-'.join(parts)}.{kind}"


def destination_spec(settings: Settings, segment: str, kind: str, *, url: str = "",
                     table: str = "", channel: str = "email", top_n: int | None = None,
                     score_target: str | None = None) -> str:
    """The spec (as the CLI's ``--to`` takes it) of what the form describes, checked.

    For a file the exports folder is created, since the spec must name an existing folder.
    Checking parses the spec only: nothing is connected to or written at the destination.

    Raises
    ------
    UserError
        One sentence naming the missing or malformed field and how to write it.
    """
    if kind not in KINDS:
        raise UserError(f"Unknown destination kind {kind!r}; choose one of "
                        f"{', '.join(KINDS)}.")
    url, table = url.strip(), table.strip()
    if kind in FILE_KINDS:
        path = export_path(settings, segment, kind, channel, top_n, score_target)
        path.parent.mkdir(parents=True, exist_ok=True)
        spec = f"{kind}:{path}"
    elif kind == "sql":
        if not url:
            raise UserError("Give the database's SQLAlchemy URL, such as "
                            "sqlite:///audience.db or postgresql://host/marketing.")
        if not table:
            raise UserError("Give the table to keep the audience in, such as audience.")
        spec = f"sql:{url}#{table}"
    else:
        if not url:
            raise UserError("Give the send engine's base URL, such as https://api.omnisend.com."
                            if kind == "omnisend" else
                            "Give the webhook's URL, such as https://example.com/hooks/audience.")
        spec = f"{kind}:{url}"
    parse_destination(spec)
    return spec


def secret_configured(kind: str) -> tuple[str, bool] | None:
    """The secret a kind needs and whether the environment or secrets.toml holds it.

    Only the answer leaves this function, never the value.
    """
    name = SECRET_OF.get(kind)
    return None if name is None else (name, bool(read_secret(name)))


# ---------------------------------------------------------------- a run's figures


@dataclass(frozen=True)
class Figure:
    """One labelled count, as a metric shows it."""

    label: str
    value: int
    help: str


def diff_figures(counts: dict[str, int]) -> list[Figure]:
    """What a dry run found: who matched, who may be reached, and the diff."""
    return [
        Figure("Matched", counts["matched"], "Members of the segment at its as-of time."),
        Figure("Consented", counts["consented"], "Members subscribed on the channel now, "
               "with an address (after any top N): the audience."),
        Figure("To add", counts["to_add"], "Not yet at the destination."),
        Figure("To update", counts["to_update"], "At the destination with other details."),
        Figure("To remove", counts["to_remove"], "At the destination but no longer in the "
               "audience (mirrors only)."),
        Figure("Unchanged", counts["unchanged"], "Already at the destination as they are; "
               "not sent again."),
    ]


def reconciliation(counts: dict[str, int]) -> list[Figure]:
    """How a run went, from the segment to the destination's confirmations."""
    return [
        Figure("Matched", counts["matched"], "Members of the segment at its as-of time."),
        Figure("Consented", counts["consented"], "Subscribed on the channel at send time, "
               "with an address: the audience."),
        Figure("Sent", counts.get("sent", 0), "Changes the destination confirmed."),
        Figure("Failed", counts.get("failed", 0), "Changes not confirmed yet, with attempts "
               "left: exporting again sends them."),
        Figure("Dead", counts.get("dead", 0), "Changes that failed every attempt: dead "
               "letters, listed under History for a retry."),
    ]


def diff_examples(result: ExportResult, limit: int = EXAMPLES) -> pl.DataFrame:
    """Per action of a dry run's diff: how many, and the first few customer ids."""
    return pl.DataFrame({
        "action": list(DIFF_ACTIONS.values()),
        "customers": [len(result.changes.get(action, [])) for action in DIFF_ACTIONS],
        "first_ids": [", ".join(result.changes.get(action, [])[:limit])
                      for action in DIFF_ACTIONS],
    })


def samples_frame(result: ExportResult) -> pl.DataFrame:
    """A dry run's sample payloads, one row each, as they would be sent."""
    if not result.samples:
        return pl.DataFrame({"action": [], "customer_id": []}, schema={
            "action": pl.String, "customer_id": pl.String})
    return pl.DataFrame(result.samples, infer_schema_length=None)


# ---------------------------------------------------------------- downloads


REPLACED = ("This file was replaced by a later export of the same audience after the page "
            "offered it; open the Exports page again and download the latest run's file.\n")
"""What a download holds when its file changed between the offer and the click."""


@dataclass(frozen=True)
class Download:
    """A file export offered for download, read only when the user asks for it.

    An audience's file can hold a million rows: reading it on every rerun of the page (to
    hand Streamlit the bytes) would cost seconds and memory each time. The page passes
    :meth:`read` instead, which Streamlit calls on the click.
    """

    path: Path
    file_name: str
    mime: str
    stamp: tuple[int, int]
    """The file's size and modification time when offered."""

    def read(self) -> bytes:
        """The file's bytes, or :data:`REPLACED` if another export rewrote it meanwhile.

        The file name promises this run's file; a later export's contents under it would
        be a silent lie, so a changed file yields the sentence instead.
        """
        try:
            if _stamp_of(self.path) == self.stamp:
                return self.path.read_bytes()
        except FileNotFoundError:
            pass
        return REPLACED.encode()


def _stamp_of(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def run_download(settings: Settings, run: dict) -> Download | None:
    """The file a run wrote, if it is in the exports folder and still holds that run.

    A file is replaced whole by the next export of its audience, so only the latest real
    run of the audience can offer it; a dry run or a failed run never wrote it.
    """
    if run["destination_kind"] not in FILE_KINDS or run["dry_run"] or (
            run["status"] != "succeeded"):
        return None
    path = Path(run["destination"].partition(":")[2]).resolve()
    if path.parent != exports_folder(settings).resolve() or not path.is_file():
        return None
    if history.latest_run_id(settings, run["audience_key"]) != run["run_id"]:
        return None
    return Download(path, f"{path.stem}-run-{run['run_id']}{path.suffix}",
                    MIME_OF[run["destination_kind"]], _stamp_of(path))


# ---------------------------------------------------------------- history


def runs_frame(runs: list[dict]) -> pl.DataFrame:
    """The history table: one row per run, newest first, with its counts."""
    rows = [{"run": r["run_id"], "segment": r["segment"], "version": r["segment_version"],
             "destination": r["destination"], "status": r["status"],
             "dry_run": bool(r["dry_run"]), "started": r["started_at"],
             **{name: r[name] for name in RUN_COLUMNS[7:-1]}, "created_by": r["created_by"]}
            for r in runs]
    return pl.DataFrame(rows, schema={
        "run": pl.Int64, "segment": pl.String, "version": pl.Int64, "destination": pl.String,
        "status": pl.String, "dry_run": pl.Boolean, "started": pl.Datetime,
        **dict.fromkeys(RUN_COLUMNS[7:-1], pl.Int64), "created_by": pl.String})


def run_label(run: dict) -> str:
    """How a run reads in a picker."""
    kind = "dry run" if run["dry_run"] else run["status"]
    return (f"Run {run['run_id']} · {run['segment']} v{run['segment_version']} → "
            f"{run['destination']} · {kind}")


def dead_letters_frame(settings: Settings, run_id: int) -> pl.DataFrame:
    """A run's dead letters: who, what change, how many attempts, and the last error."""
    rows = [{"customer_id": d["customer_id"], "action": d["action"],
             "attempts": d["attempts"], "last_error": d["last_error"],
             "updated_at": d["updated_at"]} for d in outbox.dead_letters(settings, run_id)]
    return pl.DataFrame(rows, schema={"customer_id": pl.String, "action": pl.String,
                                      "attempts": pl.Int64, "last_error": pl.String,
                                      "updated_at": pl.Datetime})


def retry_needs_destination(run: dict) -> bool:
    """Whether a retry must be given the destination again (its record hides a secret)."""
    return "***" in run["destination"]


# ---------------------------------------------------------------- schedules


def schedules_frame(schedules: list[dict]) -> pl.DataFrame:
    """The schedules table: what is kept in sync, and how its last sync went."""
    rows = [{"schedule": s["schedule_id"], "segment": s["segment"],
             "destination": s["destination"], "channel": s["channel"],
             "top_n": s["top_n"], "by": s["score_target"], "created_by": s["created_by"],
             "last_run": s["last_run_id"], "last_status": s["last_status"],
             "last_synced": s["last_synced_at"]} for s in schedules]
    return pl.DataFrame(rows, schema={
        "schedule": pl.Int64, "segment": pl.String, "destination": pl.String,
        "channel": pl.String, "top_n": pl.Int64, "by": pl.String, "created_by": pl.String,
        "last_run": pl.Int64, "last_status": pl.String, "last_synced": pl.Datetime})


def sync_frame(outcomes: list[dict]) -> pl.DataFrame:
    """One row per schedule a sync ran: its run, status, what was sent, or the error."""
    rows = [{"schedule": o["schedule_id"], "segment": o["segment"],
             "destination": o["destination"], "run": o["run_id"], "status": o["status"],
             "consented": (o.get("counts") or {}).get("consented"),
             "sent": (o.get("counts") or {}).get("sent"),
             "dead": (o.get("counts") or {}).get("dead"), "error": o.get("error")}
            for o in outcomes]
    return pl.DataFrame(rows, schema={
        "schedule": pl.Int64, "segment": pl.String, "destination": pl.String,
        "run": pl.Int64, "status": pl.String, "consented": pl.Int64, "sent": pl.Int64,
        "dead": pl.Int64, "error": pl.String})


def check_top_n(enabled: bool, top_n: int | None, score_target: str | None
                ) -> tuple[int | None, str | None]:
    """The top N and target to pass on: both when ranking, neither otherwise.

    Raises
    ------
    UserError
        When ranking is asked for without a target to rank by.
    """
    if not enabled:
        return None, None
    if not score_target:
        raise UserError("Ranking by a score needs a score target; train and score a model "
                        "on the Models page, or turn off “top N by score”.")
    return int(top_n or 0), score_target
