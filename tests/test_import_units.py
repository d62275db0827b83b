"""`cockpit import-units`: a city's own boundaries in any CRS and format, one city per store,
re-imports that change nothing, corrections in place with the rollups kept right."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from cockpit import store
from cockpit.config import settings
from cockpit.ingest import coords
from cockpit.metrics import rollup
from conftest import run_cli


# -- a small city, anywhere -------------------------------------------------------------------

def strips(x0, y0, w, h, n, vertical=True):
    """n boxes splitting a w x h rectangle (degrees) side by side."""
    if vertical:
        return [shapely.box(x0 + i * w / n, y0, x0 + (i + 1) * w / n, y0 + h) for i in range(n)]
    return [shapely.box(x0, y0 + i * h / n, x0 + w, y0 + (i + 1) * h / n) for i in range(n)]


def three_level(lon0: float, lat0: float):
    """3 districts (vertical strips) of 3 streets each (horizontal strips), lon/lat."""
    districts, streets = [], []
    for i, d in enumerate(strips(lon0, lat0, 0.3, 0.2, 3), start=1):
        x0, y0, x1, y1 = d.bounds
        districts.append({"DM": f"8801{i:02d}", "MC": f"第{i}区", "RK": 1000 * i, "geometry": d})
        for j, s in enumerate(strips(x0, y0, x1 - x0, y1 - y0, 3, vertical=False), start=1):
            streets.append({"DM": f"8801{i:02d}-{j:03d}", "MC": f"第{i}区{j}街道", "SJ": f"8801{i:02d}",
                            "RK": 100 * j, "geometry": s})
    return (gpd.GeoDataFrame(districts, crs=4326), gpd.GeoDataFrame(streets, crs=4326))


def stored(url: str) -> dict[str, dict]:
    with store.engine(url).connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT u.code, u.name, u.level, p.code AS parent, ST_AsBinary(u.geom) AS wkb, u.population, "
            "GeometryType(u.geom) AS kind FROM units u LEFT JOIN units p ON p.id = u.parent_id")).mappings().all()
    return {r["code"]: {**r, "geom": shapely.from_wkb(bytes(r["wkb"]))} for r in rows}


def ok(res) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout


def refused(res) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert line.startswith("cockpit: ") and "\n" not in line, line
    return line


def level_line(out: str, level: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"{level}: "))


def assert_same_shapes(units: dict, frame: gpd.GeoDataFrame, tol: float = 1e-7):
    for code, geom in zip(frame["DM"], frame.geometry):
        assert units[code]["kind"] == "MULTIPOLYGON"
        assert shapely.hausdorff_distance(units[code]["geom"], geom) < tol, code


# -- coordinates -------------------------------------------------------------------------------

def test_gcj02_and_bd09_against_published_pairs_and_round_trip():
    # The widely published Beijing sample (wandergis/coordtransform and eviltransform READMEs).
    lon, lat = coords.wgs84_to_gcj02(116.404, 39.915)
    assert abs(lon - 116.41024449916938) < 1e-9 and abs(lat - 39.91640428150164) < 1e-9
    lon, lat = coords.gcj02_to_bd09(116.404, 39.915)
    assert abs(lon - 116.41036949371029) < 1e-9 and abs(lat - 39.92133699351021) < 1e-9
    # Back from the published outputs to the known point, well within 1 m (1e-5 degrees).
    lon, lat = coords.gcj02_to_wgs84(116.41024449916938, 39.91640428150164)
    assert abs(lon - 116.404) < 1e-5 and abs(lat - 39.915) < 1e-5
    lon, lat = coords.bd09_to_wgs84(116.41662724378733, 39.922699552216216)
    assert abs(lon - 116.404) < 1e-5 and abs(lat - 39.915) < 1e-5
    # Round trips over all of China within 1e-6 degrees.
    rng = np.random.default_rng(1)
    wlon, wlat = rng.uniform(75, 134, 2000), rng.uniform(18, 53, 2000)
    back = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(wlon, wlat))
    assert np.abs(back[0] - wlon).max() < 1e-6 and np.abs(back[1] - wlat).max() < 1e-6
    bd = coords.gcj02_to_bd09(*coords.wgs84_to_gcj02(wlon, wlat))
    back = coords.bd09_to_wgs84(*bd)
    assert np.abs(back[0] - wlon).max() < 1e-6 and np.abs(back[1] - wlat).max() < 1e-6
    # GCJ-02 leaves places outside China alone.
    assert coords.gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)


# -- formats and coordinate systems ------------------------------------------------------------

def test_three_levels_from_projected_and_cgcs2000_files_with_spatial_parents(empty_url, tmp_path):
    districts, streets = three_level(114.0, 22.5)
    d_file, s_file = tmp_path / "districts.geojson", tmp_path / "streets.gpkg"
    districts.to_crs(32650).to_file(d_file, driver="GeoJSON")               # UTM 50N, metres
    streets.drop(columns="SJ").set_crs(4490, allow_override=True).to_file(s_file, driver="GPKG")  # CGCS2000
    args = ("import-units", "--level", "district", str(d_file), "--level", "street", str(s_file),
            "--code-field", "DM", "--name-field", "MC", "--population-field", "RK")
    out = ok(run_cli(*args, url=empty_url))
    assert "EPSG:32650" in out and "EPSG:4490" in out
    assert "district: read 3, inserted 3, updated 0, unchanged 0" in out
    assert "street: read 9, inserted 9, updated 0, unchanged 0, repaired 0, parents found spatially 9, ambiguous 0" in out
    units = stored(empty_url)
    assert len(units) == 13
    root = units["880100"]  # the districts' common prefix, padded: the city made from their union
    assert root["level"] == "city" and root["parent"] is None and root["name"] == "全市"
    assert root["population"] == 6000
    assert len(root["geom"].geoms) == 1
    assert shapely.hausdorff_distance(root["geom"], shapely.box(114.0, 22.5, 114.3, 22.7)) < 1e-7
    assert_same_shapes(units, districts)
    assert_same_shapes(units, streets)
    for code, parent in zip(streets["DM"], streets["SJ"]):
        assert units[code]["parent"] == parent and units[code]["level"] == "street"
    assert {units[c]["parent"] for c in districts["DM"]} == {"880100"}
    with store.engine(empty_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM unit_closure")).scalar() == 13 + 12 + 9
    # The same files again change nothing.
    again = ok(run_cli(*args, url=empty_url))
    for level in ("city", "district", "street"):
        assert ", inserted 0, updated 0," in level_line(again, level), again
    assert "placed again" not in again


def test_us_feet_zipped_shapefile_with_a_level_field(empty_url, tmp_path):
    districts, streets = three_level(-122.5, 37.6)   # near San Francisco, for California's state plane
    both = gpd.GeoDataFrame(
        [{"CODE": r.DM, "NAME": r.MC, "PARENT": None, "KIND": "区", "geometry": r.geometry} for r in districts.itertuples()]
        + [{"CODE": r.DM, "NAME": r.MC, "PARENT": r.SJ, "KIND": "街道", "geometry": r.geometry} for r in streets.itertuples()],
        crs=4326).to_crs(2227)   # NAD83 / California zone 3, US survey feet
    shp = tmp_path / "shp"
    shp.mkdir()
    both.to_file(shp / "units.shp")
    zipped = tmp_path / "units.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for f in shp.iterdir():
            z.write(f, f.name)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('code = "CODE"\nname = "NAME"\nparent = "PARENT"\nlevel = "KIND"\n'
                       '[levels]\n"区" = "district"\n"街道" = "street"\n', encoding="utf-8")
    out = ok(run_cli("import-units", str(zipped), "--mapping", str(mapping), "--city-code", "SF", "--city-name", "Bay",
                     url=empty_url))
    assert "EPSG:2227" in out and "parents found spatially 0" in level_line(out, "street")
    units = stored(empty_url)
    assert units["SF"]["name"] == "Bay" and len(units) == 13
    assert_same_shapes(units, districts)
    assert_same_shapes(units, streets)
    assert units["880102-003"]["parent"] == "880102" and units["880102"]["parent"] == "SF"


def test_a_file_in_metres_without_crs_is_refused_with_the_fix(empty_url, tmp_path):
    districts, _ = three_level(114.0, 22.5)
    metres = districts.to_crs(32650)
    no_prj = tmp_path / "districts.shp"
    metres.to_file(no_prj)
    no_prj.with_suffix(".prj").unlink()
    line = refused(run_cli("import-units", "--level", "district", str(no_prj), "--code-field", "DM",
                           "--name-field", "MC", url=empty_url))
    assert "districts.shp has no CRS" in line and "--source-crs EPSG:" in line
    # GeoJSON is lon/lat by definition: metres in one are refused the same way, not misplaced.
    gj = tmp_path / "districts.geojson"
    gj.write_text(metres.set_crs(None, allow_override=True).to_json(), encoding="utf-8")
    assert "--source-crs" in refused(run_cli("import-units", "--level", "district", str(gj), "--code-field", "DM",
                                             "--name-field", "MC", url=empty_url))
    assert stored(empty_url) == {}
    ok(run_cli("import-units", "--level", "district", str(no_prj), "--code-field", "DM", "--name-field", "MC",
               "--source-crs", "EPSG:32650", url=empty_url))
    assert_same_shapes(stored(empty_url), districts)


def test_gcj02_boundaries_are_moved_back_to_wgs84(empty_url, tmp_path):
    districts, _ = three_level(116.3, 39.8)
    shifted = districts.copy()
    shifted["geometry"] = shapely.transform(
        shapely.segmentize(districts.geometry.values, 0.01),
        lambda xy: np.column_stack(coords.wgs84_to_gcj02(xy[:, 0], xy[:, 1])))
    f = tmp_path / "amap.geojson"
    shifted.to_file(f, driver="GeoJSON")
    ok(run_cli("import-units", "--level", "district", str(f), "--code-field", "DM", "--name-field", "MC",
               "--coords", "gcj02", url=empty_url))
    units = stored(empty_url)
    for code, geom in zip(districts["DM"], districts.geometry):
        assert shapely.hausdorff_distance(units[code]["geom"], geom) < 1e-6
        # without --coords they would be ~500 m off
        assert shapely.hausdorff_distance(shifted.set_index("DM").geometry[code], geom) > 1e-3


def test_bad_input_gets_one_line_naming_the_file_and_the_fix(empty_url, tmp_path):
    districts, streets = three_level(114.0, 22.5)
    f = tmp_path / "d.geojson"
    districts.to_file(f, driver="GeoJSON")
    line = refused(run_cli("import-units", "--level", "district", str(f), "--code-field", "XZQDM",
                           url=empty_url))
    assert "d.geojson" in line and "'XZQDM'" in line and "DM, MC, RK" in line
    dup = tmp_path / "dup.geojson"
    gpd.GeoDataFrame(list(districts.to_dict("records")) * 2, crs=4326).to_file(dup, driver="GeoJSON")
    line = refused(run_cli("import-units", "--level", "district", str(dup), "--code-field", "DM",
                           "--name-field", "MC", url=empty_url))
    assert "duplicate unit codes" in line and "880101, 880102, 880103" in line
    assert "levels are" in refused(run_cli("import-units", "--level", "county", str(f), url=empty_url))
    assert stored(empty_url) == {}


def test_invalid_rings_are_repaired_and_reported(empty_url, tmp_path):
    districts, _ = three_level(114.0, 22.5)
    x0, y0, x1, y1 = districts.geometry[1].bounds
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])   # self-intersecting
    districts.loc[1, "geometry"] = bowtie
    f = tmp_path / "d.gpkg"
    districts.to_file(f, driver="GPKG")
    out = ok(run_cli("import-units", "--level", "district", str(f), "--code-field", "DM", "--name-field", "MC",
                     url=empty_url))
    assert "repaired 1 (880102)" in level_line(out, "district")
    units = stored(empty_url)
    geom = units["880102"]["geom"]
    assert units["880102"]["kind"] == "MULTIPOLYGON" and geom.is_valid and len(geom.geoms) == 2
    assert abs(geom.area - (x1 - x0) * (y1 - y0) / 2) < 1e-12


# -- one city per store, corrections in place --------------------------------------------------

def two_level(tmp_path: Path, *, corrected: bool = False) -> tuple[Path, Path]:
    """Districts W and E (0.2 x 0.2 degrees each), four grids each; no streets, no communities.
    Corrected: grid W-1 hangs under E, W-2 gives its northern half to W-3, W is renamed."""
    lon0, lat0 = 120.0, 30.0
    districts = [{"code": "W", "name": "西区" if not corrected else "西城区", "geometry": shapely.box(lon0, lat0, lon0 + 0.2, lat0 + 0.2)},
                 {"code": "E", "name": "东区", "geometry": shapely.box(lon0 + 0.2, lat0, lon0 + 0.4, lat0 + 0.2)}]
    grids = []
    for d in districts:
        x0, y0, _, _ = d["geometry"].bounds
        for k, (i, j) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
            box = shapely.box(x0 + 0.1 * i, y0 + 0.1 * j, x0 + 0.1 * (i + 1), y0 + 0.1 * (j + 1))
            grids.append({"code": f"{d['code']}-{k}", "name": f"{d['code']}网格{k}", "parent_code": d["code"],
                          "population": 500, "geometry": box})
    if corrected:
        g = {x["code"]: x for x in grids}
        g["W-1"]["parent_code"] = "E"
        g["W-1"]["population"] = 650
        # W-0 (west, south) and W-2 (west, north): the border moves south by 0.05
        g["W-0"]["geometry"] = shapely.box(lon0, lat0, lon0 + 0.1, lat0 + 0.05)
        g["W-2"]["geometry"] = shapely.box(lon0, lat0 + 0.05, lon0 + 0.1, lat0 + 0.2)
    d_file, g_file = tmp_path / ("d2.geojson" if corrected else "d.geojson"), tmp_path / ("g2.gpkg" if corrected else "g.gpkg")
    gpd.GeoDataFrame(districts, crs=4326).to_file(d_file, driver="GeoJSON")
    gpd.GeoDataFrame(grids, crs=4326).to_file(g_file, driver="GPKG")
    return d_file, g_file


EVENTS_SQL = """
INSERT INTO categories (code, name, deadline_hours) VALUES ('X1', '测试', 24);
-- per grid: one event in its south-west quarter, one in its north-east quarter, over the last days
INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at, closed_at, status, rating)
SELECT 'grid_app', u.code || '-' || q, (SELECT id FROM categories WHERE code = 'X1'),
       now() - (q || ' days')::interval - interval '3 hours',
       ST_SetSRID(ST_MakePoint(ST_XMin(u.geom) + 0.025 + 0.05 * q, ST_YMin(u.geom) + 0.025 + 0.05 * q), 4326),
       now() - (q || ' days')::interval + interval '21 hours',
       CASE WHEN q = 0 THEN now() - interval '1 hour' END,
       CASE WHEN q = 0 THEN 'closed' ELSE 'reported' END,
       CASE WHEN q = 0 THEN 5 END
FROM units u CROSS JOIN generate_series(0, 1) q WHERE u.level = 'grid';
INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at)
SELECT id, reported_at, 'reported', 'closed', closed_at FROM events WHERE closed_at IS NOT NULL;
"""


def kpi(code: str, url: str) -> dict:
    return json.loads(ok(run_cli("kpi", "--unit", code, "--json", url=url)))


def assert_rollups_match_rebuild(url: str) -> None:
    snap = lambda conn: ({tuple(r) for r in conn.execute(sa.text("SELECT * FROM kpi_rollup WHERE volume <> 0"))},
                         {tuple(r) for r in conn.execute(sa.text("SELECT * FROM stage_rollup WHERE n <> 0"))})
    with store.engine(url).begin() as conn:
        kept = snap(conn)
        rollup.rebuild(conn, ZoneInfo(settings().timezone.key))
        rebuilt = snap(conn)
        conn.rollback()
    assert kept == rebuilt
    assert kept[0]


def test_two_level_city_holds_events_in_its_grids_and_corrections_update_in_place(empty_url, tmp_path):
    d_file, g_file = two_level(tmp_path)
    args = ("--level", "district", str(d_file), "--level", "grid", str(g_file), "--city-code", "C")
    out = ok(run_cli("import-units", *args, url=empty_url))
    assert "grid: read 8, inserted 8" in out and "parents found spatially 0" in level_line(out, "grid")
    eng = store.engine(empty_url)
    with eng.begin() as conn:
        conn.execute(sa.text(EVENTS_SQL))
    with eng.connect() as conn:
        placed = dict(conn.execute(sa.text(
            "SELECT u.level, count(*) FROM events e JOIN units u ON u.id = e.grid_id GROUP BY 1")).all())
        assert placed == {"grid": 16}
        assert conn.execute(sa.text("SELECT count(*) FROM rollup_units ru JOIN units u ON u.id = ru.unit_id "
                                    "WHERE u.code = 'C'")).scalar() == 1
    city = kpi("C", empty_url)
    assert city["volume"] == 16 and city["closed"] == 8 and city["satisfied"] == 8
    assert kpi("W", empty_url)["volume"] == 8 and kpi("E", empty_url)["volume"] == 8
    assert_rollups_match_rebuild(empty_url)

    # The corrected files: W-1 moves to E, the W-0/W-2 border moves, W is renamed.
    d2, g2 = two_level(tmp_path, corrected=True)
    out = ok(run_cli("import-units", "--level", "district", str(d2), "--level", "grid", str(g2), url=empty_url))
    assert "district: read 2, inserted 0, updated 1, unchanged 1" in out
    assert "grid: read 8, inserted 0, updated 3, unchanged 5" in out
    # W-2's south-west event (at y0 + 0.025 of the old W-2 = 30.125) stays; W-0's north-east one
    # (30.075) is now in W-2.
    assert "events placed again: 1; events outside every leaf unit: 0" in out
    units = stored(empty_url)
    assert units["W"]["name"] == "西城区" and units["W-1"]["parent"] == "E" and units["W-1"]["population"] == 650
    assert units["C"]["parent"] is None  # the root it was given is kept without --city-code
    with eng.connect() as conn:
        per_grid = dict(conn.execute(sa.text(
            "SELECT u.code, count(*) FROM events e JOIN units u ON u.id = e.grid_id GROUP BY 1")).all())
    assert per_grid["W-0"] == 1 and per_grid["W-2"] == 3
    assert kpi("C", empty_url)["volume"] == 16
    assert kpi("W", empty_url)["volume"] == 6 and kpi("E", empty_url)["volume"] == 10
    assert kpi("W-2", empty_url)["volume"] == 3
    assert_rollups_match_rebuild(empty_url)
    again = ok(run_cli("import-units", "--level", "district", str(d2), "--level", "grid", str(g2), url=empty_url))
    assert "district: read 2, inserted 0, updated 0, unchanged 2" in again
    assert "grid: read 8, inserted 0, updated 0, unchanged 8" in again

    # Another city is refused; with --replace the old one goes with its events, and says so.
    districts, streets = three_level(114.0, 22.5)
    other = tmp_path / "other.gpkg"
    districts.to_file(other, driver="GPKG")
    line = refused(run_cli("import-units", "--level", "district", str(other), "--code-field", "DM",
                           "--name-field", "MC", url=empty_url))
    assert "another city" in line and "16 events" in line and "--replace" in line
    assert len(stored(empty_url)) == 11
    out = ok(run_cli("import-units", "--level", "district", str(other), "--code-field", "DM", "--name-field", "MC",
                     "--replace", url=empty_url))
    assert "removed 11 units, 16 events, 8 transitions" in out
    assert set(stored(empty_url)) == {"880100", "880101", "880102", "880103"}
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM kpi_rollup WHERE volume <> 0")).scalar() == 0


def test_the_demo_city_is_not_mixed_with_another(demo_url, tmp_path):
    districts, _ = three_level(114.0, 22.5)
    f = tmp_path / "d.geojson"
    districts.to_file(f, driver="GeoJSON")
    before = len(stored(demo_url))
    line = refused(run_cli("import-units", "--level", "district", str(f), "--code-field", "DM",
                           "--name-field", "MC", url=demo_url))
    assert "another city" in line and "--replace" in line
    assert len(stored(demo_url)) == before


def test_slivers_are_tolerated_and_straddling_units_reported_with_yaml_mapping(empty_url, tmp_path):
    districts, streets = three_level(114.0, 22.5)
    # 880101-001 pokes 3 % of its width into district 880102: a sliver, still cleanly inside 880101.
    x0, y0, x1, y1 = streets.geometry[0].bounds
    streets.loc[0, "geometry"] = shapely.box(x0, y0, x1 + 0.03 * (x1 - x0), y1)
    # 880102-002 sits half in 880102, half in 880103: ambiguous, reported with both.
    x0, y0, x1, y1 = streets.geometry[4].bounds
    streets.loc[4, "geometry"] = shapely.box(x0 + (x1 - x0) / 2, y0, x1 + (x1 - x0) / 2 + 1e-9, y1)
    d_file, s_file = tmp_path / "d.geojson", tmp_path / "s.geojson"
    districts.rename(columns={"DM": "QDM", "MC": "QMC"}).to_file(d_file, driver="GeoJSON")
    streets.drop(columns="SJ").rename(columns={"DM": "JDDM"}).to_file(s_file, driver="GeoJSON")
    mapping = tmp_path / "fields.yaml"
    mapping.write_text("name: MC\npopulation: RK\ndistrict:\n  code: QDM\n  name: QMC\nstreet:\n  code: JDDM\n",
                       encoding="utf-8")
    out = ok(run_cli("import-units", "--level", "district", str(d_file), "--level", "street", str(s_file),
                     "--mapping", str(mapping), url=empty_url))
    assert "parents found spatially 9, ambiguous 1" in level_line(out, "street")
    assert "ambiguous street 880102-002 (in 880103 50%, 880102 50%)" in out
    units = stored(empty_url)
    assert units["880101-001"]["parent"] == "880101"
    assert units["880102-002"]["parent"] in ("880102", "880103")
    assert units["880101"]["population"] == 1000 and units["880102-003"]["population"] == 300


def test_a_city_level_in_the_files_and_parents_already_in_the_store(empty_url, tmp_path):
    districts, streets = three_level(114.0, 22.5)
    city = gpd.GeoDataFrame([{"DM": "88", "MC": "测试市", "geometry": shapely.box(114.0, 22.5, 114.3, 22.7)}], crs=4326)
    c_file, d_file = tmp_path / "c.geojson", tmp_path / "d.geojson"
    city.to_file(c_file, driver="GeoJSON")
    districts.to_file(d_file, driver="GeoJSON")
    fields = ("--code-field", "DM", "--name-field", "MC")
    assert "their own city unit" in refused(run_cli("import-units", "--level", "city", str(c_file), "--level",
                                                    "district", str(d_file), *fields, "--city-code", "X", url=empty_url))
    ok(run_cli("import-units", "--level", "city", str(c_file), "--level", "district", str(d_file), *fields,
               url=empty_url))
    units = stored(empty_url)
    assert units["88"]["level"] == "city" and units["88"]["name"] == "测试市" and units["880102"]["parent"] == "88"
    # Streets alone, their parents named by code and already in the store: the same city grows a level.
    bad = streets.copy()
    bad.loc[2, "SJ"] = "NOPE"
    s_bad = tmp_path / "s_bad.geojson"
    bad.to_file(s_bad, driver="GeoJSON")
    line = refused(run_cli("import-units", "--level", "street", str(s_bad), *fields, "--parent-field", "SJ",
                           url=empty_url))
    assert "880101-003 -> NOPE" in line
    s_file = tmp_path / "s.geojson"
    streets.to_file(s_file, driver="GeoJSON")
    out = ok(run_cli("import-units", "--level", "street", str(s_file), *fields, "--parent-field", "SJ",
                     url=empty_url))
    assert "street: read 9, inserted 9" in out
    assert "in the store but not in the files (kept): 4 units: 88, 880101, 880102, 880103" in out
    units = stored(empty_url)
    assert len(units) == 13 and units["880103-002"]["parent"] == "880103"


def test_a_parent_below_or_beside_its_unit_is_refused_with_the_list(empty_url, tmp_path):
    districts, streets = three_level(114.0, 22.5)
    fields = ("--code-field", "DM", "--name-field", "MC", "--parent-field", "SJ")
    d_file, s_file = tmp_path / "d.geojson", tmp_path / "s.geojson"
    districts.assign(SJ=None).to_file(d_file, driver="GeoJSON")
    # two streets name another street as their parent: a level beside them, not above
    beside = streets.copy()
    beside.loc[[1, 4], "SJ"] = "880101-001"
    beside.to_file(s_file, driver="GeoJSON")
    line = refused(run_cli("import-units", "--level", "district", str(d_file), "--level", "street", str(s_file),
                           *fields, url=empty_url))
    assert "higher level" in line and "880101-002 (street) -> 880101-001 (street)" in line
    assert "880102-002 (street) -> 880101-001 (street)" in line
    assert stored(empty_url) == {}
    # the districts alone, then a district file naming a street (already stored) as a district's parent
    streets.to_file(s_file, driver="GeoJSON")
    ok(run_cli("import-units", "--level", "district", str(d_file), "--level", "street", str(s_file), *fields,
               url=empty_url))
    below = districts.assign(SJ=["880102-003", None, None])
    below.to_file(d_file, driver="GeoJSON")
    line = refused(run_cli("import-units", "--level", "district", str(d_file), *fields, url=empty_url))
    assert "880101 (district) -> 880102-003 (street)" in line
    assert stored(empty_url)["880101"]["parent"] != "880102-003"
