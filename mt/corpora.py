"""Corpus registry: names → files, download or mirror copy with SHA256 checks, splits, mixes.

Every corpus ends up as a folder holding {train,dev,test}.{en,ja}, one sentence per line (an
evaluation-only corpus, such as the shipped `everyday` set, holds dev and test only).
A TSV (`English<TAB>Japanese`) is split deterministically so that identical English
sentences never straddle two splits. A mix `a+b` becomes one folder (mt/mixing.py).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from mt import files, mixing
from mt.errors import MTError
from mt.files import atomic_folder, count_lines, decode_line, read_lines  # here since ever: corpora.read_lines
from mt.text import detokenize_ja

SPLITS = ("train", "dev", "test")
SIDES = ("en", "ja")
SHIPPED = Path(__file__).resolve().parent.parent / "corpora"
SAMPLE_TSV = SHIPPED / "sample.tsv"


@dataclass(frozen=True)
class CorpusSpec:
    """A named corpus: where it comes from and what its files must hash to."""

    name: str
    description: str
    url: str  # '{file}' is replaced by each file name
    sha256: dict[str, str]
    tokenized: bool  # True: both sides pre-tokenized with single spaces
    tsv: str = ""  # for TSV corpora: the one file that holds English<TAB>Japanese
    shipped: Path | None = None  # a folder shipped with mt (nothing to fetch, no checksum)


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
    "everyday": CorpusSpec(
        name="everyday",
        description="everyday English written for mt (names, numbers, times, two clauses, …): dev/test only",
        url="", sha256={}, tokenized=False, shipped=SHIPPED / "everyday",
    ),
}


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
    if spec.shipped:
        return spec.shipped
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
    if CORPORA[name].shipped:
        return f"shipped with mt in {CORPORA[name].shipped} (no checksum)"
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


def resolve(corpus: str, mirror: str | None = None, exclude: Sequence[str] = (),
            training: bool = True) -> tuple[Path, bool]:
    """A corpus name, a folder of {train,dev,test}.{en,ja}, a TSV file, or a mix `a+b` → (folder, tokenized).

    With `exclude` (or a mix), training pairs whose English is in a dev or test split of a member or of an
    excluded corpus are removed (mt/mixing.py). `training`: the folder must hold a train split."""
    names = mixing.parts(corpus)
    if len(names) == 1 and not exclude:
        source = _source(corpus, mirror)
        if training and not source.trains:
            raise MTError(f"corpus {corpus!r} has dev and test only (an evaluation set): train on another corpus, "
                          f"and name it in data.exclude to keep its lines out of training")
        validate(source.folder, training)
        return source.folder, source.tokenized
    members = [_source(n, mirror) for n in names]
    held = [_source(n, mirror) for n in dict.fromkeys(exclude) if n not in names]
    for s in members + held:
        validate(s.folder)
    if training and not any(m.trains for m in members):
        raise MTError(f"corpus {corpus!r}: no member has a train split")
    folder = cache_root() / "corpora" / "mix" / mixing.cache_name(members, held)
    if not (folder / "DONE").exists():
        mixing.build(folder, members, held)
    validate(folder, training)
    return folder, (folder / "TOKENIZED").exists()


def _source(corpus: str, mirror: str | None) -> mixing.Source:
    """One corpus name, folder or TSV file → its split folder, fetched or split as needed."""
    if corpus in CORPORA or corpus == "sample":
        tokenized = CORPORA[corpus].tokenized if corpus in CORPORA else False
        return mixing.Source(corpus, fetch(corpus, mirror), tokenized)
    path = Path(corpus)
    if path.is_file():
        return mixing.Source(corpus, _split_cached(path), False)
    if path.is_dir():
        return mixing.Source(corpus, path, (path / "TOKENIZED").exists())
    raise MTError(f"corpus {corpus!r} is neither a known name ({', '.join(list_names())}) "
                  f"nor an existing folder or TSV file")


def check_names(corpus: str, exclude: Sequence[str], where: str = "config data") -> None:
    """A mix's members and the excluded corpora are known names or paths (checked when a config is read;
    a single corpus is checked when it is resolved, as before)."""
    names = mixing.parts(corpus)
    if len(names) == 1 and not exclude:
        return
    for key, values in (("corpus", names), ("exclude", list(exclude))):
        for name in values:
            if name not in list_names() and os.sep not in name and "/" not in name and not Path(name).exists():
                raise MTError(f"{where}.{key}: unknown corpus {name!r} in {corpus if key == 'corpus' else values!r}; known: "
                              f"{', '.join(list_names())} (or a folder or TSV file)")


def raw_reference(folder: Path, split: str) -> Path:
    """A pre-tokenized corpus's `split`.ja as plain text (cached): the reference of a model trained on raw text."""
    src = folder / f"{split}.ja"
    st = src.stat()
    key = hashlib.sha256(f"{src.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    out = cache_root() / "corpora" / "detok" / key / f"{split}.ja"
    if not out.exists():
        files.write_text(out, "".join(detokenize_ja(line.split()) + "\n" for line in read_lines(src)))
    return out


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


def validate(folder: Path, training: bool = False) -> None:
    """Every split exists (train may be absent unless `training`), both sides have the same line count, and a
    train split is not empty."""
    for split in SPLITS:
        paths = [folder / f"{split}.{side}" for side in SIDES]
        if split == "train" and not training and not any(p.exists() for p in paths):
            continue
        for p in paths:
            if not p.exists():
                raise MTError(f"corpus file missing: {p}")
        counts = [count_lines(p) for p in paths]
        if counts[0] != counts[1]:
            raise MTError(f"line counts differ: {paths[0]} has {counts[0]}, "
                          f"{paths[1]} has {counts[1]}")
        if split == "train" and training and counts[0] == 0:
            raise MTError(f"empty corpus: {paths[0]} has no lines")
