"""Checks shared by the AppTest suites: a clean run, and what download buttons offer."""

from __future__ import annotations

from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

Recorded = tuple[MediaFileManager, MemoryMediaFileStorage]


def assert_clean(app: AppTest) -> None:
    """No exception and no error message on the page."""
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def record_downloads(monkeypatch) -> list[Recorded]:
    """The media file managers of the next AppTest runs and their stores, where download
    buttons keep their data."""
    recorded = []

    class RecordingManager(MediaFileManager):
        def __init__(self, storage: MemoryMediaFileStorage) -> None:
            super().__init__(storage)
            recorded.append((self, storage))

    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", RecordingManager)
    return recorded


def stored_file(recorded: list[Recorded], button):
    """The file a download button element offers (``.content``, ``.mimetype``, ``.filename``).

    A button whose data is a callable (read on the click) has no file until clicked: the
    callable is run here as Streamlit runs it when a browser asks.
    """
    manager, storage = recorded[-1]
    url = button.proto.url or manager.execute_deferred(button.proto.deferred_file_id)
    return storage.get_file(url.rsplit("/", 1)[1])
