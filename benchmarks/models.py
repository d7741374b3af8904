"""Model benchmark: the studio's scoring against the raw feature SQL plus a bare LightGBM predict.

On the 1,000,000-customer warehouse of ``benchmarks/segments.py`` (about 22,000,000
events; build it with that script first), in one run:

1. **Training.** ``models.training.train_target`` for ``purchase_90d`` (backtests at
   ``--origins`` origins, the champion by mean AUROC, retrained on the latest data and
   registered), in a child process so that its peak memory (max RSS of the whole
   process, interpreter and libraries included) is its own. If the champion is not
   LightGBM, the child also fits and registers a LightGBM model the same way (the final
   step of ``train_target``), in a second registry, so that the scoring ratio compares like
   with like.
2. **Scoring**, each side ``--repeat`` times, interleaved (the order flips every round),
   medians reported:

   (a) the studio: ``models.scoring.score_frame`` (champion lookup, model loading, the
       scoring day, ``build_features``, the calibrated predict, deciles, the frame), for
       the LightGBM model and, if different, for the champion;
   (b) the baseline: ``feature_query``'s SQL run as is (``con.sql(sql, params).pl()``),
       the same matrix (``CategoryCodes.matrix``) and a bare ``booster.predict``.

   Every round checks that both sides score the same customers with the same numbers
   (the baseline's raw scores put through the model's calibration). Then it prints the
   ratio (goal: at most 1.5) and what the studio spends beyond the baseline, each part
   timed on its own.

The warehouse is only read (``connect_reader``). The registry is written under
``--scratch`` (default ``/tmp/modelbench-home``): ``train_target`` and ``score_frame`` take
the warehouse connection and the settings apart, and use the settings only for the
registry, so the benchmark opens the shared warehouse read-only and hands them a scratch
home, with no copy of the 1 GB file.

    python benchmarks/models.py --origins 1     # 1M warehouse; 3 origins take over 15 min here
    python benchmarks/models.py --reuse-model --repeat 5   # score again with the trained models

Timings on this shared 2-core machine swing with the other jobs on it: ``booster.predict``
(both sides) alone ranged from 41 to 77 s on the same matrix. Set ``OMP_WAIT_POLICY=PASSIVE``
to stop idle OpenMP threads from spinning; the machine line prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from models.backtest import Origin, Target, fit_origin  # noqa: E402
from models.features import feature_query  # noqa: E402
from models.labels import last_complete_day  # noqa: E402
from models.registry import (  # noqa: E402
    champion_version,
    load_model,
    new_version,
    promote,
    save_model,
)
from models.scoring import deciles, score_frame  # noqa: E402
from studio.config import Settings  # noqa: E402
from studio.warehouse import connect_reader  # noqa: E402

TARGET = Target("purchase", 90)
GOAL = 1.5
CLI_ORIGINS = 3


def peak_rss_bytes() -> int:
    """Peak resident memory of the current process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def home_settings(home: Path) -> Settings:
    """Settings for a studio home (its own SQLite state file, never opened here)."""
    return Settings(home=home, state_url=f"sqlite:///{home / 'state.db'}")


def registries(scratch: Path) -> tuple[Settings, Settings]:
    """The champion's registry and the LightGBM one (the same unless the champion differs)."""
    return home_settings(scratch), home_settings(scratch / "lightgbm")


def check_warehouse(settings: Settings) -> tuple[int, int]:
    """Customers and events in the shared warehouse; stop if there is none."""
    if not settings.warehouse_path.exists():
        raise SystemExit(f"No warehouse at {settings.warehouse_path}; build it with "
                         f"'python benchmarks/segments.py --home {settings.home}' first.")
    with connect_reader(settings) as con:
        return (con.execute("SELECT count(*) FROM customers").fetchall()[0][0],
                con.execute("SELECT count(*) FROM events").fetchall()[0][0])


# ---------------------------------------------------------------- 1. training (child)


def train_champion(warehouse: Path, scratch: Path, origins: int) -> dict:
    """Train and promote the champion; also a LightGBM model if the champion is not one."""
    from models.training import train_target

    champion_home, lightgbm_home = registries(scratch)
    for folder in (champion_home.artifacts_dir, lightgbm_home.home):  # only what we made
        shutil.rmtree(folder, ignore_errors=True)
    champion_home.ensure_home()
    final_started = []

    def progress(label: str, fraction: float) -> None:
        if label.startswith("training the champion"):
            final_started.append(time.perf_counter())
        print(f"  [{time.perf_counter() - started:6.0f} s] {fraction:4.0%} {label}",
              file=sys.stderr, flush=True)

    with connect_reader(home_settings(warehouse)) as con:
        started = time.perf_counter()
        result = train_target(champion_home, con, TARGET, origins=origins, progress=progress)
        ended = time.perf_counter()
        figures = {"seconds": ended - started, "peak_rss": peak_rss_bytes(),
                   "final_seconds": ended - final_started[0],
                   "version": result.version, "champion": result.card["candidate"],
                   "origins": origins, "auroc": result.card["champion_metrics"]["auroc"],
                   "candidates": {kind: metrics["auroc"] for kind, metrics
                                  in result.card["candidates_mean"].items()},
                   "training_rows": result.card["training_rows"]}
        lightgbm_home.ensure_home()
        if result.card["candidate"] == "lightgbm":
            version = new_version(lightgbm_home, TARGET.name)
            save_model(lightgbm_home, version, result.card, result.fitted)
        else:
            started = time.perf_counter()
            final = fit_origin(con, TARGET, Origin(last_complete_day(con), TARGET.horizon_days),
                               ("lightgbm",))
            figures["lightgbm_seconds"] = time.perf_counter() - started
            version = new_version(lightgbm_home, TARGET.name)
            card = {**result.card, "candidate": "lightgbm",
                    "note": "benchmark only: not the champion, trained for a like-with-like "
                            "scoring comparison"}
            save_model(lightgbm_home, version, card, final.candidates["lightgbm"])
        promote(lightgbm_home, version)
    (scratch / "training.json").write_text(json.dumps(figures), encoding="utf-8")
    return figures


def train_in_child(warehouse: Path, scratch: Path, origins: int) -> dict:
    """Run the training in a fresh process (progress on stderr) and read back its figures."""
    output = subprocess.run(
        [sys.executable, __file__, "--child", "--home", str(warehouse), "--scratch",
         str(scratch), "--origins", str(origins)],
        check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- 2. scoring


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def studio_scores(settings: Settings, con) -> pl.DataFrame:
    """The studio's path: ``score_frame`` from the registry's champion to the frame."""
    frame, _version, _scored_at = score_frame(settings, con, TARGET.name)
    return frame


def baseline_scores(con, day, model) -> tuple[pl.DataFrame, np.ndarray, dict[str, float]]:
    """The least any scoring must do: the raw feature SQL, the matrix, a bare predict."""
    booster, codes = model.fitted.model.booster, model.fitted.model.codes
    parts = {}
    sql, params = feature_query(day)
    parts["feature SQL -> polars"], frame = timed(lambda: con.sql(sql, params=params).pl())
    parts["matrix"], matrix = timed(codes.matrix, frame)
    parts["booster.predict"], raw = timed(
        lambda: booster.predict(matrix, num_iteration=booster.best_iteration or None))
    return frame, raw, parts


def studio_extras(settings: Settings, con, raw: np.ndarray, ids: pl.Series) -> dict[str, float]:
    """Each step ``score_frame`` takes beyond the baseline, timed on its own."""
    parts = {}
    parts["champion lookup + model load"], model = timed(
        lambda: load_model(settings, champion_version(settings, TARGET.name)))
    parts["scoring day (2 queries)"], _ = timed(
        lambda: (last_complete_day(con),
                 con.execute("SELECT max(ordered_at) FROM orders").fetchall()))
    parts["calibration"], probabilities = timed(model.fitted.calibration.apply, raw)
    parts["deciles"], ranks = timed(deciles, probabilities)
    parts["frame"], _ = timed(lambda: pl.DataFrame(
        {"customer_id": ids, "score": probabilities.astype(float), "decile": ranks}))
    return parts


def check_agreement(studio: pl.DataFrame, baseline: pl.DataFrame, raw: np.ndarray,
                    model) -> None:
    """Stop unless both sides scored the same customers with the same probabilities."""
    if not studio["customer_id"].equals(baseline["customer_id"]):
        raise SystemExit("The studio and the baseline scored different customers; the "
                         "timings would compare different things.")
    expected = model.fitted.calibration.apply(raw)
    if not np.allclose(studio["score"].to_numpy(), expected, rtol=0, atol=1e-12):
        raise SystemExit("The studio's scores differ from the baseline's calibrated predict.")


def measure(champion_home: Settings, lightgbm_home: Settings, con,
            repeat: int) -> tuple[dict[str, list[float]], dict]:
    """Interleaved rounds of every side: each timing's seconds, and what was scored."""
    day = last_complete_day(con)
    model = load_model(lightgbm_home, champion_version(lightgbm_home, TARGET.name))
    same = champion_version(champion_home, TARGET.name) is None or (
        load_model(champion_home, champion_version(champion_home, TARGET.name)).card[
            "candidate"] == "lightgbm")
    times: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    for round_ in range(repeat):
        sides = ["studio", "baseline"] if round_ % 2 == 0 else ["baseline", "studio"]
        for side in sides:
            cpu_started = time.process_time()
            if side == "studio":
                seconds, studio = timed(studio_scores, lightgbm_home, con)
                record("studio", seconds)
            else:
                seconds, (frame, raw, parts) = timed(baseline_scores, con, day, model)
                record("baseline", seconds)
                for name, part in parts.items():
                    record(name, part)
            record(f"{side} cpu", time.process_time() - cpu_started)
        check_agreement(studio, frame, raw, model)
        for name, part in studio_extras(lightgbm_home, con, raw, frame["customer_id"]).items():
            record(name, part)
        if not same:
            seconds, _ = timed(studio_scores, champion_home, con)
            record("champion", seconds)
        print(f"  round {round_ + 1}: studio {times['studio'][-1]:.2f} s (CPU "
              f"{times['studio cpu'][-1]:.2f} s), baseline {times['baseline'][-1]:.2f} s (CPU "
              f"{times['baseline cpu'][-1]:.2f} s)", flush=True)
        scored = {"customers": len(frame), "day": day, "version": model.version,
                  "trees": model.fitted.model.booster.best_iteration
                  or model.fitted.model.booster.num_trees()}
        del studio, frame, raw
    return times, scored


def report(training: dict | None, times: dict, scored: dict, repeat: int,
           load_before: float) -> None:
    """The training figures, the scoring table and the ratio."""
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before:.1f} before the run, "
          f"{os.getloadavg()[0]:.1f} after; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset: OpenMP threads spin while idle)')}")
    if training:
        if training.get("reused"):
            print("\n(training figures from the earlier run that trained these models)")
        print(f"\ntraining {TARGET.name} ({training['origins']} backtest origin"
              f"{'s' if training['origins'] != 1 else ''}, 4 candidates, then the champion "
              f"retrained on the latest data): {training['seconds']:.0f} s "
              f"({training['seconds'] / 60:.1f} min), peak memory "
              f"{training['peak_rss'] / 2**30:.2f} GiB (max RSS of the training process)")
        print(f"  champion: {training['champion']} (mean AUROC {training['auroc']:.4f}; "
              + ", ".join(f"{k} {v:.4f}" for k, v in sorted(training["candidates"].items()))
              + f"), {training['training_rows']:,} training rows, version "
              f"{training['version']}")
        print(f"  of the {training['seconds']:.0f} s, the backtest took "
              f"{training['seconds'] - training['final_seconds']:.0f} s and the champion's "
              f"final fit (features, labels, training, calibration) "
              f"{training['final_seconds']:.0f} s")
        if training["origins"] < CLI_ORIGINS:
            print(f"  NOTE: trained on {training['origins']} backtest origin(s) (--origins), "
                  f"not the {CLI_ORIGINS} of 'studio models train'")
        if "lightgbm_seconds" in training:
            print(f"  LightGBM fitted and registered apart for the comparison in "
                  f"{training['lightgbm_seconds']:.0f} s")
    print(f"\nscoring {scored['customers']:,} buyers as of {scored['day']} with "
          f"{scored['version']} (LightGBM, {scored['trees']} trees), median of {repeat} "
          "interleaved runs (seconds)")
    rows = [("studio: score_frame (LightGBM)", "studio"),
            ("baseline: SQL + matrix + predict", "baseline"),
            ("  feature SQL -> polars", "feature SQL -> polars"),
            ("  matrix", "matrix"), ("  booster.predict", "booster.predict")]
    if "champion" in median:
        rows.insert(1, ("studio: score_frame (champion)", "champion"))
    for label, key in rows:
        print(f"  {label:40} {median[key]:8.3f}")
    extras = ["champion lookup + model load", "scoring day (2 queries)", "calibration",
              "deciles", "frame"]
    print("  studio beyond the baseline, each part timed on its own:")
    for name in extras:
        print(f"    {name:38} {median[name]:8.3f}")
    print(f"    {'sum of the parts':38} {sum(median[n] for n in extras):8.3f}  (measured "
          f"difference of the medians: {median['studio'] - median['baseline']:+.3f})")
    ratio = median["studio"] / median["baseline"]
    per_round = statistics.median(a / b for a, b in zip(times["studio"], times["baseline"],
                                                         strict=True))
    print(f"\nratio studio/baseline: {ratio:.2f} (goal <= {GOAL}): "
          f"{'met' if ratio <= GOAL else 'NOT met'}")
    print(f"  less sensitive to other processes: median of the per-round ratios "
          f"{per_round:.2f}; CPU time of this process (every thread) "
          f"{median['studio cpu']:.1f} s vs {median['baseline cpu']:.1f} s, ratio "
          f"{median['studio cpu'] / median['baseline cpu']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/segbench-home"),
                        help="studio home holding the 1M-customer warehouse (only read)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/modelbench-home"),
                        help="studio home for the benchmark's model registry (rewritten)")
    parser.add_argument("--origins", type=int, default=CLI_ORIGINS,
                        help="backtest origins to train on")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side")
    parser.add_argument("--reuse-model", action="store_true",
                        help="skip training when --scratch already holds the models")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(train_champion(args.home, args.scratch, args.origins)))
        return
    load_before = os.getloadavg()[0]
    if args.scratch.resolve() == args.home.resolve():
        raise SystemExit("--scratch must be another folder than --home: the benchmark only "
                         "reads the warehouse and writes its models elsewhere.")
    warehouse = home_settings(args.home)
    customers, events = check_warehouse(warehouse)
    print(f"warehouse {warehouse.warehouse_path} (read only): {customers:,} customers, "
          f"{events:,} events; registry under {args.scratch}")
    champion_home, lightgbm_home = registries(args.scratch)
    training = None
    if args.reuse_model and champion_version(lightgbm_home, TARGET.name):
        print("reusing the models already trained there")
        saved = args.scratch / "training.json"
        if saved.exists():
            training = json.loads(saved.read_text(encoding="utf-8")) | {"reused": True}
    else:
        print(f"training {TARGET.name} on {args.origins} origin(s) in a child process ...",
              flush=True)
        training = train_in_child(args.home, args.scratch, args.origins)
    print("scoring ...", flush=True)
    with connect_reader(warehouse) as con:
        times, scored = measure(champion_home, lightgbm_home, con, args.repeat)
    report(training, times, scored, args.repeat, load_before)
    print(f"peak memory of the scoring process: {peak_rss_bytes() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
