"""Corpus registry: mirror and download checks, TSV splits, corpus errors (mt/corpora.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mt import config, corpora, data
from mt.cli import main
from mt.errors import MTError
from tests.helpers import MIRROR, needs_mirror

# -- corpora -------------------------------------------------------------------------------

@needs_mirror
def test_fetch_with_mirror_and_corrupted_copy(tmp_path, capsys):
    assert main(["corpus", "fetch", "small_parallel_enja", "--mirror", str(MIRROR), "--force"]) == 0
    bad = tmp_path / "mirror" / "small_parallel_enja"
    shutil.copytree(MIRROR / "small_parallel_enja", bad)
    os.chmod(bad / "dev.ja", 0o644)
    with open(bad / "dev.ja", "a") as f:
        f.write("改ざん\n")
    os.environ["MT_CACHE"], old = str(tmp_path / "cache"), os.environ["MT_CACHE"]
    try:
        assert main(["corpus", "fetch", "small_parallel_enja", "--mirror", str(tmp_path / "mirror")]) == 2
        err = capsys.readouterr().err
        assert "checksum mismatch" in err and "dev.ja" in err
        cached = tmp_path / "cache" / "corpora" / "small_parallel_enja"
        assert not (cached / "dev.ja").exists() and not list(cached.glob("*.tmp"))
    finally:
        os.environ["MT_CACHE"] = old


def test_corpus_list(capsys):
    assert main(["corpus", "list"]) == 0
    out = capsys.readouterr().out
    assert "small_parallel_enja" in out and "tatoeba_jpn_eng" in out and "sample" in out


def test_tsv_split_is_deterministic_and_keeps_identical_english_together(tmp_path):
    tsv = tmp_path / "c.tsv"
    rows = [f"Sentence number {i % 120}.\t文{i}。" for i in range(600)]
    tsv.write_text("\n".join(rows) + "\n")
    a, b = tmp_path / "a", tmp_path / "b"
    corpora.split_tsv(tsv, a, held_out=10)
    corpora.split_tsv(tsv, b, held_out=10)
    seen = {}
    for split in corpora.SPLITS:
        assert (a / f"{split}.en").read_text() == (b / f"{split}.en").read_text()
        for en in (a / f"{split}.en").read_text().splitlines():
            assert seen.setdefault(en, split) == split
    assert len(set(seen.values())) == 3


def _write_corpus(folder: Path, en: str, ja: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split in corpora.SPLITS:
        (folder / f"{split}.en").write_bytes(en.encode() if isinstance(en, str) else en)
        (folder / f"{split}.ja").write_bytes(ja.encode() if isinstance(ja, str) else ja)


def test_bad_corpus_errors(tmp_path, capsys):
    with pytest.raises(MTError, match="neither a known name"):
        corpora.resolve(str(tmp_path / "nothing"))
    uneven = tmp_path / "uneven"
    _write_corpus(uneven, "a\nb\n", "あ\n")
    with pytest.raises(MTError, match=r"line counts differ: .*train.en has 2, .*train.ja has 1"):
        corpora.resolve(str(uneven))
    empty = tmp_path / "empty"
    _write_corpus(empty, "", "")
    with pytest.raises(MTError, match="empty corpus"):
        corpora.resolve(str(empty))
    missing = tmp_path / "missing"
    _write_corpus(missing, "a\n", "あ\n")
    (missing / "dev.ja").unlink()
    with pytest.raises(MTError, match="corpus file missing: .*dev.ja"):
        corpora.resolve(str(missing))
    broken = tmp_path / "broken"
    _write_corpus(broken, b"fine\n\xff\xfe bad\n", "あ\nい\n".encode())
    cfg = config.build({"data": {"corpus": str(broken), "tgt_tokenizer": "janome", "min_count": 1}})
    with pytest.raises(MTError, match=r"train.en:2: invalid UTF-8"):
        data.prepare(cfg.data, corpora.resolve(str(broken))[0])
    assert main(["train", "--corpus", str(uneven), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mt: error: line counts differ") and "Traceback" not in err


def test_unknown_corpus_name(capsys):
    assert main(["corpus", "fetch", "nope"]) == 2
    assert "unknown corpus 'nope'" in capsys.readouterr().err
