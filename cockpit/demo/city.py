"""A made-up but plausible city: nested irregular polygons, Chinese names, unified codes.

Each level is a Voronoi partition of its parent, clipped to the parent, so children tile the
parent with no gap or overlap and nest exactly. Seeds are denser around two urban cores,
so grids are small downtown and large at the edge, as in a real city.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Polygon

CENTER = (114.05, 22.62)  # a coastal Guangdong-like location
CITY_CODE = "440300"
CITY_NAME = "滨海市"

_FIRST = "东西南北新龙凤金银玉翠碧青石松竹梅兰桃李杏柳荷莲鹤鹿云霞星月海湖河江山岭坪塘田园华锦福安宝康乐和永兴泰"
_SECOND = "湖山园湾林苑岭坑田塘村桥城门港华安兴和盛丰源泉溪景峰岗洲浦坊亭阁庄湾沙头围"
_DISTRICTS = ["龙湖", "新安", "翠湖", "莲花", "桃源", "滨海", "锦绣", "金山", "银湖", "凤凰", "梅林", "松岗",
              "观澜", "清溪", "福田", "南湾"]
# Past the list: plain numbered districts, and every other one a long name on purpose, as real
# cities have ("…国家级高新技术产业开发区"), so the screens are exercised on names that must be shortened.
_LONG_SUFFIX = "国家级高新技术产业开发区"
MAX_DISTRICTS = 97  # district codes are the city's first four digits + two (03..99)


def district_names(n: int) -> list[str]:
    names = [d + "区" for d in _DISTRICTS[:n]]
    for k in range(len(names), n):
        names.append(f"第{k + 1}区" if k % 2 == 0 else _DISTRICTS[k % len(_DISTRICTS)] + _LONG_SUFFIX)
    return names


@dataclass
class Unit:
    code: str
    name: str
    level: str
    parent: int | None  # index into City.units
    geom: MultiPolygon
    population: int | None = None


@dataclass
class City:
    units: list[Unit] = field(default_factory=list)

    def of_level(self, level: str) -> list[int]:
        return [i for i, u in enumerate(self.units) if u.level == level]


def _density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative population density: two urban cores over a rural floor."""
    cores = [(CENTER[0] - 0.04, CENTER[1] + 0.01, 0.05), (CENTER[0] + 0.09, CENTER[1] - 0.04, 0.035)]
    d = np.full_like(x, 0.15)
    for cx, cy, s in cores:
        d += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return d


def _outline(rng: np.random.Generator) -> Polygon:
    theta = np.linspace(0, 2 * np.pi, 160, endpoint=False)
    r = np.ones_like(theta)
    for k, amp in ((2, 0.12), (3, 0.08), (5, 0.05), (9, 0.025)):
        r += amp * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    x = CENTER[0] + 0.22 * r * np.cos(theta)
    y = CENTER[1] + 0.15 * r * np.sin(theta)
    return Polygon(np.column_stack([x, y]))


def sample_in(polys: np.ndarray, which: np.ndarray, rng: np.random.Generator,
              weighted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One random point strictly inside polys[which[k]] for each k (vectorised rejection).

    weighted=True accepts points in proportion to _density, for seeding children.
    """
    shapely.prepare(polys)
    bounds = shapely.bounds(polys)
    x = np.empty(len(which))
    y = np.empty(len(which))
    todo = np.arange(len(which))
    while len(todo):
        b = bounds[which[todo]]
        px = b[:, 0] + rng.random(len(todo)) * (b[:, 2] - b[:, 0])
        py = b[:, 1] + rng.random(len(todo)) * (b[:, 3] - b[:, 1])
        ok = shapely.contains_xy(polys[which[todo]], px, py)
        if weighted:
            ok &= rng.random(len(todo)) < _density(px, py) / 1.2
        x[todo[ok]] = px[ok]
        y[todo[ok]] = py[ok]
        todo = todo[~ok]
    return x, y


def _as_multi(g) -> MultiPolygon:
    parts = [p for p in shapely.get_parts(g) if isinstance(p, Polygon) and not p.is_empty]
    return MultiPolygon(parts)


def _split(parent: MultiPolygon, n: int, rng: np.random.Generator) -> list[MultiPolygon]:
    """Partition `parent` into n Voronoi cells seeded by density-weighted points."""
    if n <= 1:
        return [parent]
    polys = np.array([parent])
    x, y = sample_in(polys, np.zeros(n, dtype=int), rng, weighted=True)
    cells = shapely.voronoi_polygons(MultiPoint(np.column_stack([x, y])), extend_to=parent)
    cells = shapely.get_parts(cells)
    # voronoi_polygons returns cells in arbitrary order: sort them by their seed for stable codes
    seed_of = [int(np.argmin((x - c.centroid.x) ** 2 + (y - c.centroid.y) ** 2)) for c in cells]
    pieces = [_as_multi(shapely.intersection(c, parent)) for c in cells]
    pieces = [p for _, p in sorted(zip(seed_of, pieces), key=lambda t: (-t[1].centroid.y, t[1].centroid.x))]
    return [p for p in pieces if not p.is_empty]


def _names(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    out = []
    while len(out) < n:
        stem = rng.choice(list(_FIRST)) + rng.choice(list(_SECOND))
        if stem not in taken:
            taken.add(stem)
            out.append(stem)
    return out


def _share(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split `total` children among parents in proportion to weights, at least `minimum` each."""
    raw = weights / weights.sum() * total
    counts = np.maximum(minimum, np.floor(raw).astype(int))
    short = total - counts.sum()
    if short > 0:
        counts[np.argsort(-(raw - np.floor(raw)))[:short]] += 1
    return counts


def _mass(geoms: list[MultiPolygon], rng: np.random.Generator) -> np.ndarray:
    """Population-weighted size of each polygon (Monte Carlo over the density)."""
    arr = np.array(geoms)
    which = np.repeat(np.arange(len(arr)), 64)
    x, y = sample_in(arr, which, rng)
    return shapely.area(arr) * _density(x, y).reshape(len(arr), 64).mean(axis=1)


def build_city(rng: np.random.Generator, grids: int = 3000, districts: int | None = None) -> City:
    """City -> districts -> streets -> communities -> grids, about `grids` grids.

    `districts` fixes the number of top-level units; by default it follows `grids`."""
    n_districts = districts or int(np.clip(round(grids / 500), 2, len(_DISTRICTS)))
    counts = {"district": n_districts, "street": max(n_districts, grids // 50),
              "community": max(n_districts, grids // 5), "grid": grids}
    city = City()
    outline = MultiPolygon([_outline(rng)])
    city.units.append(Unit(CITY_CODE, CITY_NAME, "city", None, outline))

    parents = [0]
    taken: set[str] = set()
    for level in ("district", "street", "community", "grid"):
        geoms = [city.units[p].geom for p in parents]
        per_parent = _share(counts[level], _mass(geoms, rng), minimum=2)
        children = []
        for p, n in zip(parents, per_parent):
            parent = city.units[p]
            pieces = _split(parent.geom, int(n), rng)
            if level == "district":
                names = district_names(len(pieces))
            elif level == "grid":
                names = [f"{parent.name}第{k + 1}网格" for k in range(len(pieces))]
            else:
                names = [s + ("街道" if level == "street" else "社区") for s in _names(rng, len(pieces), taken)]
            for k, (geom, name) in enumerate(zip(pieces, names)):
                code = (f"{CITY_CODE[:4]}{k + 3:02d}" if level == "district" else f"{parent.code}-{k + 1:03d}")
                city.units.append(Unit(code, name, level, p, geom))
                children.append(len(city.units) - 1)
        parents = children

    # ~1,000 people a grid on average, more where it is dense; parents sum their children.
    grid_idx = np.array(parents)
    areas = shapely.area(np.array([city.units[i].geom for i in grid_idx]))
    c = shapely.centroid(np.array([city.units[i].geom for i in grid_idx]))
    dens = _density(shapely.get_x(c), shapely.get_y(c))
    raw = areas * dens
    pop = raw / raw.mean() * 0.5 + 0.5  # flatten: grids are drawn to hold similar numbers
    pop = np.round(pop * rng.lognormal(np.log(1000), 0.35, len(grid_idx))).astype(int)
    for i, p in zip(grid_idx, pop):
        city.units[i].population = int(p)
    for i in reversed(range(len(city.units))):
        u = city.units[i]
        if u.parent is not None:
            par = city.units[u.parent]
            par.population = (par.population or 0) + (u.population or 0)
    return city
