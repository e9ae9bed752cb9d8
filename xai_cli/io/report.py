"""The job's page: ``OUT/index.html``, from what explain, evaluate and spray left in OUT.

Every run keeps its per-input records in ``OUT/records/<job>.jsonl`` (:func:`records_path`).
The page merges all of them, across commands and shards (the last record per input wins;
a partial last line, cut by a kill, is left out), with the thumbnails and heatmaps the
records name, and with evaluate's and spray's tables and figures. It is one static file
that needs no server and no network: the records sit in it as JSON and the script of
``report_page.html`` shows a page of cards at a time, so that 10,000 inputs stay quick.
Text from file names, labels and CSVs is escaped here, or set as text by the script.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from collections import Counter
from importlib import resources
from pathlib import Path, PurePath
from urllib.parse import quote

from ..errors import XaiError
from .outputs import atomic_write

RECORDS = "records"
CARD_FIGURES = ((".time.png", "relevance over time"),)   # an input's pictures besides its maps
EVALUATE_FIGURES = (("curves.png", "perturbation curves"),
                    ("sanity.png", "sanity check: cascading randomisation"))
EVALUATE_TABLES = ("summary.csv", "comparisons.csv", "curves.csv", "decisions.csv",
                   "localisation.csv", "sanity.csv")
SPRAY_FIGURES = (("eigengap.png", "eigenvalues"), ("embedding.png", "spectral embedding"))
SPRAY_TABLES = ("clusters.csv", "eigenvalues.csv")


def records_path(out_dir: Path, job: str) -> Path:
    """Where a run keeps its records; ``job`` is the command, or ``<command>-shard-K-of-N``."""
    return Path(out_dir) / RECORDS / f"{job}.jsonl"


def read_records(out_dir: Path) -> list[dict]:
    """The last record of each input (by ``input`` and ``index``) of each command, with its
    ``command``, from every record file in ``out_dir``, in the order inputs first appear."""
    latest: dict = {}
    for path in sorted((Path(out_dir) / RECORDS).glob("*.jsonl")):
        command = path.stem.split("-shard-")[0]
        with open(path, encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.endswith("\n"):
                    break   # the last line of a killed run
                try:
                    record = json.loads(line)
                except ValueError:
                    raise XaiError(f"{path}:{number}: not a JSON record") from None
                key = command, record.get("input"), record.get("index")
                latest[key] = {"command": command, **record}
    return list(latest.values())


def write(out_dir: Path) -> Path:
    """Build ``out_dir/index.html`` from the folder's records, pictures and tables.

    Raises
    ------
    XaiError
        If the folder holds no records.
    """
    out = Path(out_dir)
    records = read_records(out)
    if not records:
        raise XaiError(f"{out} holds no records ({RECORDS}/*.jsonl): give the --out folder of "
                       "an xai explain, evaluate or spray run")
    present = _present(out)
    fields = {"title": html.escape(Path(os.path.abspath(out)).name),
              "sections": _evaluate(out, present) + _clusters(out, present),
              "records": _script_json([_card(r, present) for r in records])}
    template = resources.files(__package__).joinpath("report_page.html").read_text("utf-8")
    page = re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m[1]], template)   # one pass
    path = out / "index.html"
    atomic_write(path, lambda f: f.write(page.encode("utf-8")))
    return path


def _present(out: Path) -> set[str]:
    """The files in OUT and OUT/thumbs, as paths relative to the page."""
    found = set()
    for folder in ("", "thumbs"):
        if (out / folder).is_dir():
            found.update(PurePath(folder, e.name).as_posix()
                         for e in os.scandir(out / folder) if e.is_file())
    return found


def _relative(path: str, present: set[str]) -> str | None:
    """A path from a record, relative to the page; None if the file is not there. Runs write
    only into OUT and OUT/thumbs, but may have named OUT relative to another folder."""
    parts = PurePath(path).parts
    return next((p for p in ("/".join(parts[-2:]), parts[-1]) if p in present), None)


def _card(record: dict, present: set[str]) -> dict:
    """The record as the page shows it: ``outputs`` replaced by its thumbnail and a heatmap
    per method, as URLs relative to the page (a document's word heatmaps also by the HTML
    page each links to; a clip's animated heatmaps, and its relevance over time among
    ``figures``; a signal's plots, and an audio signal's spectrograms among ``figures``)."""
    card = dict(record)
    files = [f for f in (_relative(p, present) for p in card.pop("outputs", ())) if f]
    thumb = next((f for f in files if f.startswith("thumbs/")), None)
    card["thumb"] = thumb and quote(thumb)
    methods = card.get("relevance_sum") or card.get("aopc") or {}   # explain or evaluate
    card["maps"] = [[method, quote(f)] for method in methods
                    for f in files if f.endswith((f".{method}.png", f".{method}.gif"))]
    figures = [*CARD_FIGURES, *((f".{method}.spectrogram.png", f"{method} over the spectrogram")
                                for method in methods)]
    card["figures"] = [[caption, quote(f)] for suffix, caption in figures
                       for f in files if f.endswith(suffix)]
    card["pages"] = {method: quote(f) for method in methods
                     for f in files if f.endswith(f".{method}.html")}
    return card


def _script_json(value) -> str:
    """JSON that cannot end or comment out the <script> element it sits in."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _evaluate(out: Path, present: set[str]) -> str:
    if "summary.csv" not in present:
        return ""
    paired = "" if "comparisons.csv" not in present else \
        "<h3>Paired comparisons (AOPC difference on the same inputs, 95% bootstrap CI)</h3>" \
        + _table(out / "comparisons.csv")
    return _section("Evaluation", _table(out / "summary.csv") + paired
                    + _figures((f, c) for f, c in EVALUATE_FIGURES if f in present)
                    + _links(present, EVALUATE_TABLES))


def _clusters(out: Path, present: set[str]) -> str:
    """The clusters of xai spray (members) or xai cluster (prototypes): each one's mean
    heatmap and its pictures."""
    if "clusters.csv" not in present:
        return ""
    header, *rows = _rows(out / "clusters.csv")
    members = Counter(row[header.index("cluster")] for row in rows)
    pictures = {"members": "members", "prototypes": "prototypes (nearest its centroid)"}
    clusters = "".join(
        '<div class="cluster">' + _figures(
            [(f"cluster_{k}_mean.png", f"cluster {k}: mean heatmap ({n} inputs)"),
             *((f"cluster_{k}_{name}.png", f"cluster {k}: {caption}")
               for name, caption in pictures.items() if f"cluster_{k}_{name}.png" in present)])
        + "</div>" for k, n in sorted(members.items(), key=lambda kn: int(kn[0])))
    title = "Clusters (SpRAy)" if "eigengap.png" in present else "Clusters (k-means, NEON)"
    return _section(title, clusters
                    + _figures((f, c) for f, c in SPRAY_FIGURES if f in present)
                    + _links(present, SPRAY_TABLES))


def _section(title: str, body: str) -> str:
    return f'<section class="panel"><h2>{html.escape(title)}</h2>{body}</section>\n'


def _figures(figures) -> str:
    """Figures ``(file, caption)``, each a link to the full-size file."""
    items = []
    for name, caption in figures:
        src, text = html.escape(quote(name)), html.escape(caption)
        items.append(f'<figure><a href="{src}" target="_blank"><img src="{src}" alt="{text}" '
                     f'loading="lazy"></a><figcaption>{text}</figcaption></figure>')
    return f'<div class="figures">{"".join(items)}</div>'


def _links(present: set[str], names) -> str:
    links = [f'<a href="{html.escape(quote(n))}">{html.escape(n)}</a>' for n in names
             if n in present]
    return f'<p class="muted">Files: {", ".join(links)}</p>'


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _table(path: Path) -> str:
    """A CSV file as a table of the columns that vary; those with one value for all rows
    go in a line above it, empty ones are left out. Numbers to 4 significant digits."""
    header, *body = _rows(path)
    columns = [j for j in range(len(header)) if any(row[j] for row in body)]
    same = [j for j in columns if len(body) > 1 and len({row[j] for row in body}) == 1]
    shown = [j for j in columns if j not in same]
    cells = "".join("<tr>" + "".join(f"<td>{_number(row[j])}</td>" for j in shown) + "</tr>"
                    for row in body)
    heads = "".join(f"<th>{html.escape(header[j])}</th>" for j in shown)
    common = ", ".join(f"{html.escape(header[j])} {_number(body[0][j])}" for j in same)
    return (f'<p class="muted">{common}</p>' if common else "") + \
        f"<table><thead><tr>{heads}</tr></thead><tbody>{cells}</tbody></table>"


def _number(text: str) -> str:
    try:
        return format(float(text), ".4g")
    except ValueError:
        return html.escape(text)
