"""`cockpit import-events`: a city's own event exports into the store, in bulk, idempotently.

The file is read in chunks (memory stays bounded whatever its size); each chunk's columns are
mapped to ours, times parsed and placed in the city's zone, points placed in leaf units with one
STRtree query, and the rows sent with COPY into a staging table. Rows that cannot be loaded go to
`quarantine` with their original content and a reason. At the end the staged rows go into
`events` set-based (known ones updated where something changed, new ones inserted, the rest
untouched) and the transitions that follow from it are appended. Everything happens in one transaction: an
import is stored whole or not at all.

Rules (docs/schema.md §4 "Importing files" says the same for operators):

- Local times without an offset are read in `--tz` (default COCKPIT_TIMEZONE). A local time that
  occurs twice (clocks going back) is the **earlier** instant (the one still on summer time);
  a local time that does not exist (clocks going forward) is moved **forward to the first
  instant after the gap** (02:30 in a 02:00→03:00 gap is 03:00).
- A close time before the report time by at most CLOCK_SKEW is clamped to the report time (the
  systems' clocks differ a little) and counted as clamped; further back, the row is quarantined.
- A row is placed by its coordinates (the leaf unit covering the point, lowest id on a shared
  border, as the store's trigger does); without usable coordinates, or outside every leaf unit,
  by its unit code / unit name column: the event then belongs to that unit, at whatever level
  ("placed only at this level").
- Within one file the first row of a (source, external id) is loaded; later ones are quarantined.
- A geocoder's fallback point (a city hall or district office given to every address it could not
  place) shows as one exact coordinate holding an unusual share of the file's rows with
  coordinates: at least APPROXIMATE_MIN_ROWS rows, at least APPROXIMATE_MIN_SHARE of the rows with
  coordinates, and at least APPROXIMATE_RATIO times the rows of the densest point that does not
  meet the first two (the file's densest real place: a busy market). Its rows are loaded with
  `location_approximate` set (they count in KPIs, not in heat or spatial analysis); points named
  with --approximate-point are flagged whatever their count. An event flagged once stays flagged
  when a later export updates it (the import never moves a stored point).
"""
from __future__ import annotations

import gzip
import io
import itertools
import json
import re
import time
import tomllib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ijson
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from cockpit.errors import CockpitError
from cockpit.metrics import changes, heat, rollup
from cockpit.store import partitions
from cockpit.store.bulkcopy import bulk_load_mode, prefetched
from cockpit.store.schema import SOURCES, STATUSES

CLOCK_SKEW = timedelta(minutes=5)
CHUNK_ROWS = 200_000
# from this many points per leaf unit, place() sweeps the leaves over the sorted points rather than
# querying the tree with point geometries (a chunk of 200 k rows in 3,000 grids: 0.6 s -> ~0.1 s)
PLACE_SWEEP_POINTS_PER_LEAF = 10
# Geocoding fallback rule (module docstring); [options] approximate_* and --approximate-* override.
APPROXIMATE_MIN_ROWS = 50
APPROXIMATE_MIN_SHARE = 0.01
APPROXIMATE_RATIO = 5.0
POINT_TOLERANCE = 1e-7  # degrees (~1 cm): a named point matches the file's text however it is rounded

# Our fields and what they mean; a mapping names the file's column for each it has.
FIELDS = {
    "external_id": "the event's id in the source system (required)",
    "source": "source / channel (or a fixed --source)",
    "category": "category code (or name)",
    "category_name": "category name",
    "category_group": "category group name",
    "reported_at": "report time (required)",
    "deadline_at": "deadline",
    "closed_at": "close time",
    "updated_at": "last change (time of a status change; close time of a closed row without one)",
    "status": "status",
    "rating": "1-5 rating (or words mapped under [values.rating])",
    "rated_at": "rating time",
    "lat": "latitude (WGS 84)",
    "lon": "longitude (WGS 84)",
    "unit_code": "code of the unit holding the event (when there are no coordinates)",
    "unit_name": "name of the unit holding the event (when there are no coordinates)",
    "department": "department code or name",
    "description": "free text",
    "address": "address",
    "reporter_name": "reporter's name (personal data)",
    "reporter_phone": "reporter's phone (personal data)",
}
UNREADABLE = "\x00unreadable"  # a column no file has: the text of a record that could not be parsed
TIME_FIELDS = ("reported_at", "deadline_at", "closed_at", "updated_at", "rated_at")
VALUE_FIELDS = ("status", "source", "rating")
FORMATS = ("csv", "parquet", "jsonl", "open311")

# Why a row was quarantined (the summary prints them in this order).
REASONS = {
    "unreadable_row": "the record itself could not be parsed (not a JSON object)",
    "missing_external_id": "no external id",
    "unparsable_time": "report time missing or a time unparsable",
    "no_location": "no usable coordinates and no unit column",
    "outside_units": "coordinates outside every leaf unit and no known unit",
    "unknown_unit": "no coordinates and the unit code/name is not in the store (or names several units)",
    "closed_before_reported": f"closed before reported by more than {int(CLOCK_SKEW.total_seconds() // 60)} min",
    "closed_without_time": "status closed but no close (or update) time",
    "unmapped_status": "status value not mapped",
    "unmapped_source": "source value not mapped",
    "bad_rating": "rating not 1-5",
    "missing_category": "no category",
    "duplicate_in_file": "(source, external id) already earlier in the file",
}


@dataclass
class Mapping:
    """How a file's columns and values become ours (from flags, a TOML file or a preset)."""
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, object]] = field(default_factory=dict)
    source: str | None = None
    format: str | None = None
    time_formats: list[str] = field(default_factory=list)
    default_deadline_hours: float | None = None
    category_groups: dict[str, str] = field(default_factory=dict)
    optional: set[str] = field(default_factory=set)  # columns that may be absent from the file
    approximate_min_rows: int = APPROXIMATE_MIN_ROWS
    approximate_min_share: float = APPROXIMATE_MIN_SHARE
    approximate_ratio: float = APPROXIMATE_RATIO
    approximate_points: list[tuple[float, float]] = field(default_factory=list)

    @classmethod
    def from_toml(cls, text: str, where: str) -> "Mapping":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CockpitError(f"{where}: not valid TOML ({exc})")
        m = cls()
        m.merge(doc, where)
        return m

    def merge(self, doc: dict, where: str) -> None:
        unknown = set(doc) - {"format", "columns", "values", "options", "category_groups"}
        if unknown:
            raise CockpitError(f"{where}: unknown section {sorted(unknown)[0]!r} "
                               "(known: format, columns, values, options, category_groups)")
        if "format" in doc:
            self.format = _check_format(doc["format"], where)
        for ours, theirs in doc.get("columns", {}).items():
            if ours not in FIELDS:
                raise CockpitError(f"{where}: [columns] {ours!r} is not one of ours ({', '.join(FIELDS)})")
            self.columns[ours] = str(theirs)
        for ours, table in doc.get("values", {}).items():
            if ours not in VALUE_FIELDS:
                raise CockpitError(f"{where}: [values.{ours}]: only {', '.join(VALUE_FIELDS)} have value maps")
            self.values.setdefault(ours, {}).update({str(k): v for k, v in table.items()})
        opts = doc.get("options", {})
        unknown = set(opts) - {"source", "time_formats", "default_deadline_hours", *APPROXIMATE_OPTIONS}
        if unknown:
            raise CockpitError(f"{where}: unknown option {sorted(unknown)[0]!r}")
        self.set_approximate(where, **{k: v for k, v in opts.items() if k in APPROXIMATE_OPTIONS})
        if "source" in opts:
            self.source = str(opts["source"])
        if "time_formats" in opts:
            self.time_formats = [str(f) for f in opts["time_formats"]]
        if "default_deadline_hours" in opts:
            self.default_deadline_hours = float(opts["default_deadline_hours"])
        self.category_groups.update({str(k): str(v) for k, v in doc.get("category_groups", {}).items()})

    def set_approximate(self, where: str, approximate_min_rows=None, approximate_min_share=None,
                        approximate_ratio=None, approximate_points=None) -> None:
        """The fallback rule's thresholds and named points, checked (from [options] or flags)."""
        def number(name, value, kind, low):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value % 1) \
                    or value < low:
                raise CockpitError(f"{where}: {name} = {value!r}: must be a {'whole ' if kind is int else ''}"
                                   f"number of at least {low}")
            return kind(value)

        if approximate_min_rows is not None:
            self.approximate_min_rows = number("approximate_min_rows", approximate_min_rows, int, 1)
        if approximate_min_share is not None:
            self.approximate_min_share = number("approximate_min_share", approximate_min_share, float, 0)
            if self.approximate_min_share > 1:
                raise CockpitError(f"{where}: approximate_min_share = {approximate_min_share!r}: a fraction "
                                   "of the rows, 0-1 (0.01 is 1 %)")
        if approximate_ratio is not None:
            self.approximate_ratio = number("approximate_ratio", approximate_ratio, float, 1)
        if approximate_points is not None:
            if isinstance(approximate_points, str) or not isinstance(approximate_points, list):
                raise CockpitError(f"{where}: approximate_points must be a list of \"LON,LAT\" texts")
            self.approximate_points.extend(parse_point(p, where) for p in approximate_points)

    def check(self) -> None:
        for need in ("external_id", "reported_at"):
            if need not in self.columns:
                raise CockpitError(f"no column mapped to {need}: give --map {need}=COLUMN, a --mapping file "
                                   "or a --preset")
        if "category" not in self.columns and "category_name" not in self.columns:
            raise CockpitError("no column mapped to category (or category_name)")
        if self.source is None and "source" not in self.columns:
            raise CockpitError("no source: give --source (one of " + ", ".join(SOURCES) + ") or map a source column")
        if self.source is not None and self.source not in SOURCES:
            raise CockpitError(f"source {self.source!r} is not one of {', '.join(SOURCES)}")
        if ("lat" in self.columns) != ("lon" in self.columns):
            raise CockpitError("map both lat and lon, or neither")
        for ours in ("status", "source"):
            allowed = STATUSES if ours == "status" else SOURCES
            for theirs, to in self.values.get(ours, {}).items():
                if to not in allowed:
                    raise CockpitError(f"[values.{ours}] {theirs!r} = {to!r}: not one of {', '.join(allowed)}")
        for theirs, to in self.values.get("rating", {}).items():
            if not (isinstance(to, int) and 1 <= to <= 5):
                raise CockpitError(f"[values.rating] {theirs!r} = {to!r}: must be a whole number 1-5")


APPROXIMATE_OPTIONS = ("approximate_min_rows", "approximate_min_share", "approximate_ratio", "approximate_points")


def parse_point(text, where: str) -> tuple[float, float]:
    """'LON,LAT' (WGS 84) as two floats."""
    lon, sep, lat = str(text).partition(",")
    try:
        point = float(lon), float(lat)
    except ValueError:
        point = None
    if not sep or point is None or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90):
        raise CockpitError(f"{where}: {text!r} is not a point: write LON,LAT in degrees, e.g. 121.4737,31.2304")
    return point


def _check_format(fmt: str, where: str) -> str:
    if fmt not in FORMATS:
        raise CockpitError(f"{where}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def presets() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("cockpit.ingest").joinpath("presets").iterdir()
                  if p.name.endswith(".toml"))


def build_mapping(*, preset: str | None = None, mapping_file: str | None = None, maps: list[str] = (),
                  values: list[str] = (), source: str | None = None, fmt: str | None = None,
                  time_formats: list[str] = (), default_deadline_hours: float | None = None,
                  approximate_points: list[str] = (), approximate_min_rows: int | None = None,
                  approximate_min_share: float | None = None, approximate_ratio: float | None = None) -> Mapping:
    """Preset, then the mapping file, then flags: each later one overrides the earlier."""
    m = Mapping()
    if preset:
        if preset not in presets():
            raise CockpitError(f"--preset {preset!r} is unknown (known: {', '.join(presets())})")
        text = resources.files("cockpit.ingest").joinpath("presets", preset + ".toml").read_text("utf-8")
        m.merge(tomllib.loads(text), f"preset {preset}")
        # a preset names every column the format may have; a file without some of them is fine
        m.optional = set(m.columns) - {"external_id", "reported_at", "category", "category_name"}
    if mapping_file:
        path = Path(mapping_file)
        if not path.is_file():
            raise CockpitError(f"--mapping {mapping_file}: no such file")
        try:
            doc = tomllib.loads(path.read_text("utf-8"))
            m.optional -= set(doc.get("columns", {}))
            m.merge(doc, mapping_file)
        except tomllib.TOMLDecodeError as exc:
            raise CockpitError(f"{mapping_file}: not valid TOML ({exc})")
    for item in maps:
        ours, sep, theirs = item.partition("=")
        if not sep or not theirs:
            raise CockpitError(f"--map {item!r}: write FIELD=COLUMN, e.g. --map reported_at=受理时间")
        m.merge({"columns": {ours.strip(): theirs}}, "--map")
        m.optional.discard(ours.strip())
    for item in values:
        ours, sep, rest = item.partition(":")
        theirs, sep2, to = rest.partition("=")
        if not sep or not sep2:
            raise CockpitError(f"--value {item!r}: write FIELD:THEIRS=OURS, e.g. --value status:已办结=closed")
        m.merge({"values": {ours: {theirs: int(to) if ours == "rating" and to.isdigit() else to}}}, "--value")
    if source:
        m.source = source
    if fmt:
        m.format = _check_format(fmt, "--format")
    if time_formats:
        m.time_formats = list(time_formats)
    if default_deadline_hours is not None:
        if default_deadline_hours <= 0:
            raise CockpitError("--default-deadline-hours must be above 0")
        m.default_deadline_hours = default_deadline_hours
    m.set_approximate("--approximate-*", approximate_min_rows, approximate_min_share, approximate_ratio,
                      list(approximate_points) or None)
    m.check()
    return m


# ---------------------------------------------------------------------------------- reading

def detect_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    if name.endswith(".json"):
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
        return "open311" if head.startswith(b"[") else "jsonl"
    raise CockpitError(f"{path}: cannot tell the file type from its name; give --format ({', '.join(FORMATS)})")


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text ('' when missing): one representation for every reader."""
    out = {}
    for col in df.columns:
        s = df[col]
        out[str(col)] = s.astype(str).where(s.notna(), "")
    return pd.DataFrame(out, index=df.index)


def read_chunks(path: Path, fmt: str, chunk_rows: int = CHUNK_ROWS, encoding: str = "utf-8-sig") -> Iterator[pd.DataFrame]:
    """The file's records as text frames of at most chunk_rows rows; the index is the record number (1-based)."""
    start = 1

    def numbered(df):
        nonlocal start
        df.index = pd.RangeIndex(start, start + len(df))
        start += len(df)
        return df

    try:
        if fmt == "csv":
            reader = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, chunksize=chunk_rows,
                                 compression="infer", encoding=encoding, skipinitialspace=False)
            for df in reader:
                yield numbered(df)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield numbered(_as_text(batch.to_pandas()))
        elif fmt == "jsonl":
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding=encoding) as f:
                while True:
                    lines = [line for line in itertools.islice(f, chunk_rows)]
                    if not lines:
                        break
                    yield numbered(_json_lines(lines))
        elif fmt == "open311":
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding=encoding) as f:
                for records in _open311_records(f, chunk_rows, path):
                    yield numbered(_as_text(pd.DataFrame.from_records(records)))
    except CockpitError:
        raise
    except UnicodeDecodeError as exc:
        raise CockpitError(f"{path}: not {encoding} text at byte {exc.start}; give its --encoding (e.g. gb18030)")
    except LookupError:
        raise CockpitError(f"--encoding {encoding!r} is not a known text encoding")
    except (ValueError, OSError, pd.errors.ParserError, json.JSONDecodeError, ijson.JSONError) as exc:
        raise CockpitError(f"{path}: cannot be read as {fmt} ({str(exc).splitlines()[0][:200]})")
    except Exception as exc:  # pyarrow's own errors (not a Parquet file, …)
        if type(exc).__module__.startswith("pyarrow"):
            raise CockpitError(f"{path}: cannot be read as {fmt} ({str(exc).splitlines()[0][:200]})")
        raise


class _Utf8:
    """A text file as the UTF-8 bytes ijson reads (the file's own --encoding decoded first)."""

    def __init__(self, text):
        self.text = text

    def read(self, n: int = -1) -> bytes:
        if n == 0:  # ijson probes the kind of file with read(0)
            return b""
        return self.text.read(max(n // 4, 1) if n > 0 else -1).encode("utf-8")


def _open311_records(f, chunk_rows: int, path: Path) -> Iterator[list[dict]]:
    """The service requests of an Open311 list, chunk_rows at a time, streamed (never all in memory)."""
    events = ijson.parse(_Utf8(f), use_float=True)
    first = next(events, None)
    if first is None or first[1] != "start_array":
        raise CockpitError(f"{path}: not an Open311 GeoReport v2 list of service requests")
    records = ijson.items(itertools.chain([first], events), "item")
    while batch := list(itertools.islice(records, chunk_rows)):
        if not all(isinstance(r, dict) for r in batch):
            raise CockpitError(f"{path}: not an Open311 GeoReport v2 list of service requests")
        yield batch


def _json_lines(lines: list[str]) -> pd.DataFrame:
    """Records of JSON lines; a line that is not a JSON object keeps its text in UNREADABLE."""
    records = []
    for line in lines:
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError
        except ValueError:
            rec = {UNREADABLE: line.rstrip("\n") or " "}
        records.append(rec)
    df = _as_text(pd.DataFrame.from_records(records))
    return df[[c for c in df.columns if c != UNREADABLE] + ([UNREADABLE] if UNREADABLE in df.columns else [])]


# ---------------------------------------------------------------------------------- parsing

_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


def parse_times(text: pd.Series, formats: list[str], tz: ZoneInfo) -> tuple[pd.Series, pd.Series]:
    """(UTC instants, unparsable mask) for a column of time text; '' is missing, not unparsable.

    Text with an offset is that instant; local text is read in tz with the DST rule of the
    module docstring (ambiguous → earlier, nonexistent → first instant after the gap).
    """
    text = text.str.strip()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    present = text != ""
    if not present.any():  # a column the file leaves empty (or lacks) costs nothing more
        return out, present
    has_offset = present & text.str.contains(_OFFSET)
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
    local = present & ~has_offset
    naive = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    todo = local.copy()
    for fmt in [*formats, "ISO8601"]:
        if not todo.any():
            break
        got = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        ok = got.notna()
        naive[ok[ok].index] = got[ok]
        todo[ok[ok].index] = False
    if local.any():
        loc = naive[local]
        placed = pd.DatetimeIndex(loc).tz_localize(tz, ambiguous=np.ones(len(loc), dtype=bool),
                                                  nonexistent="shift_forward")
        out[local] = pd.Series(placed, index=loc.index).dt.tz_convert("UTC")
    bad = present & out.isna()
    return out, bad


def _num(text: pd.Series) -> pd.Series:
    """Numbers of stripped text (col()); '' and anything unparsable are NaN."""
    return pd.to_numeric(text, errors="coerce")


# ---------------------------------------------------------------------------------- the store side

class Store:
    """What one import needs from the store, fetched once, plus what it creates."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        rows = conn.execute(sa.text(
            "SELECT u.id, u.code, u.name, ST_AsBinary(u.geom), NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id) "
            "FROM units u ORDER BY u.id")).all()
        if not rows:
            raise CockpitError("the store has no units: import the unit boundaries first")
        self.unit_by_code = {r[1]: r[0] for r in rows}
        by_name: dict[str, list[int]] = {}
        for r in rows:
            by_name.setdefault(r[2], []).append(r[0])
        self.unit_by_name = {n: ids[0] for n, ids in by_name.items() if len(ids) == 1}
        leaves = [(r[0], r[3]) for r in rows if r[4] and r[3] is not None]
        self.leaf_ids = np.array([i for i, _ in leaves], dtype=np.int64)  # ascending
        self.leaves = shapely.from_wkb([bytes(g) for _, g in leaves])
        shapely.prepare(self.leaves)
        self.bounds = shapely.bounds(self.leaves)
        self.tree = shapely.STRtree(self.leaves) if leaves else None
        self.leaf_set = set(self.leaf_ids.tolist())
        # hashes of the (source, external id) loaded so far: one sorted array per chunk, 8 bytes a
        # row (40 MB for 5 M rows), looked up by binary search, never re-sorted as a whole
        self.seen: list[np.ndarray] = []
        self._load_refs()

    def was_seen(self, h: np.ndarray) -> np.ndarray:
        """Which of the key hashes h an earlier chunk loaded."""
        found = np.zeros(len(h), dtype=bool)
        for run in self.seen:
            at = np.minimum(np.searchsorted(run, h), len(run) - 1)
            found |= run[at] == h
        return found

    def _load_refs(self) -> None:
        cats = self.conn.execute(sa.text("SELECT id, code, name, parent_id FROM categories")).all()
        self.cat_by_code = {c.code: c.id for c in cats}
        self.cat_by_name = {}
        for c in cats:
            self.cat_by_name.setdefault(c.name, c.id)
        deps = self.conn.execute(sa.text("SELECT id, code, name FROM departments")).all()
        self.dep = {d.code: d.id for d in deps}
        for d in deps:
            self.dep.setdefault(d.name, d.id)

    def place(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Leaf unit id covering each point (lowest id on shared borders), -1 where none."""
        found = np.full(len(lon), -1, dtype=np.int64)
        if self.tree is None or len(lon) == 0:
            return found
        if len(lon) >= PLACE_SWEEP_POINTS_PER_LEAF * len(self.leaf_ids):
            return self._place_sweep(lon, lat, found)
        pts = shapely.points(lon, lat)
        src, hit = self.tree.query(pts, predicate="covered_by")
        if len(src):
            ids = self.leaf_ids[hit]
            order = np.lexsort((ids, src))  # per point, lowest unit id first
            src, ids = src[order], ids[order]
            first = np.r_[True, src[1:] != src[:-1]]
            found[src[first]] = ids[first]
        return found

    def _place_sweep(self, lon: np.ndarray, lat: np.ndarray, found: np.ndarray) -> np.ndarray:
        """place() for many points: each leaf in ascending id tests the points inside its bounding
        box (a slice of the points sorted by longitude) on their coordinates, and takes those no
        lower id took. No point geometries: making a million of them cost more than the tests."""
        order = np.argsort(lon, kind="stable")
        xs, ys = lon[order], lat[order]
        starts = np.searchsorted(xs, self.bounds[:, 0], "left")
        ends = np.searchsorted(xs, self.bounds[:, 2], "right")
        for k in np.flatnonzero(ends > starts):
            a, b = starts[k], ends[k]
            y = ys[a:b]
            pts = order[a:b][(y >= self.bounds[k, 1]) & (y <= self.bounds[k, 3])]
            pts = pts[found[pts] < 0]
            if len(pts):
                # a point intersects a polygon exactly when the polygon covers it (border included)
                found[pts[shapely.intersects_xy(self.leaves[k], lon[pts], lat[pts])]] = self.leaf_ids[k]
        return found

    def categories(self, codes: pd.Series, names: pd.Series, groups: pd.Series) -> tuple[pd.Series, int]:
        """Category id per row; unknown ones (and their groups) are created. Returns (ids, created)."""
        key = codes.where(codes != "", names)
        wanted = pd.DataFrame({"key": key, "name": names.where(names != "", key), "group": groups}
                              ).drop_duplicates("key")
        created = 0
        for r in wanted.itertuples(index=False):
            if r.key == "" or r.key in self.cat_by_code or r.key in self.cat_by_name:
                continue
            parent = None
            if r.group:
                parent = self.cat_by_code.get(r.group) or self.cat_by_name.get(r.group)
                if parent is None:
                    parent = self._insert_category(r.group, r.group, None)
                    created += 1
            self._insert_category(r.key, r.name, parent)
            created += 1
        mapped = key.map(self.cat_by_code)
        by_name = key.map(self.cat_by_name)
        return mapped.fillna(by_name), created

    def _insert_category(self, code: str, name: str, parent: int | None) -> int:
        cid = self.conn.execute(sa.text(
            "INSERT INTO categories (code, name, parent_id) VALUES (:c, :n, :p) RETURNING id"),
            {"c": code, "n": name, "p": parent}).scalar_one()
        self.cat_by_code[code] = cid
        self.cat_by_name.setdefault(name, cid)
        return cid

    def departments(self, values: pd.Series) -> tuple[pd.Series, int]:
        created = 0
        for v in values.unique():
            if v and v not in self.dep:
                self.dep[v] = self.conn.execute(sa.text(
                    "INSERT INTO departments (code, name) VALUES (:v, :v) RETURNING id"), {"v": v}).scalar_one()
                created += 1
        return values.map(self.dep), created


# ---------------------------------------------------------------------------------- the import

STAGE_COLUMNS = ("row_no", "source", "external_id", "category_id", "reported_at", "deadline_at", "closed_at",
                 "updated_at", "status", "rating", "rated_at", "lon", "lat", "grid_id", "department_id",
                 "description", "address", "reporter_name", "reporter_phone")


@dataclass
class Result:
    import_id: int
    file_name: str
    format: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: Counter = field(default_factory=Counter)
    unmapped: dict[str, Counter] = field(default_factory=dict)
    clamped: int = 0
    placed_by_unit: int = 0
    without_deadline: int = 0
    approximate: list[tuple[float, float, int]] = field(default_factory=list)  # fallback points: lon, lat, rows
    categories_created: int = 0
    departments_created: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase (bench/import.py prints them)
    _mark: float = field(default_factory=time.monotonic)

    def lap(self, phase: str) -> None:
        """Book the time since the previous lap to `phase`."""
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._mark
        self._mark = now

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_dict(self) -> dict:
        return {"import_id": self.import_id, "file": self.file_name, "format": self.format, "read": self.read,
                "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
                "quarantined": sum(self.quarantined.values()),
                "quarantined_by_reason": {k: self.quarantined[k] for k in REASONS if self.quarantined[k]},
                "unmapped": {f: dict(c.most_common()) for f, c in self.unmapped.items() if c},
                "clamped_close_times": self.clamped, "placed_by_unit_only": self.placed_by_unit,
                "without_deadline": self.without_deadline,
                "approximate_locations": [{"lon": lon, "lat": lat, "rows": n} for lon, lat, n in self.approximate],
                "categories_created": self.categories_created, "departments_created": self.departments_created}

    def lines(self) -> list[str]:
        q = sum(self.quarantined.values())
        out = [f"{self.file_name}: read {self.read:,}, inserted {self.inserted:,}, updated {self.updated:,}, "
               f"unchanged {self.unchanged:,}, quarantined {q:,} (import {self.import_id})"]
        for reason, what in REASONS.items():
            if self.quarantined[reason]:
                out.append(f"  quarantined {reason}: {self.quarantined[reason]:,}  ({what})")
        for f, counts in self.unmapped.items():
            for value, n in counts.most_common():
                out.append(f"  unmapped {f} {value!r}: {n:,} rows (add it under [values.{f}] in a mapping file)")
        if self.clamped:
            out.append(f"  close time clamped to report time (clock skew <= {CLOCK_SKEW}): {self.clamped:,}")
        if self.placed_by_unit:
            out.append(f"  placed only at a named unit (no usable coordinates): {self.placed_by_unit:,}")
        for lon, lat, n in self.approximate:
            out.append(f"  approximate location (geocoding fallback) {lon},{lat}: {n:,} rows "
                       "(counted in KPIs, left out of the heat map)")
        if self.categories_created or self.departments_created:
            out.append(f"  created {self.categories_created} categories, {self.departments_created} departments")
        if self.loaded:
            share = self.without_deadline / max(self.inserted + self.updated + self.unchanged, 1)
            out.append(f"  without any deadline: {self.without_deadline:,} ({share:.1%} of loaded events)")
        return out


def import_events(conn: sa.Connection, path: str | Path, mapping: Mapping, tz: ZoneInfo, *,
                  rejects: str | Path | None = None, chunk_rows: int = CHUNK_ROWS, encoding: str = "utf-8-sig",
                  progress: Callable[[str], None] = lambda _: None, bulk_rows: int | None = None) -> Result:
    """Import one file into the store on conn (committed by the caller); see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise CockpitError(f"{path}: no such file")
    fmt = mapping.format or detect_format(path)
    # the file is read one chunk ahead in a thread (the parsers let go of the GIL)
    res = load_records(conn, lambda: prefetched(read_chunks(path, fmt, chunk_rows, encoding)), str(path), fmt,
                       mapping, tz,
                       progress=progress, bulk_rows=bulk_rows)
    if rejects:
        _write_rejects(conn.connection.driver_connection.cursor(), res.import_id, Path(rejects))
    return res


def load_records(conn: sa.Connection, chunks: Callable[[], Iterator[pd.DataFrame]], name: str, fmt: str,
                 mapping: Mapping, tz: ZoneInfo, *, progress: Callable[[str], None] = lambda _: None,
                 bulk_rows: int | None = None) -> Result:
    """Load text frames of records (index: the record number within `name`) as one `imports` row.

    From `bulk_rows` rows to load on (default BULK_ROWS) the new events go in with the store's
    triggers off and their work done once (see BULK_SQL).
    `chunks` is called once the store side is ready, so the reader may query the same connection
    (`cockpit quarantine retry` reads the rows it retries from the store this way).
    """
    bulk_rows = BULK_ROWS if bulk_rows is None else bulk_rows
    store = Store(conn)
    import_id = conn.execute(sa.text("INSERT INTO imports (file_name, format) VALUES (:f, :fmt) RETURNING id"),
                             {"f": name, "fmt": fmt}).scalar_one()
    res = Result(import_id, name, fmt)
    conn.execute(sa.text(
        "CREATE TEMP TABLE import_stage (row_no bigint, source text, external_id text, category_id integer, "
        "reported_at timestamptz, deadline_at timestamptz, closed_at timestamptz, updated_at timestamptz, "
        "status text, rating smallint, rated_at timestamptz, lon float8, lat float8, grid_id integer, "
        "department_id integer, description text, address text, reporter_name text, reporter_phone text, "
        "location_approximate boolean NOT NULL DEFAULT false) ON COMMIT DROP"))
    cur = conn.connection.driver_connection.cursor()
    behind = _CopyBehind(cur)
    res.lap("prepare")
    try:
        mapping = _stage_all(chunks, behind, mapping, tz, store, res, name, progress)
    finally:
        behind.close()
    res.lap("stage (COPY)")
    if res.read == 0:
        raise CockpitError(f"{name}: holds no rows")
    _flag_approximate(conn, mapping, res)
    # the bulk path's lock and its fixed costs pay off only for large files
    _finish(conn, cur, mapping, res, progress, bulk=res.read - sum(res.quarantined.values()) >= bulk_rows)
    res.lap("store (SQL)")
    conn.execute(sa.text(
        "UPDATE imports SET finished_at = now(), rows_read = :r, inserted = :i, updated = :u, unchanged = :n, "
        "quarantined = :q, summary = CAST(:s AS jsonb) WHERE id = :id"),
        {"r": res.read, "i": res.inserted, "u": res.updated, "n": res.unchanged,
         "q": sum(res.quarantined.values()), "s": json.dumps(res.as_dict(), ensure_ascii=False), "id": import_id})
    # gone now rather than at commit, so one transaction can hold several loads (quarantine retry)
    conn.execute(sa.text("DROP VIEW IF EXISTS import_new_events, import_new_stints"))
    conn.execute(sa.text("DROP TABLE IF EXISTS import_stage, import_prior, import_done"))
    return res


def _stage_all(chunks, cur, mapping: Mapping, tz: ZoneInfo, store: Store, res: Result, name: str,
               progress) -> Mapping:
    """Every chunk checked, parsed and sent to the staging tables; returns the mapping as the file has it.

    Chunks are sent with COPY from a thread (_CopyBehind) while the next is parsed: with the
    file's reader one chunk ahead (import_events), at most three chunks are in memory at a time.
    """
    started = time.monotonic()
    for chunk in chunks():
        res.lap("read")
        if res.read == 0:
            absent = {ours for ours, theirs in mapping.columns.items() if theirs not in chunk.columns}
            for ours in sorted(absent - mapping.optional):
                raise CockpitError(f"{name}: mapped column {mapping.columns[ours]!r} ({ours}) is not in the file "
                                   f"(its columns: {', '.join(map(str, chunk.columns[:30]))})")
            mapping = _without(mapping, absent)
        res.read += len(chunk)
        _stage_chunk(cur, chunk, mapping, tz, store, res)
        progress(f"read {res.read:,} rows ({res.read / max(time.monotonic() - started, 1e-9):,.0f} rows/s)")
    return mapping


def _without(m: Mapping, absent: set[str]) -> Mapping:
    from dataclasses import replace

    return replace(m, columns={k: v for k, v in m.columns.items() if k not in absent})


def _stage_chunk(cur, chunk: pd.DataFrame, m: Mapping, tz: ZoneInfo, store: Store, res: Result) -> None:
    n = len(chunk)
    empty = pd.Series("", index=chunk.index)

    def col(ours: str) -> pd.Series:
        # JSON records may lack a key throughout a chunk: that column is then empty there
        if ours in m.columns and m.columns[ours] in chunk.columns:
            return chunk[m.columns[ours]].astype(str).str.strip()
        return empty

    reason = pd.Series("", index=chunk.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        reason[mask & (reason == "")] = why

    if UNREADABLE in chunk.columns:
        flag(chunk[UNREADABLE] != "", "unreadable_row")
    ext = col("external_id")
    flag(ext == "", "missing_external_id")

    times = {}
    for f in TIME_FIELDS:
        times[f], bad = parse_times(col(f), m.time_formats, tz)
        flag(bad, "unparsable_time")
    flag(times["reported_at"].isna(), "unparsable_time")

    # values through the mapping; a value already ours passes as it is
    def mapped(ours: str, allowed) -> pd.Series:
        raw = col(ours)
        table = {**{v: v for v in allowed}, **m.values.get(ours, {})}
        out = raw.map(table)
        miss = (raw != "") & out.isna()
        if miss.any():
            res.unmapped.setdefault(ours, Counter()).update(raw[miss & (reason == "")].value_counts().to_dict())
            flag(miss, f"unmapped_{ours}")
        return out

    if "source" in m.columns:
        source = mapped("source", SOURCES)
        if m.source:
            source = source.fillna(m.source)
        flag(source.isna(), "unmapped_source")
    else:
        source = pd.Series(m.source, index=chunk.index)
    if "status" in m.columns:
        status = mapped("status", STATUSES)
    else:
        status = pd.Series(None, index=chunk.index, dtype=object)
    closed = times["closed_at"]
    # closed rows without their own close time take the last change (Open311's updated_datetime)
    closed = closed.where(closed.notna() | (status != "closed"), times["updated_at"])
    status = status.where(status.notna(), np.where(closed.notna(), "closed", "reported"))
    flag((status == "closed") & closed.isna(), "closed_without_time")
    closed = closed.where(status == "closed")  # a non-closed status wins over a stale close time

    early = closed < times["reported_at"]
    skew = early & (times["reported_at"] - closed <= pd.Timedelta(CLOCK_SKEW))
    flag(early & ~skew, "closed_before_reported")
    closed = closed.where(~skew, times["reported_at"])

    rating_text = col("rating")
    words = {k: str(v) for k, v in m.values.get("rating", {}).items()}
    rating = _num(rating_text.replace(words) if words else rating_text)
    bad_rating = (rating_text != "") & (rating.isna() | (rating % 1 != 0) | (rating < 1) | (rating > 5))
    flag(bad_rating, "bad_rating")

    cat_code, cat_name = col("category"), col("category_name")
    flag((cat_code == "") & (cat_name == ""), "missing_category")
    group = col("category_group")
    if m.category_groups:
        key = cat_code.where(cat_code != "", cat_name)
        group = group.where(group != "", key.map(m.category_groups).fillna(cat_name.map(m.category_groups)).fillna(""))

    res.lap("parse")
    # placement: coordinates first, then the named unit
    grid = pd.Series(-1, index=chunk.index, dtype=np.int64)
    lon, lat = _num(col("lon")), _num(col("lat"))
    has_xy = lon.notna() & lat.notna() & lon.between(-180, 180) & lat.between(-90, 90)
    if has_xy.any():
        grid[has_xy] = store.place(lon[has_xy].to_numpy(float), lat[has_xy].to_numpy(float))
    unit_code, unit_name = col("unit_code"), col("unit_name")
    named = (unit_code != "") | (unit_name != "")
    by_unit = pd.Series(np.nan, index=chunk.index)
    if named.any():  # most files place by coordinates: no lookups for them
        by_unit[named] = unit_code[named].map(store.unit_by_code).fillna(unit_name[named].map(store.unit_by_name))
    use_unit = (grid < 0) & by_unit.notna()
    grid[use_unit] = by_unit[use_unit].astype(np.int64)
    flag((grid < 0) & has_xy & ~named, "outside_units")
    flag((grid < 0) & named, "unknown_unit")
    flag((grid < 0) & ~has_xy, "no_location")

    res.lap("place")
    # the first good row of a key in the file wins; 64-bit hashes of the keys seen keep memory small
    good = reason == ""
    if good.any():
        h = pd.util.hash_pandas_object(pd.DataFrame({"s": source[good], "e": ext[good]}), index=False).to_numpy()
        dup = pd.Series(False, index=chunk.index)
        dup[good] = pd.Series(h).duplicated().to_numpy() | store.was_seen(h)
        flag(dup, "duplicate_in_file")
        if (~dup[good]).any():
            store.seen.append(np.sort(h[~dup[good].to_numpy()]))

    res.lap("dedupe")
    ok = reason == ""
    # reference data only for rows that load: a bad row creates nothing
    cat_id = pd.Series(np.nan, index=chunk.index)
    if ok.any():
        cat_id[ok], made = store.categories(cat_code[ok], cat_name[ok], group[ok])
        res.categories_created += made
    dep_id = pd.Series(np.nan, index=chunk.index)
    dep = col("department")
    if ok.any() and (dep[ok] != "").any():
        dep_id[ok & (dep != "")], made = store.departments(dep[ok & (dep != "")])
        res.departments_created += made

    res.clamped += int((skew & ok).sum())
    res.placed_by_unit += int((ok & ~grid.isin(store.leaf_set)).sum())

    res.lap("reference data")
    bad = ~ok
    if bad.any():
        res.quarantined.update(reason[bad].value_counts().to_dict())
        rows = chunk[bad]
        if UNREADABLE in rows.columns:  # an unreadable record keeps its text; the others their cells
            line = rows[UNREADABLE]
            rows = rows.drop(columns=[UNREADABLE])
            raw = pd.Series(rows.to_json(orient="records", lines=True, force_ascii=False).splitlines(),
                            index=rows.index)
            raw[line != ""] = line[line != ""].map(lambda t: json.dumps({"line": t}, ensure_ascii=False))
        else:
            raw = pd.Series(rows.to_json(orient="records", lines=True, force_ascii=False).splitlines(),
                            index=rows.index)
        q = pd.DataFrame({"import_id": res.import_id, "file_name": res.file_name, "row_no": rows.index,
                          "raw": raw, "reason": reason[bad]})
        _copy_arrow(cur, "quarantine", q)
    res.lap("quarantine")
    if ok.any():
        def iso(s):
            return s[ok]  # to_csv writes '2026-03-08 07:30:00+00:00', NaT as NULL

        stage = pd.DataFrame({
            "row_no": chunk.index[ok], "source": source[ok], "external_id": ext[ok],
            "category_id": cat_id[ok].astype("Int64"),
            "reported_at": iso(times["reported_at"]), "deadline_at": iso(times["deadline_at"]),
            "closed_at": iso(closed), "updated_at": iso(times["updated_at"]),
            "status": status[ok], "rating": rating[ok].astype("Int64"), "rated_at": iso(times["rated_at"]),
            "lon": lon[ok].where(has_xy[ok]), "lat": lat[ok].where(has_xy[ok]),
            "grid_id": grid[ok].astype("Int64"), "department_id": dep_id[ok].astype("Int64"),
            "description": col("description")[ok], "address": col("address")[ok],
            "reporter_name": col("reporter_name")[ok], "reporter_phone": col("reporter_phone")[ok],
        })
        _copy_arrow(cur, "import_stage", stage[list(STAGE_COLUMNS)])
    res.lap("stage (COPY)")


class _CopyBehind:
    """A cursor stand-in whose COPY statements run in a worker thread, one at a time: the server
    takes in one chunk while the next is parsed (two cores). The connection's own lock keeps
    any other statement (a new category) from interleaving with a COPY."""

    def __init__(self, cur):
        self.cur = cur
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-copy")
        self.pending = None

    @contextmanager
    def copy(self, statement: str):
        parts: list = []
        yield SimpleNamespace(write=parts.append)
        self.wait()
        self.pending = self.pool.submit(self._send, statement, parts)

    def _send(self, statement: str, parts: list) -> None:
        with self.cur.copy(statement) as cp:
            for part in parts:
                cp.write(part)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown()


def _copy_arrow(cur, table: str, df: pd.DataFrame) -> None:
    """COPY through Arrow's CSV writer: many times faster than pandas' for a million rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    cols = {}
    for name in df.columns:
        s = df[name]
        if s.dtype == object:  # text: '' is missing
            s = s.where(s != "", None)
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            # as UTC text with its offset: Arrow writes zoned timestamps ~20 times slower
            naive = pa.array(s.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us"), from_pandas=True)
            cols[name] = pc.binary_join_element_wise(pc.cast(naive, pa.string()), pa.scalar("+00"), "")
            continue
        cols[name] = pa.array(s, from_pandas=True)
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(cols), buf, pacsv.WriteOptions(include_header=False))
    with cur.copy(f"COPY {table} ({', '.join(df.columns)}) FROM STDIN WITH (FORMAT csv)") as cp:
        cp.write(buf.getbuffer())


# the file's deadline, else the category's time allowed, else the configured default
DEADLINE = """coalesce(s.deadline_at, s.reported_at + c.deadline_hours * interval '1 hour',
                        s.reported_at + CAST(:default_hours AS float8) * interval '1 hour')"""

# The new events' rows, in file order (both paths insert exactly these). ID_COLUMN/ID_VALUE: the
# bulk path numbers them itself (STAGED_NEW), the trigger path takes the store's sequence.
NEW_EVENTS = """
    INSERT INTO events (ID_COLUMN source, external_id, category_id, reported_at, location, grid_id, status,
                        department_id, deadline_at, closed_at, rating, rated_at, description, address,
                        reporter_name, reporter_phone, location_approximate)
    SELECT ID_VALUE s.source, s.external_id, s.category_id, s.reported_at,
           CASE WHEN s.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) END,
           s.grid_id, s.status, s.department_id, DEADLINE,
           s.closed_at, s.rating, s.rated_at, s.description, s.address, s.reporter_name, s.reporter_phone,
           s.location_approximate
    FROM import_stage s JOIN categories c ON c.id = s.category_id
    WHERE NOT EXISTS (SELECT 1 FROM import_prior p WHERE p.row_no = s.row_no)
    ORDER BY s.row_no"""

# New events: the file tells their status now, not the steps between: one transition from
# 'reported' to it, at the close time (closed) or the last change (else the report time).
# NEW is a relation of the inserted events with the file's updated_at.
NEW_TRANSITIONS = """
    INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at, unit_id, department_id,
                                   note, grid_id)
    SELECT d.id, d.reported_at, 'reported', d.status,
           CASE WHEN d.status = 'closed' THEN d.closed_at
                ELSE greatest(d.reported_at, coalesce(d.updated_at, d.reported_at)) END,
           d.grid_id, d.department_id, 'imported', d.grid_id
    FROM NEW d WHERE d.status <> 'reported'
    ORDER BY 4"""

# Known events first, the same on both paths: updated only where something changed (a re-run
# changes nothing), with the store's triggers on; then their transitions.
PREPARE_SQL = [
    "CREATE INDEX ON import_stage (source, external_id)",
    "ANALYZE import_stage",
    # what the store held before, for the transitions of changed events
    """
    CREATE TEMP TABLE import_prior ON COMMIT DROP AS
    SELECT e.id, e.status, e.closed_at, s.row_no FROM import_stage s
    JOIN events e ON e.source = s.source AND e.external_id = s.external_id
    """,
    """
    CREATE TEMP TABLE import_done ON COMMIT DROP AS
    WITH up AS (
        UPDATE events e SET status = s.status, closed_at = s.closed_at, rating = s.rating, rated_at = s.rated_at,
                            reported_at = s.reported_at, deadline_at = s.deadline,
                            department_id = coalesce(s.department_id, e.department_id),
                            location_approximate = e.location_approximate OR s.location_approximate
        FROM (SELECT s.*, p.id AS event_id, DEADLINE AS deadline
              FROM import_stage s JOIN import_prior p ON p.row_no = s.row_no
              JOIN categories c ON c.id = s.category_id) s
        WHERE e.id = s.event_id
          AND ((e.status, e.closed_at, e.rating, e.rated_at, e.reported_at, e.deadline_at)
               IS DISTINCT FROM (s.status, s.closed_at, s.rating, s.rated_at, s.reported_at, s.deadline)
               OR (s.department_id IS NOT NULL AND s.department_id IS DISTINCT FROM e.department_id)
               OR (s.location_approximate AND NOT e.location_approximate))
        RETURNING e.id, e.source, e.external_id, e.status, e.reported_at, e.closed_at, e.grid_id,
                  e.department_id, false AS inserted, s.updated_at)
    SELECT * FROM up
    """,
    # Changed events: one transition from the status held before, never dated before the last one
    """
    INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at, unit_id, department_id,
                                   note, grid_id)
    SELECT d.id, d.reported_at, p.status, d.status,
           greatest(CASE WHEN d.status = 'closed' THEN d.closed_at ELSE coalesce(d.updated_at, now()) END,
                    (SELECT max(t.at) FROM event_transitions t
                     WHERE t.event_id = d.id AND t.event_reported_at = d.reported_at), d.reported_at),
           d.grid_id, d.department_id, 'imported', d.grid_id
    FROM import_done d JOIN import_prior p ON p.id = d.id
    WHERE NOT d.inserted AND p.status <> d.status
    ORDER BY 4
    """,
]

# Few new events: a plain INSERT (several times faster than ON CONFLICT on a million rows), the
# store's triggers keeping rollups, heat and the live feed. A writer inserting one of these keys
# meanwhile makes it fail: the import is then rerun.
TRIGGER_SQL = [
    f"""
    WITH ins AS ({NEW_EVENTS.replace("ID_COLUMN", "").replace("ID_VALUE", "")}
        RETURNING id, source, external_id, status, reported_at, closed_at, grid_id, department_id)
    INSERT INTO import_done
    SELECT ins.*, true, s.updated_at FROM ins
    JOIN import_stage s ON s.source = ins.source AND s.external_id = ins.external_id
    """,
    NEW_TRANSITIONS.replace("FROM NEW d WHERE", "FROM import_done d WHERE d.inserted AND"),
]

# Many new events (BULK_ROWS): the user triggers of events and event_transitions are switched
# off for the inserts, inside this transaction, and their work is done once, set-based, on the
# inserted rows with the triggers' own SQL (cockpit.metrics renders both). Switching them off
# takes a SHARE ROW EXCLUSIVE lock on both tables until commit: readers go on and see the store
# as it was before the import until it commits; other writers wait for the commit. Under that
# lock nobody else adds events, so the new ones are exactly those above the highest id held
# before ({first}). When the new events outnumber those held (a first import), the tables' keys,
# indexes and foreign keys are dropped for the inserts and built again before commit, as the
# demo loader does (bulkcopy.bulk_load_mode): building an index once is several times cheaper
# than maintaining it row by row. That takes an ACCESS EXCLUSIVE lock: readers of events then
# wait for the commit too.
BULK_ROWS = 20_000
REBUILD_FROM = 1.0  # new events per event held from which keys and indexes are rebuilt
# The bulk path gives each new event the id {first} + its row number in the file (gaps where rows
# were quarantined or known), so its transition and its key come straight from the staged row: a
# join of a million inserted events back to the staged rows by their key cost more than the rest.
STAGED_NEW = """(SELECT {first} + s.row_no AS id, s.* FROM import_stage s
          WHERE NOT EXISTS (SELECT 1 FROM import_prior p WHERE p.row_no = s.row_no))"""
BULK_INSERT_SQL = [
    NEW_EVENTS.replace("ID_COLUMN", "id,").replace("ID_VALUE", "{first} + s.row_no,"),
    # the identity goes on after them (under the import's lock nobody else draws from it)
    "SELECT setval(pg_get_serial_sequence('events', 'id'), {first} + (SELECT max(row_no) FROM import_stage))",
    NEW_TRANSITIONS.replace("FROM NEW d", f"FROM {STAGED_NEW} d"),
]
# the new events' keys (the key trigger is off with the others): a key held fails it as it would
BULK_KEYS_SQL = f"INSERT INTO event_keys (source, external_id, event_id) SELECT source, external_id, id FROM {STAGED_NEW} d"
# The columns the store's plans filter and join on. The point and the free texts are left to
# autovacuum, which analyses the filled partitions whole shortly after the commit (the planner
# estimates a spatial filter per partition): sampling the points alone took 1.4 of 3.2 s a million.
ANALYZED_EVENT_COLUMNS = ("id, source, external_id, category_id, reported_at, grid_id, status, handling_level, "
                          "department_id, deadline_at, closed_at, rating, supervised, location_approximate")
BULK_DELTA_SQL = [
    f"ANALYZE events ({ANALYZED_EVENT_COLUMNS})",
    "ANALYZE event_transitions",
    "CREATE TEMP VIEW import_new_events AS SELECT * FROM events WHERE id > {first}",
    *heat.added_kept_sql("import_new_events"),
    f"SELECT {changes.NOTIFY}",
]
# the rollups: the new rows' deltas, or (keys rebuilt: the store held fewer events than came
# in) the rollups rebuilt whole, which adds up per lowest rolled-up unit once and is cheaper then
ROLLUP_DELTA_SQL = [
    *rollup.added_events_statements("import_new_events"),
    # a new event's only transitions are this import's: none before them
    "CREATE TEMP VIEW import_new_stints AS SELECT *, NULL::timestamptz AS prev_at "
    "FROM event_transitions WHERE event_id > {first}",
    rollup.added_stints_sql("import_new_stints"),
]
ROLLUP_REBUILD_SQL = ["SET LOCAL work_mem = '256MB'", "SELECT cockpit_rollup_rebuild()"]
TABLES = ["events", "event_transitions"]


def _flag_approximate(conn: sa.Connection, m: Mapping, res: Result) -> None:
    """Flag the staged rows at geocoding fallback points (module docstring), set-based; note them in res.

    Counted in the store over the staged rows: exact for the whole file whatever its size, and
    only rows that load (a quarantined row is no evidence of a fallback).
    """
    dense = conn.execute(sa.text("""
        WITH p AS (SELECT lon, lat, count(*) AS n FROM import_stage WHERE lon IS NOT NULL GROUP BY 1, 2)
        SELECT lon, lat, n, sum(n) OVER () AS placed FROM p ORDER BY n DESC, lon, lat LIMIT :k"""),
        # a point holding a share s is among the 1/s densest; one more gives the densest real place
        {"k": int(1 / max(m.approximate_min_share, 1e-4)) + 2}).all()
    placed = int(dense[0].placed) if dense else 0
    heavy = [r for r in dense if r.n >= m.approximate_min_rows and r.n >= m.approximate_min_share * placed]
    real = next((r.n for r in dense if r not in heavy), 0)
    found = {(r.lon, r.lat): int(r.n) for r in heavy if r.n >= m.approximate_ratio * real}
    for lon, lat in m.approximate_points:
        n = conn.execute(sa.text(
            "SELECT count(*) FROM import_stage WHERE abs(lon - :x) <= :tol AND abs(lat - :y) <= :tol"),
            {"x": lon, "y": lat, "tol": POINT_TOLERANCE}).scalar_one()
        if n and (lon, lat) not in found:
            found[(lon, lat)] = int(n)
    for (lon, lat), n in found.items():
        conn.execute(sa.text(
            "UPDATE import_stage SET location_approximate = true WHERE abs(lon - :x) <= :tol AND abs(lat - :y) <= :tol"),
            {"x": lon, "y": lat, "tol": POINT_TOLERANCE})
    res.approximate = sorted(((lon, lat, n) for (lon, lat), n in found.items()), key=lambda p: -p[2])


def _finish(conn: sa.Connection, cur, m: Mapping, res: Result, progress, bulk: bool) -> None:
    params = {"import_id": res.import_id, "file_name": res.file_name, "default_hours": m.default_deadline_hours}

    def run(stmt: str):
        started = time.monotonic()
        stmt = stmt.replace("DEADLINE", DEADLINE).replace("{first}", str(params.get("first")))
        try:
            done = conn.execute(sa.text(stmt), {k: v for k, v in params.items() if f":{k}" in stmt})
        except sa.exc.IntegrityError as exc:
            if "uq_events_source_external_id" not in str(exc):
                raise
            raise CockpitError("another writer stored some of this file's events during the import; "
                               "nothing was imported: run it again")
        progress(f"{time.monotonic() - started:6.1f} s  {' '.join(stmt.split())[:60]}")
        return done

    # only the tables' owner may switch their triggers off (the API's writer role may not), or
    # create partitions: the writer's rows of a month not created yet go to the DEFAULT partition
    owner = conn.execute(sa.text(
        "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = 'events'::regclass")).scalar()
    bulk = bulk and owner
    for stmt in PREPARE_SQL:
        if bulk and stmt.startswith("CREATE INDEX"):  # the bulk path joins by hash: no use for it
            continue
        run(stmt)
    if owner:  # the months the file needs, before any row goes in (none piles into DEFAULT)
        made = partitions.ensure_range(conn, *conn.execute(sa.text(
            "SELECT min(reported_at), max(reported_at) FROM import_stage")).one())
        if made:
            progress(f"months created: {', '.join(m.strftime('%Y-%m') for m in made)}")
    if not bulk:
        res.inserted = run(TRIGGER_SQL[0]).rowcount
        run(TRIGGER_SQL[1])
    else:
        for table in TABLES:
            run(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        # held: the partitions' estimates (a partitioned table's own reltuples stays -1)
        # first: above every id held and every id the identity gave out (a rolled-back insert's too)
        params["first"], held = conn.execute(sa.text(
            "SELECT greatest(coalesce(max(id), 0), nextval(pg_get_serial_sequence('events', 'id'))), "
            "(SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass) FROM events")).one()
        new = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM import_stage) - (SELECT count(*) FROM import_prior)")).scalar_one()
        rebuild = new > held * REBUILD_FROM
        def insert() -> None:
            res.inserted = run(BULK_INSERT_SQL[0]).rowcount
            for stmt in [*BULK_INSERT_SQL[1:], BULK_KEYS_SQL]:
                run(stmt)

        if rebuild:
            # event_keys too: its key built once is cheaper than a million entries added to it
            with bulk_load_mode(cur, [*TABLES, "event_keys"]) as restore:
                insert()
                restore.run_here(cur, progress)
        else:
            insert()
        for stmt in BULK_DELTA_SQL + (ROLLUP_REBUILD_SQL if rebuild else ROLLUP_DELTA_SQL):
            run(stmt)
        for table in TABLES:
            run(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    staged, updated = conn.execute(sa.text(
        "SELECT (SELECT count(*) FROM import_stage), count(*) FILTER (WHERE NOT inserted) FROM import_done")).one()
    res.updated, res.unchanged = updated, staged - res.inserted - updated
    res.without_deadline = conn.execute(sa.text(
        "SELECT count(*) FROM import_stage s JOIN events e ON e.source = s.source AND e.external_id = s.external_id "
        "WHERE e.deadline_at IS NULL")).scalar_one()


def _write_rejects(cur, import_id: int, path: Path) -> None:
    """The quarantined rows as CSV: row, reason, then the file's own columns."""
    cur.execute("SELECT row_no, reason, raw::text FROM quarantine WHERE import_id = %s ORDER BY row_no",
                (import_id,))
    write_rejects_csv(cur.fetchall(), path, "--rejects")


def write_rejects_csv(rows, path: Path, flag: str, lead: tuple[str, ...] = ()) -> None:
    """(*lead, row_no, reason, raw jsonb text) tuples as CSV: lead columns, row, reason, the file's columns."""
    names = [*lead, "row", "reason"]
    records = [{**dict(zip(names, r[:-1])), **json.loads(r[-1])} for r in rows]
    df = pd.DataFrame.from_records(records, columns=None if records else names)
    try:
        df.to_csv(path, index=False)
    except OSError as exc:
        raise CockpitError(f"{flag} {path}: cannot write ({exc.strerror})")
