"""Optional local raster map tiles, read on this server: never a public tile server.

COCKPIT_TILES names either
  * a folder of XYZ tiles ``<folder>/{z}/{x}/{y}.png`` (or .jpg / .jpeg / .webp: whichever the
    folder holds), or
  * a ``.pmtiles`` archive (v3) of raster tiles, read with the ``pmtiles`` package.

``open_tiles(path)`` opens either and raises a one-line CockpitError when it cannot be used;
``configured_tiles()`` is the source COCKPIT_TILES names (None when unset), opened once per path
and reopened when the variable or the file changes. ``TileSource.tile(z, x, y)`` gives
``(bytes, mimetype)`` or None: coordinates are plain ints checked against the zoom range and the
2^z grid, so no request can name a file outside the source.

No Dash or Flask here: the web layer (cockpit.callbacks.tiles_route) only serves what this reads.
"""
from __future__ import annotations

import functools
import gzip
import os
import re
import threading
import zlib
from pathlib import Path

from cockpit.errors import CockpitError

# Zoom 30 is already ~4 cm per pixel; above it pmtiles tile ids overflow 64 bits (z > 31).
MAX_ZOOM = 30

FOLDER_EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
VECTOR_EXTENSIONS = {"pbf", "mvt"}
RASTER_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "AVIF": "image/avif"}  # pmtiles TileType
_TILE_FILE = re.compile(r"^(\d+)\.([A-Za-z]+)$")
_GZIP_MAGIC = b"\x1f\x8b"


def _sniff_mimetype(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return None


def _is_coord(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class TileSource:
    """A raster tile pyramid: ``tile(z, x, y)`` -> ``(bytes, mimetype)`` or None."""

    kind: str = ""
    path: Path
    min_zoom: int
    max_zoom: int
    attribution: str = ""
    format: str = ""

    def _valid(self, z, x, y) -> bool:
        if not (_is_coord(z) and _is_coord(x) and _is_coord(y)):
            return False
        if not (self.min_zoom <= z <= self.max_zoom and 0 <= z <= MAX_ZOOM):
            return False
        n = 1 << z
        return 0 <= x < n and 0 <= y < n

    def tile(self, z: int, x: int, y: int) -> tuple[bytes, str] | None:
        if not self._valid(z, x, y):
            return None
        return self._read(z, x, y)

    def _read(self, z: int, x: int, y: int) -> tuple[bytes, str] | None:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> str:
        what = "tile folder" if self.kind == "folder" else "PMTiles archive"
        return f"{what} {self.path} ({self.format or 'raster'}, zoom {self.min_zoom}-{self.max_zoom})"

    def __repr__(self) -> str:
        return f"<TileSource {self.describe()}>"


class FolderTiles(TileSource):
    """``<folder>/{z}/{x}/{y}.<ext>``; extensions and zoom range found by looking once."""

    kind = "folder"

    def __init__(self, path: Path, label: str):
        self.path = path
        self.extensions, zooms, vector = self._scan(path)
        if not zooms:
            if vector:
                raise CockpitError(f"{label} holds vector tiles (.{vector}); the map can only draw "
                                   "raster tiles (.png, .jpg, .webp)")
            raise CockpitError(f"{label} is a folder with no tiles laid out as {{z}}/{{x}}/{{y}}.png "
                               "(or .jpg, .jpeg, .webp)")
        self.min_zoom, self.max_zoom = min(zooms), max(zooms)
        self.format = "/".join(self.extensions)

    @staticmethod
    def _numeric_dirs(path: Path) -> list[tuple[int, str]]:
        try:
            with os.scandir(path) as it:
                found = [(int(e.name), e.path) for e in it if e.name.isdigit() and e.is_dir()]
        except OSError:
            return []
        return sorted(found)

    @classmethod
    def _scan(cls, root: Path) -> tuple[list[str], list[int], str | None]:
        """Per zoom folder, look into x folders until one holds a tile: never walks the whole tree."""
        extensions: list[str] = []
        zooms: list[int] = []
        vector = None
        for z, zpath in cls._numeric_dirs(root):
            if z > MAX_ZOOM:
                continue
            for _x, xpath in cls._numeric_dirs(zpath):
                seen = set()
                try:
                    with os.scandir(xpath) as it:
                        for e in it:
                            m = _TILE_FILE.match(e.name)
                            if m and e.is_file():
                                seen.add(m.group(2).lower())
                except OSError:
                    continue
                raster = sorted(ext for ext in seen if ext in FOLDER_EXTENSIONS)
                if raster:
                    zooms.append(z)
                    extensions += [ext for ext in raster if ext not in extensions]
                    break
                if seen & VECTOR_EXTENSIONS:
                    vector = sorted(seen & VECTOR_EXTENSIONS)[0]
                    break
        return extensions, zooms, vector

    def _read(self, z: int, x: int, y: int) -> tuple[bytes, str] | None:
        base = os.path.join(self.path, str(z), str(x), str(y))
        for ext in self.extensions:
            try:
                with open(f"{base}.{ext}", "rb") as f:
                    return f.read(), FOLDER_EXTENSIONS[ext]
            except OSError:  # missing (the usual case), a directory, unreadable
                continue
        return None


class PMTilesArchive(TileSource):
    """A v3 ``.pmtiles`` archive read with positioned reads (os.pread): no shared file offset, so
    gunicorn's threads and forked workers read it concurrently; a file truncated under us gives
    short reads, not the SIGBUS a memory map would."""

    kind = "pmtiles"

    def __init__(self, path: Path, label: str):
        self.path = path
        try:
            self._file = open(path, "rb")
        except OSError as exc:
            raise CockpitError(f"{label} cannot be read: {exc.strerror}") from None
        try:
            self._open(label)
        except BaseException:
            self._file.close()
            raise

    def _open(self, label: str) -> None:
        from pmtiles.reader import Reader
        from pmtiles.tile import Compression, TileType

        fd = self._file.fileno()

        def get_bytes(offset: int, length: int) -> bytes:
            return os.pread(fd, length, offset)

        self._get_bytes = get_bytes
        self._reader = Reader(get_bytes)
        try:
            header = self._reader.header()
        except Exception as exc:  # noqa: BLE001 - MagicNumberNotFound, short file, bad enum byte, ...
            why = "only PMTiles version 3 is supported" if type(exc).__name__ == "SpecVersionUnsupported" else \
                "no PMTiles v3 header"
            raise CockpitError(f"{label} is not a readable PMTiles archive ({why})") from None
        self._header = header
        self._compression = header["tile_compression"]
        if header["internal_compression"] not in (Compression.GZIP, Compression.NONE):
            raise CockpitError(f"{label} has {header['internal_compression'].name.lower()}-compressed directories; "
                               "only gzip is supported (re-create it with `pmtiles convert`)")
        if self._compression not in (Compression.NONE, Compression.UNKNOWN, Compression.GZIP):
            raise CockpitError(f"{label} has {self._compression.name.lower()}-compressed tiles; "
                               "only uncompressed or gzip raster tiles are supported")
        try:
            self.metadata = self._reader.metadata() if header["metadata_length"] else {}
        except Exception:  # noqa: BLE001 - metadata is optional to us: no attribution then
            self.metadata = {}
        if not isinstance(self.metadata, dict):
            self.metadata = {}
        tile_type = header["tile_type"]
        vector_types = {t for t in TileType if t.name in ("MVT", "MLT")}
        if tile_type in vector_types or (
                tile_type == TileType.UNKNOWN and self.metadata.get("vector_layers")):
            kind = "" if tile_type == TileType.UNKNOWN else f" ({tile_type.name})"
            raise CockpitError(f"{label} holds vector tiles{kind}; the map can only draw raster "
                               "tiles (png, jpeg, webp)")
        self._mimetype = RASTER_TYPES.get(tile_type.name)
        self.format = tile_type.name.lower() if self._mimetype else "unknown format"
        self.min_zoom = min(header["min_zoom"], MAX_ZOOM)
        self.max_zoom = min(header["max_zoom"], MAX_ZOOM)
        if self.min_zoom > self.max_zoom:
            raise CockpitError(f"{label} is not a readable PMTiles archive (zoom range "
                               f"{header['min_zoom']}-{header['max_zoom']})")
        attribution = self.metadata.get("attribution", "")
        self.attribution = attribution if isinstance(attribution, str) else ""
        self._directory = functools.lru_cache(maxsize=64)(self._load_directory)
        try:  # the root directory must be there and parse
            self._directory(header["root_offset"], header["root_length"])
        except Exception:  # noqa: BLE001
            raise CockpitError(f"{label} is not a readable PMTiles archive (its root directory is damaged)") from None

    # Directories are parsed once and kept (the package's Reader.get re-reads the header and
    # re-parses the root and leaf directories, in pure Python, for every tile).
    def _load_directory(self, offset: int, length: int):
        from pmtiles.tile import Compression, deserialize_directory

        raw = self._get_bytes(offset, length)
        if len(raw) != length:
            raise EOFError("directory cut short")
        if self._header["internal_compression"] == Compression.NONE:
            raw = gzip.compress(raw, compresslevel=1)  # deserialize_directory always gunzips
        return deserialize_directory(raw)

    def _read(self, z: int, x: int, y: int) -> tuple[bytes, str] | None:
        from pmtiles.tile import Compression, find_tile, zxy_to_tileid

        h = self._header
        tile_id = zxy_to_tileid(z, x, y)
        offset, length = h["root_offset"], h["root_length"]
        try:
            for _depth in range(4):  # the spec's maximum directory depth
                entry = find_tile(self._directory(offset, length), tile_id)
                if entry is None:
                    return None
                if entry.run_length == 0:  # a leaf directory
                    offset, length = h["leaf_directory_offset"] + entry.offset, entry.length
                    continue
                data = self._get_bytes(h["tile_data_offset"] + entry.offset, entry.length)
                break
            else:
                return None
        except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile):
            return None  # damaged or changed under us: no tile rather than a server error
        if len(data) != entry.length or not data:
            return None
        if self._compression == Compression.GZIP or (
                self._compression == Compression.UNKNOWN and data.startswith(_GZIP_MAGIC)):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                return None
        mimetype = self._mimetype or _sniff_mimetype(data) or "application/octet-stream"
        return data, mimetype


def open_tiles(path: str) -> TileSource:
    """A folder of {z}/{x}/{y} tiles or a .pmtiles file; a one-line CockpitError otherwise."""
    label = repr(str(path))
    try:
        p = Path(os.path.expanduser(path))
        exists = bool(str(path).strip()) and p.exists()
    except (OSError, ValueError):  # an embedded NUL, a name too long
        exists = False
    if not exists:
        raise CockpitError(f"{label} does not exist (expected a folder of {{z}}/{{x}}/{{y}}.png tiles "
                           "or a .pmtiles file)")
    p = p.resolve()
    if p.is_dir():
        return FolderTiles(p, label)
    return PMTilesArchive(p, label)


_lock = threading.Lock()
_opened: tuple[tuple, TileSource] | None = None


def _identity(path: str) -> tuple:
    """What makes a cached source stale: another path, or the file/folder replaced or changed."""
    try:
        st = os.stat(os.path.expanduser(path))
    except (OSError, ValueError):
        return (path, None)
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def configured_tiles(path: str | None) -> TileSource | None:
    """The source COCKPIT_TILES names (`path`), or None when it is unset. Raises a one-line
    CockpitError (``COCKPIT_TILES='…' …``) when it names something unusable."""
    global _opened
    if not path:
        return None
    key = _identity(path)
    opened = _opened
    if opened is not None and opened[0] == key:
        return opened[1]
    with _lock:
        if _opened is not None and _opened[0] == key:
            return _opened[1]
        try:
            source = open_tiles(path)
        except CockpitError as exc:
            raise CockpitError(f"COCKPIT_TILES={exc}") from None
        # The old source is not closed here: a request may still be reading it; its file
        # closes when the last reference goes.
        _opened = (key, source)
        return source
