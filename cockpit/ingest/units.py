"""`cockpit import-units`: a city's own unit boundaries (GeoJSON, GeoPackage, Shapefile) into the store.

Decisions (README "Load your own city" says the same for users):

- Input: one file per level (`--level district FILE`), or files with a level field whose values
  are our level names or are mapped onto them. Fields (code, name, parent code, population,
  level) come from flags, a TOML/YAML mapping file, or the defaults `code` and `name` (with
  `parent_code` and `population` used when present).
- Coordinates: any declared CRS is reprojected to EPSG:4326. A file without a CRS is read as
  lon/lat only when every coordinate could be one; otherwise it is refused with a hint for
  `--source-crs`, because a guess would put the city somewhere else without a word.
  `--coords gcj02|bd09` undoes the Chinese web-map offsets (cockpit.ingest.coords).
- Parents: by the parent field (a code in the files, or already in the store), else spatially:
  the unit of the nearest higher imported level covering the largest share of the child. A
  share of >= 90 % is clean (slivers tolerated); a lower best share still takes that parent but
  is reported as ambiguous with the candidates; a child overlapping no possible parent is refused.
- One root: a `city` level in the files (exactly one row), or a root made from the union of the
  top level (`--city-code`/`--city-name`; defaults: the store's own root when re-importing the
  same city, else the top-level codes' common prefix padded with zeros, named 全市).
- One city per store: files sharing no code with the store's units, or with another root code,
  are a different city and refused unless `--replace`, which removes the old units and every
  event and transition first (counted). The same city is updated in place by code; units of the
  store missing from the files are reported and kept (deleting them would need their events gone).
- All of it is one transaction; the store's triggers keep the closure, the rollups and the heat
  frame right. Events whose leaf unit changed shape or stopped being a leaf, and events outside
  every leaf unit, are placed again by the same rule as the events trigger (docs/schema.md §4).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import sqlalchemy as sa
from pyproj import CRS
from pyproj.exceptions import CRSError

from cockpit.errors import CockpitError
from cockpit.ingest.coords import xy_to_wgs84
from cockpit.store.schema import LEVELS

CLEAN_SHARE = 0.9   # a child this much inside one parent is clean: the rest are slivers
DEFAULT_CITY_NAME = "全市"
KEYS = ("code", "name", "parent", "population", "level")
LISTED = 12         # codes named in one message before "and N more"


def _listing(items) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


# -- field mapping ---------------------------------------------------------------------------

@dataclass
class Mapping:
    """Which property holds what: flags win over a per-level table of the mapping file, which
    wins over its top level; `code`/`name` default to themselves, parent and population to
    `parent_code`/`population` when a file has them."""
    flags: dict = field(default_factory=dict)
    top: dict = field(default_factory=dict)
    per_level: dict = field(default_factory=dict)
    level_values: dict = field(default_factory=dict)

    def field_for(self, level: str | None, key: str) -> tuple[str | None, bool]:
        """(property name, whether the user named it) for `key` at `level`."""
        for source in (self.flags, self.per_level.get(level, {}), self.top):
            if source.get(key):
                return source[key], True
        return {"code": "code", "name": "name", "parent": "parent_code", "population": "population"}.get(key), False

    def level_of(self, value) -> str | None:
        text = _text(value)
        if text is None:
            return None
        return self.level_values.get(text) or (text if text in LEVELS else None)


def load_mapping(path: str | None, flags: dict, level_values: list[str]) -> Mapping:
    m = Mapping(flags={k: v for k, v in flags.items() if v})
    if path:
        p = Path(path)
        try:
            raw = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise CockpitError(f"--mapping {path}: {exc.strerror}") from None
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml
                data = yaml.safe_load(raw) or {}
            elif p.suffix.lower() == ".toml":
                data = tomllib.loads(raw)
            else:
                raise CockpitError(f"--mapping {path}: name it .toml, .yaml or .yml")
        except (tomllib.TOMLDecodeError, ValueError) as exc:
            raise CockpitError(f"--mapping {path}: not valid {p.suffix[1:].upper()}: {str(exc).splitlines()[0]}") from None
        except Exception as exc:  # yaml's own errors
            if type(exc).__module__.startswith("yaml"):
                raise CockpitError(f"--mapping {path}: not valid YAML: {str(exc).splitlines()[0]}") from None
            raise
        if not isinstance(data, dict):
            raise CockpitError(f"--mapping {path}: expected keys like code = \"DM\", name = \"MC\"")
        for key, value in data.items():
            if key in KEYS:
                m.top[key] = str(value)
            elif key in LEVELS and isinstance(value, dict):
                bad = set(value) - set(KEYS)
                if bad:
                    raise CockpitError(f"--mapping {path}: unknown key(s) {_listing(sorted(bad))} under [{key}]; "
                                       f"known: {', '.join(KEYS)}")
                m.per_level[key] = {k: str(v) for k, v in value.items()}
            elif key == "levels" and isinstance(value, dict):
                m.level_values.update({str(k): str(v) for k, v in value.items()})
            else:
                raise CockpitError(f"--mapping {path}: unknown key {key!r}; known: {', '.join(KEYS)}, "
                                   f"a table per level ({', '.join(LEVELS)}) and [levels]")
    for item in level_values:
        value, sep, level = item.partition("=")
        if not sep or not value:
            raise CockpitError(f"--level-value {item!r}: write VALUE=LEVEL, e.g. 街道=street")
        m.level_values[value] = level
    bad = {v: lv for v, lv in m.level_values.items() if lv not in LEVELS}
    if bad:
        raise CockpitError(f"level values mapped to unknown levels: {_listing(f'{v}={lv}' for v, lv in bad.items())}; "
                           f"levels are {', '.join(LEVELS)}")
    return m


# -- reading files ---------------------------------------------------------------------------

def _text(value) -> str | None:
    """A code or name as text: numbers read from a file (440303, 440303.0) lose their float tail."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _open(spec: str) -> tuple[gpd.GeoDataFrame, str]:
    path, layer = spec, None
    if not os.path.exists(spec) and "#" in spec:
        path, layer = spec.rsplit("#", 1)
    if not os.path.exists(path):
        raise CockpitError(f"{spec}: no such file")
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise CockpitError(f"{spec}: not a GeoJSON, GeoPackage or (zipped) Shapefile: {str(exc).splitlines()[0]}") from None
    if layer is None and len(layers) > 1:
        raise CockpitError(f"{spec} holds {len(layers)} layers ({_listing(layers)}): name one as {path}#LAYER")
    if layer is not None and layer not in layers:
        raise CockpitError(f"{spec}: no layer {layer!r}; it has {_listing(layers)}")
    try:
        return gpd.read_file(path, layer=layer, engine="pyogrio"), spec
    except Exception as exc:
        raise CockpitError(f"{spec}: cannot be read: {str(exc).splitlines()[0]}") from None


def _crs_hint(bounds) -> str:
    """The likely fix for a file without a CRS, from the size of its coordinates."""
    minx, miny, maxx, maxy = bounds
    if 1e7 <= minx and maxx < 1e8 and 0 <= miny < 1e7:
        zone = int(minx // 1e6)
        if 25 <= zone <= 45:
            return f"--source-crs EPSG:{4513 + zone - 25} (CGCS2000 3-degree Gauss-Kruger zone {zone}, as its x prefix says)"
        if 13 <= zone <= 23:
            return f"--source-crs EPSG:{4491 + zone - 13} (CGCS2000 6-degree Gauss-Kruger zone {zone}, as its x prefix says)"
    if 1e5 <= minx and maxx <= 1e6 and 0 <= miny < 1e7:
        return ("--source-crs EPSG:… of the projection it was drawn in: metres like these are usually a UTM zone "
                "(EPSG:326NN) or a CGCS2000 Gauss-Kruger zone (EPSG:4534-4554)")
    return "--source-crs EPSG:… of the projection it was drawn in"


def _to_wgs84(gdf: gpd.GeoDataFrame, spec: str, source_crs: CRS | None, coords: str) -> tuple[gpd.GeoDataFrame, str]:
    declared = gdf.crs
    bounds = gdf.total_bounds
    lonlat = len(gdf) == 0 or (-180 <= bounds[0] and bounds[2] <= 180 and -90 <= bounds[1] and bounds[3] <= 90)
    # GeoJSON is lon/lat by definition, so a GeoJSON in metres comes back "EPSG:4326": its
    # coordinates say otherwise, and then it counts as having no CRS at all.
    if declared is None or (declared.is_geographic and not lonlat):
        if source_crs is not None:
            gdf = gdf.set_crs(source_crs, allow_override=True)
            note = f"no usable CRS, read as {source_crs.to_string()}"
        elif lonlat:
            gdf = gdf.set_crs(4326)
            note = "no CRS, coordinates read as lon/lat"
        else:
            said = "has no CRS" if declared is None else f"says {declared.to_string()}"
            raise CockpitError(
                f"{spec} {said} but its coordinates (x {bounds[0]:.0f}..{bounds[2]:.0f}, "
                f"y {bounds[1]:.0f}..{bounds[3]:.0f}) are not lon/lat: pass {_crs_hint(bounds)}")
    else:
        if source_crs is not None and not declared.equals(source_crs):
            raise CockpitError(f"{spec} declares its CRS as {declared.to_string()} but --source-crs says "
                               f"{source_crs.to_string()}: --source-crs is for files without one; drop it or "
                               "fix the file's .prj")
        note = declared.to_string()
    if coords != "wgs84" and not gdf.crs.is_geographic:
        raise CockpitError(f"{spec} is in a projected CRS ({gdf.crs.to_string()}): --coords {coords} applies to "
                           "lon/lat taken from a web map only")
    gdf = gdf.to_crs(4326)
    if coords != "wgs84":
        gdf = gdf.set_geometry(shapely.transform(gdf.geometry.values, xy_to_wgs84(coords)), crs=4326)
        note += f", {coords.upper()} offsets removed"
    return gdf, note


def _column(gdf: gpd.GeoDataFrame, spec: str, mapping: Mapping, level: str | None, key: str) -> pd.Series | None:
    name, named = mapping.field_for(level, key)
    if name is None:
        return None
    if name in gdf.columns:
        return gdf[name]
    if named or key in ("code", "name"):
        have = [c for c in gdf.columns if c != gdf.geometry.name]
        raise CockpitError(f"{spec}: no field {name!r} for the unit {key} (--{key}-field or the mapping file); "
                           f"the file has: {', '.join(have) or '(no fields)'}")
    return None


def _polygons(geoms: np.ndarray, codes: list[str], spec: str) -> tuple[np.ndarray, list[str]]:
    """Every geometry as a 2-D MultiPolygon; invalid ones repaired (their codes returned)."""
    missing = [c for c, g in zip(codes, geoms) if g is None or shapely.is_empty(g)]
    if missing:
        raise CockpitError(f"{spec}: units without a boundary: {_listing(missing)}")
    geoms = shapely.force_2d(geoms)
    kinds = shapely.get_type_id(geoms)
    wrong = [c for c, k in zip(codes, kinds) if k not in (3, 6)]
    if wrong:
        raise CockpitError(f"{spec}: units whose boundary is not a polygon: {_listing(wrong)}")
    invalid = ~shapely.is_valid(geoms)
    repaired = [c for c, bad in zip(codes, invalid) if bad]
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if invalid[i]:
            parts = [p for p in shapely.get_parts(shapely.make_valid(g)) if shapely.get_type_id(p) in (3, 6)]
            polys = [q for p in parts for q in shapely.get_parts(p)]
            if not polys:
                raise CockpitError(f"{spec}: the boundary of {codes[i]} has no area left once repaired")
            g = shapely.MultiPolygon(polys)
        elif kinds[i] == 3:
            g = shapely.MultiPolygon([g])
        out[i] = g
    return out, repaired


@dataclass
class LevelReport:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: list = field(default_factory=list)
    spatial: int = 0
    ambiguous: list = field(default_factory=list)   # "code (in A 62 %, B 38 %)"


def read_units(sources: list[tuple[str | None, str]], mapping: Mapping, *, source_crs: str | None = None,
               coords: str = "wgs84") -> tuple[pd.DataFrame, list[str], dict[str, LevelReport]]:
    """Read (level or None, file) pairs into one frame of units; level None needs a level field."""
    crs = None
    if source_crs:
        try:
            crs = CRS.from_user_input(source_crs)
        except CRSError:
            raise CockpitError(f"--source-crs {source_crs!r} is not a CRS pyproj knows (e.g. EPSG:32650)") from None
    frames, notes, reports = [], [], {}
    for level, spec in sources:
        gdf, spec = _open(spec)
        gdf, note = _to_wgs84(gdf, spec, crs, coords)
        if level is None:
            raw = _column(gdf, spec, mapping, None, "level")
            if raw is None:
                raise CockpitError(f"{spec}: which level is each unit? Give it as --level LEVEL {spec}, or name "
                                   "the level field (--level-field)")
            file_levels = [mapping.level_of(v) for v in raw]
            unknown = sorted({str(v) for v, lv in zip(raw, file_levels) if lv is None})
            if unknown:
                raise CockpitError(f"{spec}: level values {_listing(unknown)} are not levels ({', '.join(LEVELS)}): "
                                   "map them with --level-value VALUE=LEVEL or [levels] in the mapping file")
        else:
            file_levels = [level] * len(gdf)
        gdf = gdf.assign(_level=file_levels)
        notes.append(f"{spec}: {len(gdf):,} units ({note})")
        for lv, part in gdf.groupby("_level", sort=False):
            codes = [_text(v) for v in _column(part, spec, mapping, lv, "code")]
            blank = [i + 1 for i, c in enumerate(codes) if c is None]
            if blank:
                raise CockpitError(f"{spec}: {len(blank)} {lv} row(s) without a code (rows {_listing(blank)})")
            names = [_text(v) for v in _column(part, spec, mapping, lv, "name")]
            nameless = [c for c, n in zip(codes, names) if n is None]
            if nameless:
                raise CockpitError(f"{spec}: units without a name: {_listing(nameless)}")
            parent_col = _column(part, spec, mapping, lv, "parent")
            parents = [None] * len(part) if parent_col is None else [_text(v) for v in parent_col]
            pop_col = _column(part, spec, mapping, lv, "population")
            population = [None] * len(part) if pop_col is None else [_population(v, c, spec) for v, c in zip(pop_col, codes)]
            geoms, repaired = _polygons(part.geometry.values, codes, spec)
            report = reports.setdefault(lv, LevelReport())
            report.read += len(part)
            report.repaired += repaired
            frames.append(pd.DataFrame({"code": codes, "name": names, "level": lv, "parent": parents,
                                        "population": population, "geom": geoms, "file": spec}))
    if not frames:
        raise CockpitError("no files given: cockpit import-units --level district districts.geojson …")
    units = pd.concat(frames, ignore_index=True)
    dup = units["code"][units["code"].duplicated()].unique().tolist()
    if dup:
        raise CockpitError(f"duplicate unit codes in the files: {_listing(dup)}")
    return units, notes, reports


def _population(value, code: str, spec: str) -> int | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or str(value).strip() == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or not number.is_integer() or number > 2**31 - 1:
        raise CockpitError(f"{spec}: population of {code} is {value!r}, not a whole number of residents")
    return int(number)


# -- the tree --------------------------------------------------------------------------------

def _spatial_parents(children: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[list]]:
    """Per child: index of the parent covering most of it (-1: none), that share, and all
    (parent index, share) candidates, largest first."""
    best = np.full(len(children), -1)
    share = np.zeros(len(children))
    candidates: list[list] = [[] for _ in children]
    if len(children) == 0 or len(parents) == 0:
        return best, share, candidates
    tree = shapely.STRtree(parents)
    ci, pj = tree.query(children, predicate="intersects")
    overlap = shapely.area(shapely.intersection(children[ci], parents[pj])) / np.maximum(shapely.area(children[ci]), 1e-300)
    order = np.lexsort((-overlap, ci))
    for i, j, s in zip(ci[order], pj[order], overlap[order]):
        if s > 0:
            candidates[i].append((j, s))
    for i, cands in enumerate(candidates):
        if cands:
            best[i], share[i] = cands[0]
    return best, share, candidates


def _default_root_code(codes: list[str]) -> str:
    prefix = os.path.commonprefix(codes).rstrip("-_. ")
    if prefix and all(c.isdigit() for c in codes) and len({len(c) for c in codes}) == 1:
        padded = prefix.ljust(len(codes[0]), "0")
        if padded not in codes:
            return padded
    return prefix if prefix and prefix not in codes else "city"


def plan_city(units: pd.DataFrame, reports: dict[str, LevelReport], *, store_codes: dict[str, str | None],
              store_root: tuple[str, str] | None, city_code: str | None, city_name: str | None,
              store_levels: dict[str, str] | None = None) -> tuple[pd.DataFrame, str, bool]:
    """Give every unit its parent code and add the root when the files have none.

    `store_codes`: code -> parent code of the units already in the store (parents may refer to
    them); `store_levels`: code -> level of those units.
    """
    units = units.copy()
    present = [lv for lv in LEVELS if lv in set(units["level"])]
    cities = units[units["level"] == "city"]
    if len(cities) > 1:
        raise CockpitError(f"the files hold {len(cities)} city units ({_listing(cities['code'])}): a store holds one city")
    made = cities.empty
    if not made:
        if city_code or city_name:
            raise CockpitError("--city-code/--city-name name a root made from the top level, but the files have "
                               f"their own city unit ({cities['code'].iloc[0]}): drop them")
        root = cities["code"].iloc[0]
        units.loc[units["level"] == "city", "parent"] = None
    below = [lv for lv in present if lv != "city"]
    known = set(units["code"]) | set(store_codes)
    dangling = units[units["parent"].notna() & ~units["parent"].isin(known)]
    if not dangling.empty:
        pairs = [f"{c} -> {p}" for c, p in zip(dangling["code"], dangling["parent"])]
        raise CockpitError(f"{dangling['file'].iloc[0]}: parent codes found in no file and not in the store: "
                           f"{_listing(pairs)}")
    # Spatially, each level below the top looks in the nearest higher level present in the files.
    for upper, lv in zip(below, below[1:]):
        rows = units.index[(units["level"] == lv) & units["parent"].isna()]
        if rows.empty:
            continue
        cand = units[units["level"] == upper]
        best, share, candidates = _spatial_parents(units.loc[rows, "geom"].to_numpy(), cand["geom"].to_numpy())
        lost = [units.at[r, "code"] for r, b in zip(rows, best) if b < 0]
        if lost:
            raise CockpitError(f"{lv} units overlapping no {upper}: {_listing(lost)} — give a parent field "
                               "(--parent-field) or check their coordinates")
        codes = cand["code"].to_numpy()
        units.loc[rows, "parent"] = codes[best]
        report = reports[lv]
        report.spatial += len(rows)
        for r, s, cands in zip(rows, share, candidates):
            if s < CLEAN_SHARE:
                listed = ", ".join(f"{codes[j]} {x:.0%}" for j, x in cands[:4])
                report.ambiguous.append(f"{units.at[r, 'code']} (in {listed})")
    tops = units[units["parent"].isna()]
    if made and tops.empty and store_root:
        # every unit hangs under one already in the store: the city grows, its root stays
        _refuse_bad_tree(units, store_codes, store_levels or {})
        return units, store_root[0], False
    if made:
        if tops.empty:
            raise CockpitError("every unit has a parent: the files have no top level to make the city from")
        if city_code:
            root = city_code
        elif store_root and set(units["code"]) & set(store_codes):
            root = store_root[0]   # re-importing the same city: keep the root it was given
        else:
            root = _default_root_code(sorted(tops["code"]))
        if root in set(units["code"]):
            raise CockpitError(f"the city's code {root!r} is already a unit's code in the files: choose --city-code")
        name = city_name or (store_root[1] if store_root and root == store_root[0] else DEFAULT_CITY_NAME)
        outline = shapely.union_all(tops["geom"].to_numpy())
        outline = shapely.MultiPolygon([p for p in shapely.get_parts(outline) if shapely.get_type_id(p) == 3])
        pops = tops["population"]
        population = int(pops.sum()) if pops.notna().all() and len(pops) else None
        units.loc[units["parent"].isna() & (units["level"] != "city"), "parent"] = root
        units = pd.concat([pd.DataFrame({"code": [root], "name": [name], "level": ["city"], "parent": [None],
                                         "population": [population], "geom": [outline], "file": ["(made)"]}),
                           units], ignore_index=True)
        reports.setdefault("city", LevelReport())
    else:
        units.loc[units["parent"].isna() & (units["level"] != "city"), "parent"] = root
    _refuse_bad_tree(units, store_codes, store_levels or {})
    return units, root, made


def _refuse_bad_tree(units: pd.DataFrame, store_codes: dict[str, str | None], store_levels: dict[str, str]) -> None:
    """Parents above their units (a street's parent is no grid: the drill-down and the rollups
    walk the tree downwards by level), and no loops."""
    level = {**store_levels, **dict(zip(units["code"], units["level"]))}
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    upside = [f"{c} ({lv}) -> {p} ({level[p]})" for c, lv, p in zip(units["code"], units["level"], units["parent"])
              if isinstance(p, str) and p in level and rank[level[p]] >= rank[lv]]
    if upside:
        raise CockpitError(f"a unit's parent must be of a higher level ({' > '.join(LEVELS)}); these are not: "
                           f"{_listing(upside)} (check the parent field, or the level given to each file)")
    _refuse_cycles(units, store_codes)


def _refuse_cycles(units: pd.DataFrame, store_codes: dict[str, str | None]) -> None:
    parent = {**store_codes, **dict(zip(units["code"], units["parent"]))}
    settled: set[str] = set()
    for code in units["code"]:
        seen = []
        node = code
        while node is not None and node not in settled:
            if node in seen:
                raise CockpitError(f"the parent codes form a loop: {' -> '.join(seen[seen.index(node):] + [node])}")
            seen.append(node)
            node = parent.get(node)
        settled.update(seen)


# -- into the store --------------------------------------------------------------------------

def _store_units(conn: sa.Connection) -> pd.DataFrame:
    rows = conn.execute(sa.text(
        "SELECT u.id, u.code, u.name, u.level, p.code AS parent, ST_AsBinary(u.geom) AS wkb, u.population "
        "FROM units u LEFT JOIN units p ON p.id = u.parent_id")).all()
    frame = pd.DataFrame(rows, columns=["id", "code", "name", "level", "parent", "wkb", "population"])
    frame["geom"] = shapely.from_wkb([None if w is None else bytes(w) for w in frame["wkb"]]) if len(frame) else []
    return frame.drop(columns="wkb").set_index("code")


def _same_geometry(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Equal shapes whatever the vertex order or ring start (a file re-saved by another tool)."""
    same = np.zeros(len(old), dtype=bool)
    has = np.array([o is not None for o in old], dtype=bool)
    if has.any():
        same[has] = shapely.equals_exact(shapely.normalize(old[has]), shapely.normalize(new[has]), tolerance=1e-9)
    return same


def import_units(conn: sa.Connection, sources: list[tuple[str | None, str]], mapping: Mapping, *,
                 source_crs: str | None = None, coords: str = "wgs84", city_code: str | None = None,
                 city_name: str | None = None, replace: bool = False) -> list[str]:
    """Load the files into the store (in the caller's transaction); returns the summary lines."""
    units, notes, reports = read_units(sources, mapping, source_crs=source_crs, coords=coords)
    conn.execute(sa.text("LOCK TABLE units IN SHARE ROW EXCLUSIVE MODE"))  # one importer at a time
    store = _store_units(conn)
    roots = store[store["parent"].isna()]
    store_root = (roots.index[0], roots["name"].iloc[0]) if len(roots) == 1 else None
    plan, root, made = plan_city(units, reports, store_codes=dict(zip(store.index, store["parent"])),
                                 store_levels=dict(zip(store.index, store["level"])),
                                 store_root=store_root, city_code=city_code, city_name=city_name)
    lines = list(notes)
    if len(store):
        shared = (set(plan["code"]) | set(plan["parent"].dropna())) & set(store.index)
        other = not shared or root not in set(roots.index)
        if other:
            described = ", ".join(f"{c} {n}" for c, n in zip(roots.index[:3], roots["name"][:3]))
            n_events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
            if not replace:
                raise CockpitError(f"the store holds another city ({described}: {len(store):,} units, "
                                   f"{n_events:,} events) and the files share "
                                   f"{'no unit code' if not shared else 'codes but not the root ' + repr(root)} "
                                   "with it: pass --replace to remove it and its events, or use an empty store")
            n_transitions = conn.execute(sa.text("SELECT count(*) FROM event_transitions")).scalar()
            # TRUNCATE empties the rollups and heat through their triggers; units go in one statement.
            conn.execute(sa.text("TRUNCATE event_transitions, events"))
            conn.execute(sa.text("DELETE FROM units"))
            lines.append(f"replaced the city {described}: removed {len(store):,} units, {n_events:,} events, "
                         f"{n_transitions:,} transitions")
            store = store.iloc[0:0]
    elif replace:
        lines.append("the store held no units: nothing replaced")

    plan = plan.set_index("code", drop=False)
    old = store.reindex(plan.index)
    is_new = old["id"].isna().to_numpy()
    same_geom = np.zeros(len(plan), dtype=bool)
    same_geom[~is_new] = _same_geometry(old["geom"].to_numpy()[~is_new], plan["geom"].to_numpy()[~is_new])

    def same(col):
        a, b = old[col].to_numpy(dtype=object), plan[col].to_numpy(dtype=object)
        return np.array([(x is None or x != x) and (y is None or y != y) or x == y for x, y in zip(a, b)])
    moved = ~is_new & ~same("parent")
    changed = ~is_new & ~(same("name") & same("level") & same("population") & same_geom & ~moved)

    ids = old["id"].to_numpy(dtype=object).copy()
    n_new = int(is_new.sum())
    if n_new:
        fresh = conn.execute(sa.text("SELECT nextval(pg_get_serial_sequence('units', 'id')) "
                                     "FROM generate_series(1, :n)"), {"n": n_new}).scalars().all()
        ids[is_new] = fresh
    id_of = {**dict(zip(store.index, store["id"])), **dict(zip(plan.index, ids))}
    if n_new or changed.any():
        staged = plan[is_new | changed]
        conn.execute(sa.text("CREATE TEMP TABLE units_in (id int, code text, name text, level text, parent_id int, "
                             "geom geometry(MultiPolygon, 4326), population int, fresh bool) ON COMMIT DROP"))
        cur = conn.connection.driver_connection.cursor()
        with cur.copy("COPY units_in FROM STDIN") as cp:
            for (code, r), fresh in zip(staged.iterrows(), is_new[is_new | changed]):
                pop = r["population"]
                cp.write_row((int(id_of[code]), code, r["name"], r["level"],
                              None if r["parent"] is None else int(id_of[r["parent"]]),
                              shapely.to_wkb(r["geom"], hex=True, include_srid=False),
                              None if pop is None or pop != pop else int(pop), bool(fresh)))
        if n_new:
            conn.execute(sa.text("INSERT INTO units (id, code, name, level, parent_id, geom, population) "
                                 "SELECT id, code, name, level, parent_id, ST_SetSRID(geom, 4326), population "
                                 "FROM units_in WHERE fresh"))
        if changed.any():
            # parent_id only in the SET when a unit moved: an update of it rebuilds the rollups
            parent_set = ", parent_id = i.parent_id" if moved.any() else ""
            conn.execute(sa.text(f"UPDATE units u SET name = i.name, level = i.level, geom = ST_SetSRID(i.geom, 4326), "
                                 f"population = i.population{parent_set} FROM units_in i "
                                 "WHERE u.id = i.id AND NOT i.fresh"))
        geom_changed = [int(id_of[c]) for c in plan.index[~is_new & ~same_geom]]
        placed, outside = _place_events(conn, geom_changed)
    else:
        placed = outside = None

    for lv in LEVELS:
        if lv not in reports:
            continue
        mask = (plan["level"] == lv).to_numpy()
        r = reports[lv]
        r.inserted, r.updated = int((is_new & mask).sum()), int((changed & mask).sum())
        r.unchanged = int(mask.sum()) - r.inserted - r.updated
        read = "made from the top level" if lv == "city" and made else f"read {r.read:,}"
        text = (f"{lv}: {read}, inserted {r.inserted:,}, updated {r.updated:,}, unchanged {r.unchanged:,}, "
                f"repaired {len(r.repaired)}{' (' + _listing(r.repaired) + ')' if r.repaired else ''}, "
                f"parents found spatially {r.spatial:,}, ambiguous {len(r.ambiguous)}")
        lines.append(text)
        lines.extend(f"  ambiguous {lv} {a}" for a in r.ambiguous)
    if made:
        lines.append(f"city root: {root} {plan.at[root, 'name']} (the union of the top level)")
    gone = sorted(set(store.index) - set(plan.index))
    if gone:
        lines.append(f"in the store but not in the files (kept): {len(gone):,} units: {_listing(gone)}")
    if placed is not None:
        lines.append(f"events placed again: {placed:,}; events outside every leaf unit: {outside:,}")
    return lines


def _place_events(conn: sa.Connection, geom_changed: list[int]) -> tuple[int, int]:
    """Place again the events the new boundaries concern, by the events trigger's own rule."""
    placed = conn.execute(sa.text("""
        WITH todo AS (
            SELECT e.id, e.grid_id, (SELECT u.id FROM units u
                                     WHERE ST_Covers(u.geom, e.location)
                                       AND NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id)
                                     ORDER BY u.id LIMIT 1) AS leaf
            FROM events e LEFT JOIN units g ON g.id = e.grid_id
            WHERE e.location IS NOT NULL
              AND (e.grid_id IS NULL
                   OR e.grid_id IN (SELECT parent_id FROM units WHERE parent_id IS NOT NULL)
                   OR (e.grid_id = ANY(:changed) AND NOT ST_Covers(g.geom, e.location)))
        )
        UPDATE events e SET grid_id = t.leaf FROM todo t
        WHERE e.id = t.id AND t.leaf IS DISTINCT FROM t.grid_id"""), {"changed": geom_changed}).rowcount
    outside = conn.execute(sa.text("SELECT count(*) FROM events WHERE grid_id IS NULL AND location IS NOT NULL")).scalar()
    return placed, outside
