"""The optional local base map (COCKPIT_TILES): real tile folders and real .pmtiles archives made
here, read by cockpit.maps.tiles, served by the Flask route, refused at `cockpit serve` when unusable."""
from __future__ import annotations

import gzip
import json
import random
import struct
import zlib

import pytest
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import write

from cockpit.errors import CockpitError
from cockpit.config import settings
from cockpit.maps.tiles import configured_tiles as tiles_at, open_tiles
from cockpit.ports import free_port
from conftest import run_cli


def configured_tiles():
    """The source the environment names now (what a new process's context opens)."""
    return tiles_at(settings().tiles)

NO_DATABASE = "postgresql://nobody@127.0.0.1:1/nothing"  # proves a code path never touches the store


def png(rgb: tuple[int, int, int], size: int = 4) -> bytes:
    """A real size x size RGB PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


TILES = {(0, 0, 0): png((200, 10, 10)), (1, 0, 1): png((10, 200, 10)), (2, 3, 1): png((10, 10, 200))}


def make_folder(root, tiles=TILES, ext="png"):
    for (z, x, y), data in tiles.items():
        d = root / str(z) / str(x)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{y}.{ext}").write_bytes(data)
    return root


def make_pmtiles(path, tiles=TILES, tile_type=TileType.PNG, compression=Compression.NONE, metadata=None):
    with write(str(path)) as w:
        for (z, x, y), data in sorted(tiles.items(), key=lambda kv: zxy_to_tileid(*kv[0])):
            w.write_tile(zxy_to_tileid(z, x, y), gzip.compress(data) if compression == Compression.GZIP else data)
        zooms = [z for z, _, _ in tiles]
        w.finalize({"tile_type": tile_type, "tile_compression": compression,
                    "min_zoom": min(zooms), "max_zoom": max(zooms)}, metadata or {})
    return path


def one_line_error(fn, *args) -> str:
    with pytest.raises(CockpitError) as info:
        fn(*args)
    message = str(info.value)
    assert message and "\n" not in message, message
    return message


# ---- folders ----------------------------------------------------------------------------------

def test_folder_serves_the_exact_bytes(tmp_path):
    src = open_tiles(str(make_folder(tmp_path / "xyz")))
    assert src.kind == "folder" and (src.min_zoom, src.max_zoom) == (0, 2)
    for (z, x, y), data in TILES.items():
        assert src.tile(z, x, y) == (data, "image/png")
    assert src.tile(1, 1, 1) is None  # inside the range, not in the folder
    assert src.tile(2, 0, 0) is None
    assert "zoom 0-2" in src.describe() and "png" in src.describe()


def test_folder_detects_jpeg_and_webp_and_its_zoom_range(tmp_path):
    jpeg = b"\xff\xd8\xff\xe0" + b"fake-jpeg-body"
    src = open_tiles(str(make_folder(tmp_path / "j", {(12, 3000, 1700): jpeg, (15, 24000, 13600): jpeg}, "jpg")))
    assert (src.min_zoom, src.max_zoom) == (12, 15)
    assert src.tile(12, 3000, 1700) == (jpeg, "image/jpeg")
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8 "
    src = open_tiles(str(make_folder(tmp_path / "w", {(3, 1, 2): webp}, "webp")))
    assert src.tile(3, 1, 2) == (webp, "image/webp") and (src.min_zoom, src.max_zoom) == (3, 3)


def test_folder_ignores_non_numeric_names(tmp_path):
    root = make_folder(tmp_path / "xyz")
    (root / "README.txt").write_text("tiles from the survey office")
    (root / "thumbs" / "0").mkdir(parents=True)
    (root / "1" / "0" / "notes.txt").write_text("x")
    src = open_tiles(str(root))
    assert (src.min_zoom, src.max_zoom) == (0, 2)


@pytest.mark.parametrize("z, x, y", [
    (-1, 0, 0), (0, -1, 0), (0, 0, -1),  # negative
    (1, 2, 0), (1, 0, 2), (2, 4, 1),  # outside the 2^z grid
    (3, 0, 0), (31, 0, 0), (10**9, 0, 0), (0, 10**30, 0),  # beyond the source / absurd
    ("..", "..", "etc"), ("0", "0", "0"), (0.0, 0, 0), (True, 0, 0),  # not ints
])
def test_bad_coordinates_are_just_missing(tmp_path, z, x, y):
    folder = open_tiles(str(make_folder(tmp_path / "xyz")))
    archive = open_tiles(str(make_pmtiles(tmp_path / "t.pmtiles")))
    assert folder.tile(z, x, y) is None
    assert archive.tile(z, x, y) is None


# ---- pmtiles ----------------------------------------------------------------------------------

def test_pmtiles_serves_the_exact_bytes(tmp_path):
    path = make_pmtiles(tmp_path / "city.pmtiles", metadata={"attribution": "© 滨海市测绘院", "name": "base"})
    src = open_tiles(str(path))
    assert src.kind == "pmtiles" and (src.min_zoom, src.max_zoom) == (0, 2)
    assert src.attribution == "© 滨海市测绘院"
    for (z, x, y), data in TILES.items():
        assert src.tile(z, x, y) == (data, "image/png")
    assert src.tile(1, 1, 1) is None and src.tile(2, 0, 0) is None
    assert "PMTiles" in src.describe() and "zoom 0-2" in src.describe()


def test_pmtiles_gzip_compressed_tiles_come_out_plain(tmp_path):
    path = make_pmtiles(tmp_path / "gz.pmtiles", compression=Compression.GZIP)
    with open(path, "rb") as f:  # the archive really stores gzip: what the package's reader returns
        assert Reader(MmapSource(f)).get(0, 0, 0)[:2] == b"\x1f\x8b"
    src = open_tiles(str(path))
    for (z, x, y), data in TILES.items():
        assert src.tile(z, x, y) == (data, "image/png")


def test_pmtiles_with_leaf_directories_matches_the_package_reader(tmp_path):
    """Enough distinct tiles that the writer splits the index into leaf directories."""
    rng = random.Random(5)
    tiles = {(8, x, y): rng.randbytes(rng.randint(1, 300)) for x in range(160) for y in range(160)}
    path = make_pmtiles(tmp_path / "big.pmtiles", tiles, tile_type=TileType.WEBP)
    src = open_tiles(str(path))
    with open(path, "rb") as f:
        reader = Reader(MmapSource(f))
        assert reader.header()["leaf_directory_length"] > 0
        for z, x, y in rng.sample(sorted(tiles), 300):
            assert src.tile(z, x, y) == (tiles[(z, x, y)], "image/webp") == (reader.get(z, x, y), "image/webp")
    assert src.tile(8, 200, 200) is None and src.tile(7, 0, 0) is None


# ---- what cannot be used: one line each ------------------------------------------------------

def test_bad_sources_give_one_line(tmp_path):
    assert "does not exist" in one_line_error(open_tiles, str(tmp_path / "nowhere"))
    assert "does not exist" in one_line_error(open_tiles, "")

    (tmp_path / "empty").mkdir()
    assert "no tiles" in one_line_error(open_tiles, str(tmp_path / "empty"))
    (tmp_path / "other" / "3" / "1").mkdir(parents=True)
    (tmp_path / "other" / "3" / "1" / "2.txt").write_text("not a tile")
    assert "no tiles" in one_line_error(open_tiles, str(tmp_path / "other"))

    vector_folder = make_folder(tmp_path / "vec", {(3, 1, 2): b"\x1a\x00"}, "pbf")
    assert "vector" in one_line_error(open_tiles, str(vector_folder))

    garbage = tmp_path / "map.pmtiles"
    garbage.write_bytes(b"this is not an archive at all" * 10)
    assert "not a readable PMTiles archive" in one_line_error(open_tiles, str(garbage))
    (tmp_path / "empty.pmtiles").write_bytes(b"")
    assert "not a readable PMTiles archive" in one_line_error(open_tiles, str(tmp_path / "empty.pmtiles"))
    cut = tmp_path / "cut.pmtiles"
    cut.write_bytes(make_pmtiles(tmp_path / "whole.pmtiles").read_bytes()[:140])
    assert "not a readable PMTiles archive" in one_line_error(open_tiles, str(cut))

    mvt = make_pmtiles(tmp_path / "roads.pmtiles", {(0, 0, 0): gzip.compress(b"\x1a\x02x")},
                       tile_type=TileType.MVT, compression=Compression.GZIP)
    message = one_line_error(open_tiles, str(mvt))
    assert "vector" in message and "raster" in message

    brotli = make_pmtiles(tmp_path / "br.pmtiles", tile_type=TileType.PNG, compression=Compression.BROTLI)
    assert "brotli" in one_line_error(open_tiles, str(brotli))


# ---- COCKPIT_TILES ---------------------------------------------------------------------------

def test_configured_tiles_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("COCKPIT_TILES", raising=False)
    assert configured_tiles() is None
    folder = make_folder(tmp_path / "xyz")
    monkeypatch.setenv("COCKPIT_TILES", str(folder))
    first = configured_tiles()
    assert first.kind == "folder" and configured_tiles() is first  # opened once
    monkeypatch.setenv("COCKPIT_TILES", str(make_pmtiles(tmp_path / "t.pmtiles")))
    assert configured_tiles().kind == "pmtiles"  # reopened for the new value
    monkeypatch.setenv("COCKPIT_TILES", str(tmp_path / "gone.pmtiles"))
    message = one_line_error(configured_tiles)
    assert message.startswith("COCKPIT_TILES=") and "gone.pmtiles" in message and "does not exist" in message


def test_configured_archive_is_reopened_when_replaced(tmp_path, monkeypatch):
    path = tmp_path / "t.pmtiles"
    make_pmtiles(path, {(0, 0, 0): png((1, 2, 3))})
    monkeypatch.setenv("COCKPIT_TILES", str(path))
    assert configured_tiles().tile(0, 0, 0) == (png((1, 2, 3)), "image/png")
    make_pmtiles(tmp_path / "new.pmtiles", {(0, 0, 0): png((9, 9, 9)), (1, 1, 1): png((8, 8, 8))})
    (tmp_path / "new.pmtiles").replace(path)
    assert configured_tiles().tile(0, 0, 0) == (png((9, 9, 9)), "image/png")


# ---- the Flask route ---------------------------------------------------------------------------

def client(monkeypatch, tiles: str | None):
    from cockpit.callbacks.app import create_app

    monkeypatch.setenv("COCKPIT_DATABASE_URL", NO_DATABASE)  # neither the app nor the route needs the store
    if tiles is None:
        monkeypatch.delenv("COCKPIT_TILES", raising=False)
    else:
        monkeypatch.setenv("COCKPIT_TILES", tiles)
    return create_app().server.test_client()


@pytest.mark.parametrize("kind", ["folder", "pmtiles"])
def test_route_serves_tiles(tmp_path, monkeypatch, kind):
    source = make_folder(tmp_path / "xyz") if kind == "folder" else make_pmtiles(tmp_path / "t.pmtiles")
    c = client(monkeypatch, str(source))
    for (z, x, y), data in TILES.items():
        r = c.get(f"/tiles/{z}/{x}/{y}")
        assert r.status_code == 200 and r.data == data
        assert r.headers["Content-Type"] == "image/png"
        assert r.headers["Cache-Control"] == "public, max-age=86400"
    for url in ("/tiles/1/1/1", "/tiles/2/4/0", "/tiles/9/0/0", "/tiles/-1/0/0", "/tiles/0/0/0.png",
                "/tiles/99999999999999999999/0/0", "/tiles/../../etc/passwd", "/tiles/0/0/..%2F..%2Fx",
                "/tiles/0/0"):
        assert c.get(url).status_code == 404, url


def test_route_is_404_without_a_source(tmp_path, monkeypatch):
    make_folder(tmp_path / "xyz")
    c = client(monkeypatch, None)
    assert c.get("/tiles/0/0/0").status_code == 404
    assert c.get("/tiles/2/3/1").status_code == 404


def test_route_is_404_when_the_source_goes_away(tmp_path, monkeypatch):
    path = make_pmtiles(tmp_path / "t.pmtiles")
    c = client(monkeypatch, str(path))
    assert c.get("/tiles/0/0/0").status_code == 200
    path.unlink()
    assert c.get("/tiles/0/0/0").status_code == 404


# ---- the map layer ---------------------------------------------------------------------------

def test_basemap_layers(tmp_path, monkeypatch):
    import dash_leaflet as dl

    from cockpit.layouts.unit_map import base_layers

    monkeypatch.delenv("COCKPIT_TILES", raising=False)
    assert base_layers(configured_tiles()) == []
    monkeypatch.setenv("COCKPIT_TILES", str(make_pmtiles(tmp_path / "t.pmtiles", metadata={"attribution": "© 测绘院"})))
    (layer,) = base_layers(configured_tiles())
    assert isinstance(layer, dl.TileLayer)
    assert layer.url == "/tiles/{z}/{x}/{y}" and "://" not in layer.url
    assert layer.maxNativeZoom == 2 and layer.maxZoom >= 2 and layer.attribution == "© 测绘院"
    # the layer serialises (Dash sends it as JSON) and names nothing outside this server
    assert "http" not in json.dumps(layer.to_plotly_json(), default=str)


# ---- `cockpit serve` refuses a bad COCKPIT_TILES ---------------------------------------------

def test_serve_refuses_a_missing_tile_source(databases):
    url = databases.create("tiles")  # a good store, so the tile check is what stops it
    r = run_cli("serve", "--port", str(free_port()), url=url, env={"COCKPIT_TILES": "/nonexistent"})
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("cockpit: COCKPIT_TILES='/nonexistent' does not exist"), r.stderr
    assert "Traceback" not in r.stderr and "serving on" not in r.stdout
