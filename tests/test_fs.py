"""`ocr_core.fs`: the same file operations on a local path and, through Beam's FileSystems, on a path with a
scheme (tests/memfs.py's in-memory `mem://` stands in for gs://)."""
import pytest

from ocr_core import fs
from tests import memfs  # noqa: F401  (registers mem://)


@pytest.fixture(params=["local", "mem"])
def root(request, tmp_path) -> str:
    return str(tmp_path) if request.param == "local" else f"mem://bucket/{tmp_path.name}"


def test_join_and_basename(root):
    assert fs.is_remote(root) == root.startswith("mem://")
    assert fs.join(root, "a", "b.txt") == root + "/a/b.txt"
    assert fs.basename(fs.join(root, "sub")) == fs.basename(fs.join(root, "sub") + "/") == "sub"


def test_write_read_exists_isdir_and_glob(root):
    a = fs.join(root, "a.txt")
    assert not fs.exists(a)
    fs.write_text(a, "héllo")
    assert fs.exists(a) and fs.read_text(a) == "héllo"
    with fs.create_binary(fs.join(root, "sub", "b.txt")) as fh:  # local parents are made
        fh.write(b"b")
    fs.write_text(fs.join(root, "sub", "deeper", "c.txt"), "c")
    with fs.open_binary(fs.join(root, "sub", "b.txt")) as fh:
        assert fh.read() == b"b"
    assert fs.isdir(fs.join(root, "sub")) and not fs.isdir(a) and not fs.isdir(fs.join(root, "nothing"))
    assert fs.glob(fs.join(root, "*.txt")) == [a]  # `*` stays within a folder
    assert fs.glob(fs.join(root, "sub", "*.txt")) == [fs.join(root, "sub", "b.txt")]
    assert fs.glob(fs.join(root, "*", "*", "*.txt")) == [fs.join(root, "sub", "deeper", "c.txt")]
    assert fs.glob(fs.join(root, "nothing", "*")) == []


def test_rename_replaces_the_destination(root):
    src, dest = fs.join(root, "src.txt"), fs.join(root, "dest.txt")
    fs.write_text(src, "new")
    fs.write_text(dest, "old")
    fs.rename(src, dest)
    assert not fs.exists(src) and fs.read_text(dest) == "new"


def test_create_exclusive_creates_only_once(root):
    lock = fs.join(root, "LOCK")
    assert fs.create_exclusive(lock, "first") is True
    assert fs.create_exclusive(lock, "second") is False
    assert fs.read_text(lock) == "first"


def test_remove_a_file_a_tree_and_nothing(root):
    fs.write_text(fs.join(root, "keep.txt"), "k")
    fs.write_text(fs.join(root, "f.txt"), "f")
    fs.write_text(fs.join(root, "tree", "x.txt"), "x")
    fs.write_text(fs.join(root, "tree", "deep", "y.txt"), "y")
    fs.remove(fs.join(root, "f.txt"))
    fs.remove(fs.join(root, "tree"))
    fs.remove(fs.join(root, "never-there"))
    assert not fs.exists(fs.join(root, "f.txt")) and not fs.exists(fs.join(root, "tree", "deep", "y.txt"))
    assert not fs.exists(fs.join(root, "tree")) and fs.glob(fs.join(root, "tree", "*")) == []
    assert fs.read_text(fs.join(root, "keep.txt")) == "k"
