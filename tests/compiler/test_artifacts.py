import pytest

from compiler.artifacts import AtomicDir, file_table, sha256_file


def test_exception_leaves_nothing_and_keeps_previous(tmp_path):
    final = tmp_path / "out"
    with (w := AtomicDir(final)) as d:
        (d / "a.txt").write_text("first")
        w.commit()
    with pytest.raises(RuntimeError):
        with AtomicDir(final) as d:
            (d / "a.txt").write_text("half-written")
            raise RuntimeError("boom")
    assert (final / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp dirs left


def test_commit_replaces_whole_directory(tmp_path):
    final = tmp_path / "out"
    for files in (["a", "b"], ["c"]):
        with (w := AtomicDir(final)) as d:
            for f in files:
                (d / f).write_text(f)
            w.commit()
    assert sorted(p.name for p in final.iterdir()) == ["c"]
    rows = file_table(final)
    assert rows == [{"path": "c", "bytes": 1, "sha256": sha256_file(final / "c")}]
