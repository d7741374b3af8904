"""Fixtures for the model tests: the UCI Online Retail warehouse and the demo store's.

Loading UCI through the real ETL takes 10 to 40 seconds, so it happens once per session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from studio.config import Settings
from studio.warehouse import connect_reader
from tests.conftest import SHARED_DATA, make_settings

RETAIL_FILE = SHARED_DATA / "online_retail" / "online_retail_uci.csv.gz"


@pytest.fixture(scope="session")
def retail_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A studio home whose warehouse holds UCI Online Retail, loaded by the real ETL.

    Session-scoped and shared: tests must only read it.
    """
    from etl.load import load_files

    settings = make_settings(tmp_path_factory.mktemp("retail-home"))
    load_files(settings, [RETAIL_FILE], mapping="online-retail")
    return settings


@pytest.fixture(scope="session")
def retail_con(retail_home: Settings):
    """A sealed read-only connection to the UCI warehouse."""
    con = connect_reader(retail_home)
    yield con
    con.close()


@pytest.fixture(scope="session")
def demo_con(demo_home: Settings):
    """A sealed read-only connection to the demo store's warehouse."""
    con = connect_reader(demo_home)
    yield con
    con.close()


@pytest.fixture
def demo_copy(demo_home: Settings, tmp_path: Path):
    """A read-write connection to a private copy of the demo warehouse, to be tampered with."""
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(demo_home.warehouse_path, path)
    con = duckdb.connect(str(path))
    yield con
    con.close()
