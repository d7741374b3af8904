"""Checks shared by the AppTest suites: a clean run, and what download buttons offer."""

from __future__ import annotations

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest


def assert_clean(app: AppTest) -> None:
    """No exception and no error message on the page."""
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def record_downloads(monkeypatch) -> list[MemoryMediaFileStorage]:
    """The media stores of the next AppTest runs, where download buttons keep their data."""
    stores = []

    class RecordingStorage(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage",
                        RecordingStorage)
    return stores


def stored_file(stores: list[MemoryMediaFileStorage], button):
    """The file a download button element offers (``.content``, ``.mimetype``)."""
    return stores[-1].get_file(button.proto.url.rsplit("/", 1)[1])
