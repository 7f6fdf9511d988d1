import hashlib
import io
import os
import time

import pytest

from fablab.domain.filetypes import SNIFF_BYTES, FileContentError
from fablab.services.file_store import FileStore, UploadTooLarge


class BrokenStream:
    """A client that goes away mid-upload: some chunks arrive, then the connection fails."""

    def __init__(self, chunks: int, exc: BaseException) -> None:
        self.left, self.exc = chunks, exc

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            raise self.exc
        self.left -= 1
        return b"x" * 1000


def _all_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_save_streams_hashes_and_names_the_file(tmp_path):
    store = FileStore(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 17)
    stored = store.save(io.BytesIO(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.head == data[:SNIFF_BYTES]
    assert stored.path == tmp_path / stored.key[:2] / stored.key
    assert stored.path.read_bytes() == data
    with store.open(stored.key) as fh:
        assert fh.read(10) == data[:10]
    assert _all_files(tmp_path) == [stored.path]  # no temp files left over


def test_generated_keys_are_unique_and_never_the_upload_name(tmp_path):
    store = FileStore(tmp_path)
    keys = {store.save(io.BytesIO(b"same")).key for _ in range(5)}
    assert len(keys) == 5
    assert all(len(k) == 32 and all(c in "0123456789abcdef" for c in k) for k in keys)


def test_size_limit_is_enforced_while_streaming_and_leaves_nothing(tmp_path):
    store = FileStore(tmp_path, max_bytes=2 * 1024 * 1024)
    with pytest.raises(UploadTooLarge) as err:
        store.save(io.BytesIO(b"\0" * (2 * 1024 * 1024 + 1)))
    assert "larger than the upload limit of 2 MB" in str(err.value)
    assert isinstance(err.value, FileContentError)
    assert _all_files(tmp_path) == []
    exactly = store.save(io.BytesIO(b"\0" * (2 * 1024 * 1024)))  # the limit itself is allowed
    assert exactly.size == 2 * 1024 * 1024


def test_per_call_limit(tmp_path):
    with pytest.raises(UploadTooLarge):
        FileStore(tmp_path).save(io.BytesIO(b"12345"), max_bytes=4)


@pytest.mark.parametrize("exc", [ConnectionResetError("client went away"), KeyboardInterrupt()])
def test_interrupted_upload_leaves_no_file(tmp_path, exc):
    store = FileStore(tmp_path)
    with pytest.raises(type(exc)):
        store.save(BrokenStream(chunks=5, exc=exc))
    assert _all_files(tmp_path) == []


def test_path_refuses_anything_but_generated_keys(tmp_path):
    store = FileStore(tmp_path)
    for bad in ["../../etc/passwd", "ab/../../x", "", "A" * 32, "0" * 31]:
        with pytest.raises(ValueError):
            store.path(bad)


def test_delete(tmp_path):
    store = FileStore(tmp_path)
    stored = store.save(io.BytesIO(b"hello"))
    store.delete(stored.key)
    store.delete(stored.key)  # twice is fine
    assert not stored.path.exists()


def test_stale_partials_from_a_killed_process_are_swept(tmp_path):
    store = FileStore(tmp_path)
    kept = store.save(io.BytesIO(b"keep me"))
    stale = kept.path.parent / ".upload-dead.part"
    stale.write_bytes(b"half")
    fresh = kept.path.parent / ".upload-live.part"
    fresh.write_bytes(b"still uploading")
    now = time.time()  # both mtimes from the process clock, so a test clock (time-machine) cannot split them
    os.utime(fresh, (now, now))
    os.utime(stale, (now - 7200, now - 7200))
    assert store.remove_stale_partials(older_than_s=3600) == 1
    assert not stale.exists() and fresh.exists() and kept.path.exists()
