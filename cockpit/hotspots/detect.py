"""The three hotspot statistics, on plain arrays (no store, no Dash): README "Hotspot warnings".

surge       a unit's count in a recent window against its own seasonal baseline: the same hours
            of the week in each of the previous `weeks` weeks. The baseline's counts give a
            Gamma posterior for the unit's rate (Jeffreys prior), scaled by how busy the whole
            city is this window against its own baseline (season, holidays); the window's count
            is then negative binomial, and its upper tail is the p-value. Unlike a plain Poisson
            test against the baseline mean, this stays honest when the baseline is a handful of
            events (a grid that had 0 events cannot surge to 1 with p = 0). Benjamini-Hochberg
            across every unit and window tested keeps the share of false warnings at q; tiny
            counts (below min_count, or less than min_excess above expected) never warn.
recurrence  the same category within radius_m metres, `repeats` times or more in `days` days:
            per category a KD-tree over the events' positions in metres; the event with the most
            same-category neighbours within the radius makes a spot with those neighbours, they
            are taken out, and so on while a spot has enough events. In a busy grid a few events
            of a common category fall close together by chance, so a spot must also be unlikely
            by chance: its count against a Poisson with the mean that category would put in a
            disc of that radius if spread evenly over the grid, times the number of such discs
            the grid holds (the spot could have been anywhere in it: the usual first-order bound
            of a scan statistic), Benjamini-Hochberg at q across the spots.
cluster     Getis-Ord Gi* over leaf units (binary weights: a unit and the units it touches),
            z-scores turned into one-sided p-values, Benjamini-Hochberg at q; touching units
            found together make one cluster, named after its highest z.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.stats import nbinom, norm, poisson

EARTH_M_PER_DEG = 111_320.0


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same order as p."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


@dataclass
class SurgeTest:
    observed: np.ndarray  # count in the window, per tested (unit, window)
    expected: np.ndarray
    p: np.ndarray
    q: np.ndarray
    flagged: np.ndarray  # bool


def surge(observed: np.ndarray, baseline: np.ndarray, *, q: float, min_count: int, min_excess: int,
          city_scale: np.ndarray | float = 1.0) -> SurgeTest:
    """observed: (n,) counts in the window; baseline: (n, weeks) counts of the same hours in the
    previous weeks; city_scale: (n,) or scalar factor for this window's overall level."""
    observed = np.asarray(observed, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    weeks = baseline.shape[1]
    shape = baseline.sum(axis=1) + 0.5  # Gamma(sum + 1/2, weeks) posterior of the weekly rate
    scale = np.broadcast_to(np.asarray(city_scale, dtype=float), observed.shape)
    expected = shape / weeks * scale
    # Poisson(rate * scale) with rate ~ Gamma(shape, weeks) is NB(shape, weeks / (weeks + scale)).
    p = nbinom.sf(observed - 1, shape, weeks / (weeks + scale))
    qv = bh(p)
    flagged = (qv <= q) & (observed >= min_count) & (observed - expected >= min_excess)
    return SurgeTest(observed, expected, p, qv, flagged)


@dataclass
class Spot:
    category: int
    members: np.ndarray  # indices into the arrays given
    centre: int  # index of the event with most neighbours
    expected: float = 0.0  # events of the category in such a disc by chance
    p: float = 0.0
    q: float = 0.0


def to_metres(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Local equirectangular projection: accurate to well under 1 % across a city."""
    lat0 = np.radians(np.mean(lat)) if len(lat) else 0.0
    return np.column_stack([np.asarray(lon) * EARTH_M_PER_DEG * np.cos(lat0), np.asarray(lat) * EARTH_M_PER_DEG])


def recurrence(category: np.ndarray, lon: np.ndarray, lat: np.ndarray, *, radius_m: float, repeats: int,
               grid: np.ndarray | None = None, area_m2: np.ndarray | None = None, q: float = 1.0) -> list[Spot]:
    """Spots where one category came back `repeats`+ times within radius_m (events given: the
    last `days` days, exact locations only). grid and area_m2 (per event: its leaf unit and that
    unit's area) give each spot its chance expectation; without them every spot is kept."""
    category = np.asarray(category)
    xy = to_metres(lon, lat)
    spots: list[Spot] = []
    for cat in np.unique(category):
        idx = np.flatnonzero(category == cat)
        if len(idx) < repeats:
            continue
        tree = cKDTree(xy[idx])
        neighbours = tree.query_ball_point(xy[idx], r=radius_m)
        free = np.ones(len(idx), dtype=bool)
        sizes = np.array([len(n) for n in neighbours])
        for i in np.argsort(-sizes, kind="stable"):
            if sizes[i] < repeats:
                break
            if not free[i]:
                continue
            members = np.array([j for j in neighbours[i] if free[j]], dtype=np.int64)
            if len(members) < repeats:
                continue
            free[members] = False
            spots.append(Spot(int(cat), np.sort(idx[members]), int(idx[i])))
    if grid is None or area_m2 is None or not spots:
        return spots
    grid = np.asarray(grid)
    disc = np.pi * radius_m ** 2
    pairs, n = np.unique(np.column_stack([category, grid]), axis=0, return_counts=True)
    per_cell = {(int(a), int(b)): int(k) for (a, b), k in zip(pairs, n)}  # events per (category, grid)
    for spot in spots:
        c = spot.centre
        same = per_cell[(int(category[c]), int(grid[c]))]
        discs = max(float(area_m2[c]), disc) / disc
        spot.expected = float(same / discs)
        spot.p = float(min(1.0, discs * poisson.sf(len(spot.members) - 1, spot.expected)))
    for spot, qv in zip(spots, bh(np.array([s.p for s in spots]))):
        spot.q = float(qv)
    return [s for s in spots if s.q <= q]


@dataclass
class Cluster:
    units: np.ndarray  # indices of the member units
    top: int  # index of the member with the highest z
    z: np.ndarray = field(repr=False)
    p: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)


def getis_ord(x: np.ndarray, adjacency: sparse.spmatrix, *, q: float, min_count: int) -> list[Cluster]:
    """Gi* hot spots among n units; adjacency: (n, n) symmetric 0/1 matrix of touching units
    (the diagonal is added here: Gi* counts the unit itself)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 3 or x.std() == 0:
        return []
    w = (sparse.csr_matrix(adjacency, dtype=float) + sparse.identity(n, format="csr")).tocsr()
    w.data[:] = 1.0
    wi = np.asarray(w.sum(axis=1)).ravel()
    local = w @ x
    mean, s = x.mean(), x.std()
    z = (local - mean * wi) / (s * np.sqrt((n * wi - wi ** 2) / (n - 1)))
    p = norm.sf(z)
    qv = bh(p)
    hot = (qv <= q) & (local >= min_count)
    if not hot.any():
        return []
    idx = np.flatnonzero(hot)
    sub = sparse.csr_matrix(adjacency)[idx][:, idx]
    _, label = connected_components(sub, directed=False)
    out = []
    for lab in np.unique(label):
        members = idx[label == lab]
        out.append(Cluster(members, int(members[np.argmax(z[members])]), z, p, qv))
    return out
