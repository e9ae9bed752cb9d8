"""Build a labelled text corpus from Debian bookworm package descriptions (developer tool).

Label = the package's Section (a `contrib/` or `non-free/` prefix stripped), restricted to
SECTIONS, sections about a topic. Document = the description's synopsis, followed by the long
description where the index holds one (paragraph dots dropped, whitespace collapsed).

Input: the APT indexes in a lists folder (--lists, default /var/lib/apt/lists):
`*bookworm*_Packages*` (main first, then bookworm-updates / bookworm-security, whose stanzas
replace main's for the same package), compressed as .lz4 (python `lz4` module if importable,
else the `lz4` command), .xz, .gz or plain. Long descriptions: the stock Debian APT setup
keeps them out of `Packages`, in `i18n/Translation-en`, matched by `Description-md5`; such
files are read when present in the same folder (`*bookworm*_i18n_Translation-en*`, APT's
file names). Without them documents are synopses only. Docker images set
`Acquire::Languages "none"`, so APT does not fetch them there: the shipped models were built
from a folder holding the three Translation-en.xz files downloaded from deb.debian.org (the
rebuild commands in models/README.md) next to links to the APT Packages indexes.

Cleaning: descriptions are deduplicated by normalised text (lower case, runs of non-word
characters to one space; the first package in sorted order is kept), and at most
PER_SOURCE documents are kept per source package (`Source`, else `Package`; first in sorted
package order), so that one source with a hundred near-identical binary packages
(tesseract-lang: 161) does not swamp a class. Train/test are split by *source package*
(seeded), so binary packages of one source never straddle the split.

Writes, under --out (default build/text_corpus): train.tsv and test.tsv (columns label,
package, source, text; header line; rows in a seeded shuffled order). With --samples DIR
(sample_texts/ for the shipped files) also writes DIR/<package>.txt for the first test
document of each class in that order, DIR/heldout/documents.txt (one document per line, a seeded sample
of HELDOUT test documents stratified by class) and DIR/heldout/labels.txt (their labels).

Provenance: each description is part of its package's debian/control and is covered by that
package's copyright file (/usr/share/doc/PKG/copyright when installed); the index is
published by the Debian project (see the Release/InRelease file next to it for its date).

Run: python scripts/text_corpus.py [--lists /tmp/debian-lists] [--out build/text_corpus]
         [--samples sample_texts]
"""

import argparse
import collections
import gzip
import lzma
import re
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LISTS = Path("/var/lib/apt/lists")
SECTIONS = ["games", "graphics", "mail", "math", "net", "science", "sound", "web"]
PER_SOURCE = 8
TEST_FRACTION = 0.2
HELDOUT = 400
SEED = 0


def read_compressed(path: Path) -> str:
    name = path.name
    if name.endswith(".lz4"):
        try:
            import lz4.frame
            data = lz4.frame.decompress(path.read_bytes())
        except ImportError:
            data = subprocess.run(["lz4", "-dc", str(path)], check=True,
                                  stdout=subprocess.PIPE).stdout
    elif name.endswith(".xz"):
        data = lzma.decompress(path.read_bytes())
    elif name.endswith(".gz"):
        data = gzip.decompress(path.read_bytes())
    else:
        data = path.read_bytes()
    return data.decode("utf-8", errors="replace")


def stanzas(text: str):
    """Debian control stanzas as dicts; continuation lines kept (joined with newlines)."""
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t" and key is not None:
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def index_files(lists: Path, pattern: str) -> list:
    """Main bookworm first, then the others (updates, security) in sorted order."""
    files = sorted(lists.glob(pattern))
    return sorted(files, key=lambda p: (not p.name.startswith(
        "deb.debian.org_debian_dists_bookworm_"), p.name))


def long_descriptions(lists: Path) -> dict:
    """Description-md5 -> full description text, from any Translation-en files present."""
    table = {}
    for path in index_files(lists, "*bookworm*_i18n_Translation-en*"):
        for stanza in stanzas(read_compressed(path)):
            if "Description-md5" in stanza and "Description-en" in stanza:
                table[stanza["Description-md5"]] = stanza["Description-en"]
    return table


def document(description: str) -> str:
    """Synopsis + long description as one line: paragraph dots dropped, spaces collapsed."""
    lines = description.split("\n")
    body = [line.strip() for line in lines[1:]]
    words = " ".join([lines[0].strip()] + [b for b in body if b != "."])
    return " ".join(words.split())


def normalised(text: str) -> str:
    return " ".join(re.sub(r"\W+", " ", text.lower()).split())


def collect(lists: Path):
    """{package: (label, source, text)} over the topical sections."""
    translations = long_descriptions(lists)
    packages = {}
    for path in index_files(lists, "*bookworm*_Packages*"):
        for stanza in stanzas(read_compressed(path)):
            label = stanza.get("Section", "").split("/")[-1]
            if label not in SECTIONS or "Description" not in stanza:
                continue
            description = stanza["Description"]
            if "\n" not in description:
                full = translations.get(stanza.get("Description-md5", ""))
                if full is not None and full.split("\n")[0].strip() == description:
                    description = full
            source = stanza.get("Source", stanza["Package"]).split()[0]
            packages[stanza["Package"]] = (label, source, document(description))
    return packages, bool(translations)


def clean(packages: dict) -> list:
    """[(label, package, source, text)]: deduplicated, at most PER_SOURCE per source."""
    seen, per_source, rows = set(), collections.Counter(), []
    for package in sorted(packages):
        label, source, text = packages[package]
        key = normalised(text)
        if not key or key in seen or per_source[source] >= PER_SOURCE:
            continue
        seen.add(key)
        per_source[source] += 1
        rows.append((label, package, source, text))
    return rows


def split(rows: list):
    """(train, test), split by source package, each in a seeded shuffled order."""
    rng = np.random.default_rng(SEED)
    sources = sorted({r[2] for r in rows})
    test_sources = set(rng.permutation(sources)[:round(TEST_FRACTION * len(sources))])
    train = [r for r in rows if r[2] not in test_sources]
    test = [r for r in rows if r[2] in test_sources]
    return ([train[i] for i in rng.permutation(len(train))],
            [test[i] for i in rng.permutation(len(test))])


def write_tsv(path: Path, rows: list):
    with path.open("w", encoding="utf-8") as f:
        f.write("label\tpackage\tsource\ttext\n")
        for row in rows:
            f.write("\t".join(row) + "\n")


def write_samples(directory: Path, test: list):
    directory.mkdir(parents=True, exist_ok=True)
    for label in SECTIONS:
        first = next(r for r in test if r[0] == label)
        (directory / f"{first[1]}.txt").write_text(first[3] + "\n", encoding="utf-8")
        print(f"sample {label:9s} {first[1]}: {first[3]}")
    # stratified: each class in proportion to its share of the test split, seeded
    rng = np.random.default_rng(SEED + 1)
    counts = collections.Counter(r[0] for r in test)
    chosen = []
    for label in SECTIONS:
        members = [i for i, r in enumerate(test) if r[0] == label]
        take = round(HELDOUT * counts[label] / len(test))
        chosen += list(rng.choice(members, size=take, replace=False))
    chosen = sorted(chosen)  # keep the seeded test order
    (directory / "heldout").mkdir(exist_ok=True)
    (directory / "heldout" / "documents.txt").write_text(
        "".join(test[i][3] + "\n" for i in chosen), encoding="utf-8")
    (directory / "heldout" / "labels.txt").write_text(
        "".join(test[i][0] + "\n" for i in chosen), encoding="utf-8")
    print(f"held-out sample: {len(chosen)} documents")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "text_corpus")
    parser.add_argument("--samples", type=Path, default=None)
    parser.add_argument("--lists", type=Path, default=LISTS, help="APT lists folder")
    args = parser.parse_args()
    packages, with_long = collect(args.lists)
    rows = clean(packages)
    train, test = split(rows)
    print(f"{len(packages)} packages in {len(SECTIONS)} sections, {len(rows)} documents after "
          f"deduplication; long descriptions: {'yes' if with_long else 'no (synopses only)'}")
    train_counts = collections.Counter(r[0] for r in train)
    test_counts = collections.Counter(r[0] for r in test)
    print(f"{'section':10s} {'packages':>8s} {'train':>6s} {'test':>5s}")
    raw = collections.Counter(v[0] for v in packages.values())
    for label in SECTIONS:
        print(f"{label:10s} {raw[label]:8d} {train_counts[label]:6d} {test_counts[label]:5d}")
    print(f"{'total':10s} {len(packages):8d} {len(train):6d} {len(test):5d}")
    args.out.mkdir(parents=True, exist_ok=True)
    write_tsv(args.out / "train.tsv", train)
    write_tsv(args.out / "test.tsv", test)
    print(f"wrote {args.out / 'train.tsv'} and {args.out / 'test.tsv'}")
    if args.samples is not None:
        write_samples(args.samples, test)


if __name__ == "__main__":
    main()
