"""Results on disk: one record per person, as CSV, versioned JSON or a self-contained HTML report.

A *record* is the plain-Python answer for one person::

    {"id": 17, "status": "optimal", "cost": 0.031, "bound": 0.031, "gap": 0.0,
     "solve_time": 0.12, "wall_time": 0.15, "n_changes": 1,
     "changes": [{"feature": "income", "before": 2100.0, "after": 2480.0}], "message": ""}

``id`` is the person's index label in the input frame; ``changes`` lists the changed *schema
features* (a one-hot group counts once and shows its levels). Missing numbers are NaN in
Python, empty cells in CSV and ``null`` in JSON.

* CSV: one row per person, appended and flushed as each person finishes (so a crash loses
  nothing already computed); columns ``id, status, cost, bound, gap, solve_time, wall_time,
  n_changes, changed, changes, message`` then ``before.<feature>, after.<feature>`` for every
  schema feature, filled only where that feature changed.
* JSON: ``{"format": "mipcf.results/1", "created", "mipcf_version", "model", "options",
  "results": [record, ...]}``; :data:`RESULTS_JSON_SCHEMA` is its JSON Schema and
  :func:`validate_document` checks it without third-party packages.
* HTML: a summary (status counts, cost histogram, median / p90 times) and, per person, a small
  plot of each changed feature from before to after on its normalised range; images are
  embedded as base64 PNG, and the JSON document is embedded too (so ``--resume`` can read an
  HTML report back).
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import status as st

RESULTS_FORMAT = "mipcf.results/1"
NUMBER_FIELDS = ("cost", "bound", "gap", "solve_time", "wall_time")
TIME_FIELDS = ("solve_time", "wall_time")  # differ between runs of the same batch
FORMATS = ("csv", "json", "html")
_HTML_DATA_ID = "mipcf-results"
MAX_PLOTS = 200  # per-person plots in one HTML file; the table lists everyone


class ResultsFileError(ValueError):
    """A results file cannot be written or read back as asked; the message names the file."""


# ---- records -------------------------------------------------------------------------
def plain(v: Any) -> Any:
    """numpy scalars -> Python scalars (JSON and CSV want plain values)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def feature_changes(schema, factual, counterfactual) -> list[dict]:
    """Changed schema features between two one-row frames: ``[{"feature", "before", "after"}]``."""
    if counterfactual is None:
        return []
    from .schema import _key

    before = schema.row_values(factual.iloc[0])
    after = schema.row_values(counterfactual.iloc[0])
    return [{"feature": f, "before": plain(before[f]), "after": plain(after[f])}
            for f in schema.names if _key(before[f]) != _key(after[f])]


def make_record(id_: Any, ex, schema) -> dict:
    """The record of one :class:`~mipcf.Explanation` (``id_`` = the person's index label)."""
    changes = feature_changes(schema, ex.factual, ex.counterfactual)
    rec = {"id": plain(id_), "status": ex.status}
    rec.update({k: float(getattr(ex, k)) for k in NUMBER_FIELDS})
    rec.update(n_changes=len(changes), changes=changes, message=ex.message or "")
    return rec


def error_record(id_: Any, message: str) -> dict:
    """The record of a person that could not be explained at all (bad row, crash)."""
    rec = {"id": plain(id_), "status": st.ERROR}
    rec.update({k: (0.0 if k in TIME_FIELDS else math.nan) for k in NUMBER_FIELDS})
    rec.update(n_changes=0, changes=[], message=message)
    return rec


def changes_text(changes: Sequence[Mapping]) -> str:
    return "; ".join(f"{c['feature']}: {c['before']} -> {c['after']}" for c in changes)


# ---- CSV -----------------------------------------------------------------------------
def csv_header(features: Sequence[str]) -> list[str]:
    head = ["id", "status", *NUMBER_FIELDS, "n_changes", "changed", "changes", "message"]
    for f in features:
        head += [f"before.{f}", f"after.{f}"]
    return head


def _cell(v: Any) -> str:
    v = plain(v)
    if v is None or isinstance(v, float) and math.isnan(v):
        return ""
    if isinstance(v, float):
        return repr(v)  # shortest text that reads back as the same float
    return str(v)


def _parse(text: str) -> Any:
    """Read a CSV cell back: int or float when that is how it was written, else the string
    ("" -> NaN); ``"007"`` stays text, since ``_cell`` would have written the number 7 as ``"7"``."""
    if text == "":
        return math.nan
    try:
        if str(int(text)) == text:
            return int(text)
    except ValueError:
        pass
    try:
        if repr(float(text)) == text:
            return float(text)
    except ValueError:
        pass
    return text


def record_to_row(rec: Mapping, features: Sequence[str]) -> list[str]:
    by_feature = {c["feature"]: c for c in rec["changes"]}
    row = [_cell(rec["id"]), rec["status"], *(_cell(rec[k]) for k in NUMBER_FIELDS), str(rec["n_changes"]),
           ";".join(c["feature"] for c in rec["changes"]), changes_text(rec["changes"]), rec["message"]]
    for f in features:
        c = by_feature.get(f)
        row += [_cell(c["before"]), _cell(c["after"])] if c else ["", ""]
    return row


def row_to_record(row: Mapping[str, str]) -> dict:
    rec = {"id": _parse(row["id"]), "status": row["status"]}
    rec.update({k: float(row[k]) if row[k] != "" else math.nan for k in NUMBER_FIELDS})
    changed = [f for f in row["changed"].split(";") if f]
    rec["changes"] = [{"feature": f, "before": _parse(row[f"before.{f}"]), "after": _parse(row[f"after.{f}"])}
                      for f in changed]
    rec["n_changes"] = int(row["n_changes"])
    rec["message"] = row["message"]
    return rec


class CSVAppender:
    """Appends one CSV row per record and flushes it, so a killed run keeps every finished row.

    Opening an existing file checks that its header is the one this run writes (a file from a
    different schema is an error, not something to mix rows into).
    """

    def __init__(self, path: str | Path, features: Sequence[str]) -> None:
        self.path = Path(path)
        self.features = list(features)
        header = csv_header(self.features)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            check_csv_header(self.path, self.features)
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)
        if fresh:
            self._csv.writerow(header)
            self._fh.flush()

    def write(self, rec: Mapping) -> None:
        self._csv.writerow(record_to_row(rec, self.features))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "CSVAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_csv_header(path: str | Path, features: Sequence[str]) -> None:
    """Raise :class:`ResultsFileError` unless ``path`` starts with the header this schema writes."""
    header = csv_header(features)
    with open(path, newline="", encoding="utf-8") as fh:
        found = next(csv.reader(fh), [])
    if found != header:
        raise ResultsFileError(f"{path} has other columns than this run writes "
                               f"(differences: {_first_diff(found, header)}); "
                               "use another --out or delete the file")


def _first_diff(a: Sequence[str], b: Sequence[str]) -> list[str]:
    return sorted(set(a) ^ set(b))[:5] or ["column order"]


def read_csv_records(path: str | Path) -> list[dict]:
    """Records of a results CSV; a last line cut off by a crash is dropped, not misread."""
    with open(path, newline="", encoding="utf-8") as fh:
        text = fh.read()
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ResultsFileError(f"{path} is not a readable CSV: {exc}") from exc
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    missing = [c for c in csv_header([]) if c not in header]
    if missing:
        raise ResultsFileError(f"{path} is not a mipcf results CSV (no columns {missing})")
    if body and (not text.endswith("\n") or len(body[-1]) != len(header)):
        body = body[:-1]  # no line end, or cut inside a quoted field: the process died mid-write
    out = []
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise ResultsFileError(f"{path}: line {i} has {len(r)} fields, the header has {len(header)}")
        out.append(row_to_record(dict(zip(header, r))))
    return out


def write_csv(records: Iterable[Mapping], path: str | Path, features: Sequence[str]) -> None:
    """Write a complete results CSV atomically (temp file + rename)."""
    tmp = Path(f"{path}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(csv_header(features))
        for rec in records:
            w.writerow(record_to_row(rec, features))
    os.replace(tmp, path)


# ---- JSON ----------------------------------------------------------------------------
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_VALUE = {"type": ["number", "string", "boolean", "null"]}
RESULTS_JSON_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": RESULTS_FORMAT,
    "type": "object",
    "required": ["format", "created", "mipcf_version", "model", "options", "results"],
    "properties": {
        "format": {"const": RESULTS_FORMAT},
        "created": {"type": "string"},
        "mipcf_version": {"type": "string"},
        "model": {"type": "object"},
        "options": {"type": "object"},
        "results": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "status", *NUMBER_FIELDS, "n_changes", "changes", "message"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": ["integer", "string"]},
                "status": {"enum": list(st.STATUSES)},
                **{k: _NUMBER_OR_NULL for k in NUMBER_FIELDS},
                "n_changes": {"type": "integer", "minimum": 0},
                "changes": {"type": "array", "items": {
                    "type": "object", "required": ["feature", "before", "after"], "additionalProperties": False,
                    "properties": {"feature": {"type": "string"}, "before": _VALUE, "after": _VALUE}}},
                "message": {"type": "string"},
            }}},
    },
}


def _json_value(v: Any) -> Any:
    v = plain(v)
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _json_value(x) for k, x in v.items()}
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _json_record(rec: Mapping) -> dict:
    out = {k: _json_value(rec[k]) for k in ("id", "status", *NUMBER_FIELDS, "n_changes")}
    out["changes"] = [{k: _json_value(c[k]) for k in ("feature", "before", "after")} for c in rec["changes"]]
    out["message"] = rec["message"]
    return out


def _python_record(obj: Mapping) -> dict:
    rec = dict(obj)
    for k in NUMBER_FIELDS:
        rec[k] = math.nan if rec[k] is None else float(rec[k])
    rec["changes"] = [dict(c) for c in rec["changes"]]
    return rec


def results_document(records: Iterable[Mapping], model: Mapping | None = None,
                     options: Mapping | None = None, created: str | None = None) -> dict:
    """The ``mipcf.results/1`` document (plain JSON types only) for ``records``."""
    from . import __version__

    return {"format": RESULTS_FORMAT,
            "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "mipcf_version": __version__,
            "model": {k: _json_value(v) for k, v in (model or {}).items()},
            "options": {k: _json_value(v) for k, v in (options or {}).items()},
            "results": [_json_record(r) for r in records]}


def validate_document(doc: Any) -> None:
    """Raise ``ValueError`` naming the first field of ``doc`` that breaks ``mipcf.results/1``."""
    if not isinstance(doc, dict):
        raise ValueError(f"a results document is a JSON object, not {type(doc).__name__}")
    if doc.get("format") != RESULTS_FORMAT:
        raise ValueError(f"format is {doc.get('format')!r}; this mipcf reads {RESULTS_FORMAT!r}")
    for key, typ in (("created", str), ("mipcf_version", str), ("model", dict), ("options", dict),
                     ("results", list)):
        if not isinstance(doc.get(key), typ):
            raise ValueError(f"field {key!r} must be a {typ.__name__}")
    required = set(RESULTS_JSON_SCHEMA["properties"]["results"]["items"]["required"])
    seen = set()
    for i, r in enumerate(doc["results"]):
        where = f"results[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where} is not an object")
        if set(r) != required:
            raise ValueError(f"{where}: missing {sorted(required - set(r))}, unknown {sorted(set(r) - required)}")
        if not isinstance(r["id"], (int, str)) or isinstance(r["id"], bool):
            raise ValueError(f"{where}.id must be an integer or a string")
        if str(r["id"]) in seen:
            raise ValueError(f"{where}.id {r['id']!r} repeats")
        seen.add(str(r["id"]))
        if r["status"] not in st.STATUSES:
            raise ValueError(f"{where}.status {r['status']!r} is not one of {st.STATUSES}")
        for k in NUMBER_FIELDS:
            if r[k] is not None and (isinstance(r[k], bool) or not isinstance(r[k], (int, float))):
                raise ValueError(f"{where}.{k} must be a number or null")
        if not isinstance(r["changes"], list) or not all(
                isinstance(c, dict) and set(c) == {"feature", "before", "after"} for c in r["changes"]):
            raise ValueError(f"{where}.changes must be a list of {{feature, before, after}} objects")
        if r["n_changes"] != len(r["changes"]):
            raise ValueError(f"{where}.n_changes is {r['n_changes']} but {len(r['changes'])} changes are listed")
        if r["status"] in (st.INFEASIBLE, st.ERROR) and r["changes"]:
            raise ValueError(f"{where} is {r['status']} but lists changes")
        if not isinstance(r["message"], str):
            raise ValueError(f"{where}.message must be a string")


def document_records(doc: Mapping) -> list[dict]:
    """Validate a results document and return its records (NaN for null numbers)."""
    validate_document(doc)
    return [_python_record(r) for r in doc["results"]]


def write_json(doc: Mapping, path: str | Path) -> None:
    _atomic_write(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> dict:
    """Read and validate a results JSON file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{path} is not JSON: {exc}") from exc
    try:
        validate_document(doc)
    except ValueError as exc:
        raise ResultsFileError(f"{path}: {exc}") from exc
    return doc


def _atomic_write(path: str | Path, text: str) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---- reading any results file back -----------------------------------------------------
def read_records(path: str | Path, fmt: str | None = None) -> list[dict]:
    """Records from a results file written by mipcf (CSV, JSON or HTML)."""
    fmt = fmt or format_of(path)
    if fmt == "csv":
        return read_csv_records(path)
    if fmt == "json":
        return document_records(read_json(path))
    text = Path(path).read_text(encoding="utf-8")
    start = text.find(f'<script type="application/json" id="{_HTML_DATA_ID}">')
    if start < 0:
        raise ResultsFileError(f"{path} is not an HTML report written by mipcf (no embedded results)")
    body = text[text.index(">", start) + 1:text.index("</script>", start)]
    try:
        return document_records(json.loads(body.replace("<\\/", "</")))
    except ValueError as exc:
        raise ResultsFileError(f"{path}: the embedded results are damaged: {exc}") from exc


def format_of(path: str | Path) -> str:
    """Output format from a file name: ``.csv``, ``.json``, ``.html``/``.htm``."""
    suffix = Path(path).suffix.lower().lstrip(".")
    fmt = {"htm": "html"}.get(suffix, suffix)
    if fmt not in FORMATS:
        raise ResultsFileError(f"cannot tell the format of {str(path)!r} from its suffix; use --format csv|json|html")
    return fmt


# ---- HTML ----------------------------------------------------------------------------
def _normaliser(schema):
    """feature -> (value -> position in [0, 1]) from the schema's bounds / levels."""
    from .schema import _key

    out = {}
    for f in schema.features if schema is not None else []:
        if f.is_numeric:
            lo, hi = f.lower, f.upper
            out[f.name] = (lambda v, lo=lo, hi=hi: (float(v) - lo) / (hi - lo) if hi > lo else 0.5)
        elif f.type == "ordinal":
            keys = [_key(lv) for lv in f.levels]
            k = max(len(keys) - 1, 1)
            out[f.name] = (lambda v, keys=keys, k=k: keys.index(_key(v)) / k if _key(v) in keys else 0.5)
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _change_plot(changes: Sequence[Mapping], norm: Mapping) -> str:
    """Base64 PNG: one arrow per changed feature, before -> after on the feature's [0, 1] range.

    Categorical features have no order: they are drawn from 0 to 1 and labelled with the levels.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 0.45 * len(changes) + 0.7))
    for i, c in enumerate(changes):
        f = norm.get(c["feature"])
        b, a = (f(c["before"]), f(c["after"])) if f else (0.0, 1.0)
        colour = "#1f6fb4" if a >= b else "#c0392b"
        ax.plot([0, 1], [i, i], color="#e5e5e5", lw=6, solid_capstyle="butt", zorder=1)  # the range
        ax.plot([b, a], [i, i], color=colour, lw=2, zorder=2)
        ax.plot([b], [i], "o", mfc="white", mec="#555555", ms=7, zorder=3)  # before: hollow
        ax.plot([a], [i], "o", color=colour, ms=7, zorder=3)  # after: filled
        ax.text(1.08, i, f"{c['before']} \u2192 {c['after']}", va="center", fontsize=8)
    ax.set_yticks(range(len(changes)), [c["feature"] for c in changes], fontsize=8)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.6, len(changes) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("position in the feature's range (0 = lower bound, 1 = upper bound)", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _cost_plot(costs: Sequence[float]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 2.4))
    ax.hist(costs, bins=min(30, max(5, len(costs) // 3)), color="#1f6fb4")
    ax.set_xlabel("cost of the counterfactual", fontsize=8)
    ax.set_ylabel("people", fontsize=8)
    ax.tick_params(labelsize=7)
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return html.escape(str(v))


_CSS = """body{font-family:system-ui,Arial,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.optimal{color:#17803d}.feasible{color:#b8860b}
.infeasible{color:#555}.error{color:#c0392b}section.person{margin:1em 0;padding:.4em .8em;border-left:3px solid #ddd}
img{display:block;max-width:100%}"""


def render_html(doc: Mapping, schema=None, max_plots: int = MAX_PLOTS) -> str:
    """A self-contained HTML report of a ``mipcf.results/1`` document (images inline)."""
    import matplotlib
    matplotlib.use("Agg", force=False)  # no display on servers; the PNGs are embedded

    records = document_records(doc)
    norm = _normaliser(schema)
    counts = {s: sum(r["status"] == s for r in records) for s in st.STATUSES}
    solved = [r for r in records if r["status"] in (st.OPTIMAL, st.FEASIBLE)]
    costs = [r["cost"] for r in solved if math.isfinite(r["cost"])]
    times = np.array([r["wall_time"] for r in records if math.isfinite(r["wall_time"])] or [math.nan])
    solve = np.array([r["solve_time"] for r in records if math.isfinite(r["solve_time"])] or [math.nan])

    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>mipcf counterfactual report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>Counterfactual explanations</h1>",
             f"<p>{len(records)} people; created {e(doc['created'])} by mipcf {e(doc['mipcf_version'])}.</p>"]
    meta = {**{f"model.{k}": v for k, v in doc["model"].items()}, **doc["options"]}
    if meta:
        parts.append('<table id="options">' + "".join(
            f'<tr><th class="l">{e(str(k))}</th><td class="l">{_fmt(v)}</td></tr>' for k, v in meta.items())
            + "</table>")
    parts.append('<h2>Summary</h2><table id="summary"><tr>' + "".join(f"<th>{s}</th>" for s in st.STATUSES)
                 + "</tr><tr>" + "".join(f'<td class="{s}">{counts[s]}</td>' for s in st.STATUSES)
                 + "</tr></table>")
    parts.append('<table id="timing"><tr><th class="l">seconds per person</th><th>median</th><th>p90</th>'
                 "<th>max</th></tr>" + "".join(
                     f'<tr><td class="l">{name}</td>' + "".join(f"<td>{_fmt(float(v))}</td>" for v in (
                         np.median(a), np.percentile(a, 90), np.max(a))) + "</tr>"
                     for name, a in (("wall time", times), ("solver time", solve))) + "</table>")
    if costs:
        parts.append(f"<p>cost: median {_fmt(float(np.median(costs)))}, p90 "
                     f"{_fmt(float(np.percentile(costs, 90)))}, max {_fmt(max(costs))}</p>")
        parts.append(f'<img alt="histogram of costs" src="data:image/png;base64,{_cost_plot(costs)}">')
    parts.append('<h2>People</h2><table id="people"><tr><th class="l">id</th><th class="l">status</th>'
                 '<th>cost</th><th>gap</th><th>seconds</th><th class="l">changes</th><th class="l">message</th></tr>')
    for r in records:
        parts.append(f'<tr><td class="l"><a href="#p{e(str(r["id"]))}">{e(str(r["id"]))}</a></td>'
                     f'<td class="l {r["status"]}">{r["status"]}</td><td>{_fmt(r["cost"])}</td>'
                     f'<td>{_fmt(r["gap"])}</td><td>{_fmt(r["wall_time"])}</td>'
                     f'<td class="l">{e(changes_text(r["changes"]))}</td><td class="l">{e(r["message"])}</td></tr>')
    parts.append("</table>")
    plotted = [r for r in records if r["changes"]][:max_plots]
    if len(plotted) < sum(bool(r["changes"]) for r in records):
        parts.append(f"<p>Plots for the first {len(plotted)} people with changes; the table lists everyone.</p>")
    for r in plotted:
        parts.append(f'<section class="person" id="p{e(str(r["id"]))}"><h3>id {e(str(r["id"]))}: '
                     f'<span class="{r["status"]}">{r["status"]}</span>, cost {_fmt(r["cost"])}</h3>'
                     f'<img alt="changes of id {e(str(r["id"]))}" '
                     f'src="data:image/png;base64,{_change_plot(r["changes"], norm)}"></section>')
    data = json.dumps(doc, allow_nan=False).replace("</", "<\\/")  # cannot close the script element
    parts.append(f'<script type="application/json" id="{_HTML_DATA_ID}">{data}</script>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(doc: Mapping, path: str | Path, schema=None, max_plots: int = MAX_PLOTS) -> None:
    _atomic_write(path, render_html(doc, schema, max_plots))


def write_results(records: Sequence[Mapping], path: str | Path, fmt: str, features: Sequence[str],
                  schema=None, model: Mapping | None = None, options: Mapping | None = None) -> None:
    """Write the final results file in ``fmt`` (``csv`` | ``json`` | ``html``)."""
    if fmt == "csv":
        write_csv(records, path, features)
        return
    doc = results_document(records, model, options)
    if fmt == "json":
        write_json(doc, path)
    elif fmt == "html":
        write_html(doc, path, schema)
    else:
        raise ResultsFileError(f"unknown format {fmt!r}; expected one of {FORMATS}")
