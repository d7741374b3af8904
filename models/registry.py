"""The model registry: versioned artifacts under ``STUDIO_HOME``, a champion per target.

Layout::

    <home>/artifacts/models/<target>/<version>/card.json    the model card
    <home>/artifacts/models/<target>/<version>/model.json   candidate + calibration
    <home>/artifacts/models/<target>/champion.json          {"current": v, "history": [...]}

Everything is JSON (LightGBM's own text model inside it), read with ``json.loads`` and
rebuilt by :func:`models.candidates.candidate_from_document`: loading an artifact never
runs code from a file. A version is written to a temporary folder and renamed into place,
so a crash never leaves half a model; the champion pointer is replaced atomically too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from models.backtest import FittedCandidate
from models.calibration import Calibration
from models.candidates import candidate_from_document
from studio.config import Settings
from studio.errors import UserError

VERSION_PATTERN = re.compile(r"^[a-z]+_\d+d-\d{8}T\d{6}(-\d+)?$")


def registry_root(settings: Settings) -> Path:
    """The folder holding every target's models."""
    return settings.artifacts_dir / "models"


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def _replace_json(path: Path, document: dict) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, path)


def new_version(settings: Settings, target_name: str, now: datetime | None = None) -> str:
    """A version id that sorts by time, e.g. ``purchase_90d-20261129T051500``."""
    stamp = (now or datetime.now()).strftime("%Y%m%dT%H%M%S")
    version, suffix = f"{target_name}-{stamp}", 1
    while (registry_root(settings) / target_name / version).exists():
        suffix += 1
        version = f"{target_name}-{stamp}-{suffix}"
    return version


def save_model(settings: Settings, version: str, card: dict,
               fitted: FittedCandidate) -> Path:
    """Write a version's card and model; returns its folder."""
    target_name = card["target"]
    folder = registry_root(settings) / target_name / version
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".incoming-"))
    try:
        _write_json(staging / "card.json", {**card, "version": version})
        _write_json(staging / "model.json", {"candidate": fitted.model.to_document(),
                                             "calibration": fitted.calibration.to_document()})
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _target_of(version: str) -> str:
    if not VERSION_PATTERN.match(version):
        raise UserError(f"{version!r} is not a model version; 'studio models list' shows them.")
    return version.split("-", 1)[0]


def _folder(settings: Settings, version: str) -> Path:
    folder = registry_root(settings) / _target_of(version) / version
    if not (folder / "card.json").exists():
        raise UserError(f"There is no model version {version!r}; 'studio models list' shows "
                        "the versions there are.")
    return folder


def load_card(settings: Settings, version: str) -> dict:
    """A version's model card."""
    return json.loads((_folder(settings, version) / "card.json").read_text(encoding="utf-8"))


@dataclass
class LoadedModel:
    """A registered model ready to score."""

    version: str
    card: dict
    fitted: FittedCandidate


def load_model(settings: Settings, version: str) -> LoadedModel:
    """A version's card, candidate and calibration, rebuilt from JSON."""
    folder = _folder(settings, version)
    document = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    model = candidate_from_document(document["candidate"])
    fitted = FittedCandidate(model.kind, model,
                             Calibration.from_document(document["calibration"]))
    return LoadedModel(version, load_card(settings, version), fitted)


def _pointer_path(settings: Settings, target_name: str) -> Path:
    return registry_root(settings) / target_name / "champion.json"


def champion_pointer(settings: Settings, target_name: str) -> dict:
    """``{"current": version or None, "history": [older champions, newest last]}``."""
    path = _pointer_path(settings, target_name)
    if not path.exists():
        return {"current": None, "history": []}
    return json.loads(path.read_text(encoding="utf-8"))


def champion_version(settings: Settings, target_name: str) -> str | None:
    """The version that scores ``target_name`` now, if any."""
    return champion_pointer(settings, target_name)["current"]


def promote(settings: Settings, version: str) -> dict:
    """Make ``version`` its target's champion; the previous one can be rolled back to."""
    _folder(settings, version)
    target_name = _target_of(version)
    pointer = champion_pointer(settings, target_name)
    if pointer["current"] == version:
        return pointer
    history = [*pointer["history"], pointer["current"]] if pointer["current"] else (
        pointer["history"])
    pointer = {"current": version, "history": history,
               "changed_at": datetime.now().isoformat(timespec="seconds")}
    _replace_json(_pointer_path(settings, target_name), pointer)
    return pointer


def rollback(settings: Settings, target_name: str) -> dict:
    """Make the previous champion of ``target_name`` current again."""
    pointer = champion_pointer(settings, target_name)
    if not pointer["history"]:
        raise UserError(f"{target_name} has no earlier champion to roll back to; "
                        "'studio models list' shows its versions.")
    pointer = {"current": pointer["history"][-1], "history": pointer["history"][:-1],
               "changed_at": datetime.now().isoformat(timespec="seconds")}
    _replace_json(_pointer_path(settings, target_name), pointer)
    return pointer


def list_versions(settings: Settings) -> list[dict]:
    """Every registered version, newest first, with its card's headline figures."""
    root = registry_root(settings)
    if not root.exists():
        return []
    rows = []
    for card_path in root.glob("*/*/card.json"):
        card = json.loads(card_path.read_text(encoding="utf-8"))
        current = champion_version(settings, card["target"])
        rows.append({"version": card["version"], "target": card["target"],
                     "candidate": card["candidate"], "created_at": card["created_at"],
                     "backtest_auroc": card.get("champion_metrics", {}).get("auroc"),
                     "champion": card["version"] == current})
    return sorted(rows, key=lambda row: row["created_at"], reverse=True)
