"""Corpus registry: names → files, download or mirror copy with SHA256 checks, splits.

Every corpus ends up as a folder holding {train,dev,test}.{en,ja}, one sentence per line.
A TSV (`English<TAB>Japanese`) is split deterministically so that identical English
sentences never straddle two splits.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from mt import files
from mt.errors import MTError

SPLITS = ("train", "dev", "test")
SIDES = ("en", "ja")
SAMPLE_TSV = Path(__file__).resolve().parent.parent / "corpora" / "sample.tsv"


@dataclass(frozen=True)
class CorpusSpec:
    """A named corpus: where it comes from and what its files must hash to."""

    name: str
    description: str
    url: str  # '{file}' is replaced by each file name
    sha256: dict[str, str]
    tokenized: bool  # True: both sides pre-tokenized with single spaces
    tsv: str = ""  # for TSV corpora: the one file that holds English<TAB>Japanese


CORPORA: dict[str, CorpusSpec] = {
    "small_parallel_enja": CorpusSpec(
        name="small_parallel_enja",
        description="50k/500/500 pre-tokenized en-ja pairs (Tanaka corpus subset, odashi)",
        url="https://raw.githubusercontent.com/odashi/small_parallel_enja/master/{file}",
        sha256={
            "dev.en": "04a2673449770657fd5e3b963cb856be3130923212b6db8ac7eaeef18f06c041",
            "dev.ja": "cd534f56b8639dc130f86a365e5ec0aa70042000bdd740a622fbbf8b6be4acca",
            "test.en": "45edb380749ec2b49cca7618fc5a7595fc9f791180672ba466b90c873a4aa8bf",
            "test.ja": "d37dc460a81b064e4106c8913eb11fa300da05cf3f58a7a5bbfec7e20947ddef",
            "train.en": "148b05dcd28638fe20ee84f2b1127001c80982be352007dda241fb759adadc76",
            "train.ja": "fc81a1434349ec98a449d7ae9cd2530057f689637684ecfed3501ea6a8a07ecc",
        },
        tokenized=True,
    ),
    "tatoeba_jpn_eng": CorpusSpec(
        name="tatoeba_jpn_eng",
        description="44,917 raw en-ja pairs (Tatoeba, manythings.org two-column export)",
        # The current manythings.org export has a third (attribution) column and other
        # contents, so only a mirror of the two-column export passes the checksum.
        url="https://www.manythings.org/anki/{file}",
        sha256={"jpn.txt": "9d4b9abc4b5b33583f770a92210d80cb548666a6305c2cba54f3d7062f8d82fc"},
        tokenized=False,
        tsv="jpn.txt",
    ),
}


@contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """Build a folder in a temp sibling; it replaces `folder` only if the block succeeds."""
    with files.writing(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    try:
        with files.writing(folder):
            yield tmp
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def cache_root() -> Path:
    """Where fetched corpora and encoded caches live (MT_CACHE, else ~/.cache/mt)."""
    return Path(os.environ.get("MT_CACHE", Path.home() / ".cache" / "mt"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_copy(read, dest: Path, expected: str, source: str) -> None:
    """Stream `read` into dest via a temp file; keep it only if the SHA256 matches."""
    tmp = None
    h = hashlib.sha256()
    try:
        with files.writing(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = files.temp_beside(dest)
            with os.fdopen(fd, "wb") as out:
                for block in iter(lambda: read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
        if h.hexdigest() != expected:
            raise MTError(f"checksum mismatch for {source}: got {h.hexdigest()[:16]}…, "
                          f"expected {expected[:16]}…")
        with files.writing(dest):
            os.replace(tmp, dest)
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def fetch(name: str, mirror: str | None = None, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Make a registered corpus available in the cache and return its split folder.

    Every cached file is checked against its SHA256 each time (a few MB: well under a second); a file that
    does not match (edited, truncated) is said so through `log` and fetched again."""
    if name == "sample":
        return _split_cached(SAMPLE_TSV, held_out=10)
    if name not in CORPORA:
        raise MTError(f"unknown corpus {name!r}; known: {', '.join(list_names())}")
    spec = CORPORA[name]
    raw_dir = cache_root() / "corpora" / name
    mirror = mirror or os.environ.get("MT_CORPUS_MIRROR")
    refetched = False
    for file, digest in spec.sha256.items():
        dest = raw_dir / file
        if dest.exists() and not force:
            if sha256_file(dest) == digest:
                continue
            if log:
                log(f"{dest}: SHA256 mismatch in the cache (changed since it was fetched): fetching it again")
        _fetch_file(spec, file, digest, dest, mirror)
        refetched = True
    if spec.tsv:
        split_dir = raw_dir / "split"
        if force or refetched or not _split_intact(split_dir):
            if log and (split_dir / SUMS).exists() and not refetched:
                log(f"{split_dir}: split files changed since they were written: splitting {spec.tsv} again")
            split_tsv(raw_dir / spec.tsv, split_dir)
            _write_split_sums(split_dir)
        return split_dir
    return raw_dir


def verification_note(name: str) -> str:
    """What `fetch` checked for corpus `name`, in words for the user."""
    if name == "sample":
        return f"split from {SAMPLE_TSV.name}, shipped with mt (no checksum)"
    files = ", ".join(CORPORA[name].sha256)
    return f"SHA256 of {files} verified" + (", splits checked" if CORPORA[name].tsv else "")


def _fetch_file(spec: CorpusSpec, file: str, digest: str, dest: Path, mirror: str | None) -> None:
    """One corpus file from the mirror folder, else from its URL, into the cache (checked, atomic)."""
    if mirror:
        src = Path(mirror) / spec.name / file
        if not src.exists():
            raise MTError(f"mirror file not found: {src}")
        with open(src, "rb") as f:
            _atomic_copy(f.read, dest, digest, str(src))
        return
    url = spec.url.format(file=file)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            _atomic_copy(resp.read, dest, digest, url)
    except OSError as e:
        raise MTError(f"download failed for {url}: {e} "
                      f"(set MT_CORPUS_MIRROR=DIR or --mirror DIR to copy from a mirror)") from None


SUMS = "SHA256SUMS"  # a split folder's own checksums, written when it is made


def _write_split_sums(folder: Path) -> None:
    sums = "".join(f"{sha256_file(folder / f'{s}.{side}')}  {s}.{side}\n" for s in SPLITS for side in SIDES)
    files.write_text(folder / SUMS, sums)


def _split_intact(folder: Path) -> bool:
    """Does the split folder hold every file, each as it was written?"""
    if not (folder / SUMS).exists():
        return False
    for line in (folder / SUMS).read_text().splitlines():
        digest, name = line.split()
        if not (folder / name).exists() or sha256_file(folder / name) != digest:
            return False
    return True


def list_names() -> list[str]:
    return ["sample", *CORPORA]


def split_of(english: str, held_out: int = 2) -> str:
    """Deterministic split by a hash of the normalised English side: held_out % each to dev, test."""
    key = " ".join(english.lower().split()).encode()
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % 100
    return "dev" if bucket < held_out else "test" if bucket < 2 * held_out else "train"


def split_tsv(tsv: Path, out_dir: Path, held_out: int = 2) -> None:
    """Write {train,dev,test}.{en,ja} from an English<TAB>Japanese file (atomic per folder)."""
    with atomic_folder(out_dir) as tmp_dir, ExitStack() as stack:
        outs = {(s, side): stack.enter_context(open(tmp_dir / f"{s}.{side}", "w", encoding="utf-8"))
                 for s in SPLITS for side in SIDES}
        with open(tsv, "rb") as f:
            for n, raw in enumerate(f, 1):
                line = decode_line(raw, tsv, n).rstrip("\r\n")
                if not line.strip():
                    continue
                cols = line.split("\t")
                if len(cols) < 2:
                    raise MTError(f"{tsv}:{n}: expected English<TAB>Japanese, found no tab")
                en, ja = cols[0].strip(), cols[1].strip()
                s = split_of(en, held_out)
                outs[(s, "en")].write(en + "\n")
                outs[(s, "ja")].write(ja + "\n")


def decode_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MTError(f"{path}:{lineno}: invalid UTF-8 (byte {e.start})") from None


def resolve(corpus: str, mirror: str | None = None) -> tuple[Path, bool]:
    """A corpus name, a folder of {train,dev,test}.{en,ja}, or a TSV file → (folder, tokenized)."""
    if corpus in CORPORA or corpus == "sample":
        folder = fetch(corpus, mirror)
        tokenized = CORPORA[corpus].tokenized if corpus in CORPORA else False
    else:
        path = Path(corpus)
        if path.is_file():
            folder, tokenized = _split_cached(path), False
        elif path.is_dir():
            folder = path
            tokenized = (path / "TOKENIZED").exists()
        else:
            raise MTError(f"corpus {corpus!r} is neither a known name ({', '.join(list_names())}) "
                          f"nor an existing folder or TSV file")
    validate(folder)
    return folder, tokenized


def _split_cached(tsv: Path, held_out: int = 2) -> Path:
    """Split a TSV once into the cache (redone when the file changes)."""
    if not tsv.is_file():
        raise MTError(f"corpus file missing: {tsv}")
    folder = cache_root() / "corpora" / "tsv" / hashlib.sha256(str(tsv.resolve()).encode()).hexdigest()[:16]
    stamp = f"{tsv.stat().st_size}-{tsv.stat().st_mtime_ns}-{held_out}"
    if not (folder / "STAMP").exists() or (folder / "STAMP").read_text() != stamp:
        folder.parent.mkdir(parents=True, exist_ok=True)
        split_tsv(tsv, folder, held_out)
        files.write_text(folder / "STAMP", stamp)
    return folder


def validate(folder: Path) -> None:
    """Every split exists, both sides have the same line count, train is not empty."""
    for split in SPLITS:
        paths = [folder / f"{split}.{side}" for side in SIDES]
        for p in paths:
            if not p.exists():
                raise MTError(f"corpus file missing: {p}")
        counts = [_count_lines(p) for p in paths]
        if counts[0] != counts[1]:
            raise MTError(f"line counts differ: {paths[0]} has {counts[0]}, "
                          f"{paths[1]} has {counts[1]}")
        if split == "train" and counts[0] == 0:
            raise MTError(f"empty corpus: {paths[0]} has no lines")


def _count_lines(path: Path) -> int:
    """Lines in a file, counting a last line without a newline."""
    with open(path, "rb") as f:
        n = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            n += f.read(1) != b"\n"
    return n


def read_lines(path: Path):
    """Yield decoded lines (without newline) with file:line errors on invalid UTF-8."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            yield decode_line(raw, path, n).rstrip("\r\n")
