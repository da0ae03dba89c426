"""write_atomic: the old content or the new one, never half a file, and shareable permissions."""

import os

import pytest

from zdevents.files import write_atomic


def test_writes_bytes_or_through_a_callable_with_shareable_permissions(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    assert write_atomic(target, b"one") == target
    assert target.read_bytes() == b"one"
    write_atomic(target, lambda fh: fh.write(b"two"))
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o644
    assert os.listdir(target.parent) == ["a.txt"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a.txt"
    write_atomic(target, b"old")

    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        write_atomic(target, broken)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.txt"]
