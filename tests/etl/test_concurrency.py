"""The app keeps reading while an ETL run writes in another process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from etl.load import load_files
from studio.warehouse import connect_reader, fetch_scalar
from tests.conftest import SHARED_DATA
from tests.etl.test_load import CUSTOMERS, write


def test_readers_see_the_old_or_the_new_warehouse_never_an_error(settings, tmp_path):
    write(tmp_path / "store" / "customers.csv", "\n".join(CUSTOMERS.splitlines()[:3]) + "\n")
    load_files(settings, [tmp_path / "store"], mapping="canonical")
    before = 2
    env = {**os.environ, "STUDIO_HOME": str(settings.home)}
    writer = subprocess.Popen(
        [sys.executable, "-m", "studio", "etl", "load", "--json", "--mapping", "online-retail",
         str(SHARED_DATA / "online_retail" / "online_retail_uci.csv.gz")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    reads = 0
    deadline = time.monotonic() + 300
    while writer.poll() is None and time.monotonic() < deadline:
        with connect_reader(settings) as con:
            seen.add(fetch_scalar(con, "SELECT count(*) FROM customers"))
        reads += 1
        time.sleep(0.02)
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 0, stderr
    with connect_reader(settings) as con:
        after = fetch_scalar(con, "SELECT count(*) FROM customers")
    assert after == before + 4_372
    assert reads > 10  # the loop really overlapped the run
    assert seen <= {before, after}


def test_a_second_writer_is_told_to_wait(settings, tmp_path):
    from studio.warehouse import WarehouseBusy, writer

    with writer(settings):
        with pytest.raises(WarehouseBusy, match="wait for it to finish"):
            with writer(settings):
                pass
