"""``studio demo``: a generated store, loaded and ready to explore.

The store's files are written once per (customers, seed) under ``STUDIO_HOME`` and
reused while they match; loading is idempotent, so running the demo twice costs little.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

from studio.config import Settings
from studio.errors import UserError

Progress = Callable[[str, float], None]


def _manifest_matches(settings: Settings, customers: int, seed: int) -> bool:
    manifest = settings.demo_store_dir / "manifest.json"
    if not manifest.is_file():
        return False
    recorded = json.loads(manifest.read_text(encoding="utf-8"))
    return recorded.get("customers") == customers and recorded.get("seed") == seed


def _warehouse_holds_other_data(settings: Settings) -> bool:
    """True when the warehouse was loaded from files other than the demo store's."""
    if not settings.warehouse_path.exists():
        return False
    from studio.warehouse import connect_reader

    demo_dir = str(settings.demo_store_dir.resolve())
    with connect_reader(settings) as con:
        paths = [row[0] for row in con.execute("SELECT path FROM etl_files").fetchall()]
    return any(not path.startswith(demo_dir) for path in paths)


def prepare_demo(settings: Settings, customers: int = 20_000, seed: int = 7,
                 reset: bool = False, progress: Progress | None = None) -> str:
    """Generate (if needed) and load the demo store; return a one-line summary."""
    from etl.generate import generate_store
    from etl.load import load_files

    report = progress or (lambda _label, _fraction: None)
    settings.ensure_home()
    if reset:
        settings.warehouse_path.unlink(missing_ok=True)
    elif _warehouse_holds_other_data(settings):
        raise UserError(f"{settings.warehouse_path} already holds data loaded from other "
                        "files; use another STUDIO_HOME or pass --reset to replace it.")
    fresh_store = not _manifest_matches(settings, customers, seed)
    if fresh_store:
        shutil.rmtree(settings.demo_store_dir, ignore_errors=True)
        if settings.warehouse_path.exists():  # a store of another size or seed was loaded
            settings.warehouse_path.unlink()
        generate_store(settings.demo_store_dir, customers=customers, seed=seed,
                       progress=lambda label, f: report(f"generating: {label}", 0.5 * f))
    result = load_files(settings, [settings.demo_store_dir], mapping="canonical",
                        progress=lambda label, f: report(f"loading: {label}", 0.4 + 0.2 * f))
    inserted = sum(row["inserted"] for row in result.ledger)
    models = train_and_score_demo(settings, lambda label, f: report(label, 0.6 + 0.4 * f))
    return (f"Demo store of {customers:,} customers (seed {seed}) ready in "
            f"{settings.home}: {inserted:,} rows loaded in run {result.run_id}; {models}")


DEMO_TARGETS = (("purchase", 90), ("purchase", 30), ("churn", 90), ("spend", 90))
"""What the demo trains and scores, so predictive segments work from the start."""


def train_and_score_demo(settings: Settings, progress: Progress) -> str:
    """Train each demo target that has no champion yet, then score every champion.

    A store too small for the minimum-data gate keeps going without that model.
    """
    from models.backtest import Target
    from models.registry import champion_version
    from models.scoring import score_customers
    from models.training import train_target
    from studio.warehouse import connect_reader

    trained, skipped = [], []
    for index, (kind, horizon) in enumerate(DEMO_TARGETS):
        target = Target(kind, horizon)
        share = 1 / len(DEMO_TARGETS)
        progress(f"training {target.name}", share * index)
        try:
            if champion_version(settings, target.name) is None:
                with connect_reader(settings) as con:
                    train_target(settings, con, target)
            score_customers(settings, target.name)
            trained.append(target.name)
        except UserError as error:
            skipped.append(f"{target.name} ({error})")
    progress("models ready", 1.0)
    summary = f"scored {', '.join(trained)}." if trained else "no model could be trained."
    return summary + (f" Skipped: {'; '.join(skipped)}" if skipped else "")
