"""The screens for any city, in headless Chromium: a wall strip of 3 and of 30 districts fits
1920x1080 and 3840x2160 with every card on screen and nothing clipped to nothing, and a city
with hundreds of categories shows the top ones and "others" adding up to the unit's volume.
Screenshots go to tests/artifacts/ (kept by the run, git-ignored)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By

from cockpit import store
from cockpit.config import settings
from cockpit.demo.load import load_demo
from cockpit.layouts.charts import TOP_GROUPS
from cockpit.metrics import changes, live_view
from cockpit.metrics.unit_view import Filters, period_of, unit_view
from cockpit.ui.formatting import count
from cockpit.ui.i18n import t
from conftest import start, viewport

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENS = ((1920, 1080), (3840, 2160))
# small cities that load in seconds; days=30 so that "today" holds events
CITY = {"seed": 11, "grids": 300, "events": 20_000, "days": 30}
MANY_CATEGORIES = 240

# Where each strip card and its parts are, and whether anything is cut.
STRIP_FIT = """
const d = document.documentElement, vis = e => e.offsetParent !== null;
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
return {
  sw: d.scrollWidth, sh: d.scrollHeight, w: innerWidth, h: innerHeight,
  map: document.querySelector('.wall-map').getBoundingClientRect().height,
  labels: [...document.querySelectorAll('.wall-map .unit-label')].map(e => e.textContent),
  untitled: [...document.querySelectorAll('.wall .tick-cat, .wall .tick-place, .wall .list-main, .wall .list-place')]
    .filter(e => e.title !== e.textContent).map(e => e.textContent),
  items: [...document.querySelectorAll('#wall-district-strip .strip-item')].map(i => {
    const name = i.querySelector('.strip-name');
    return {
      code: i.dataset.code, box: box(i), name: name.textContent, title: name.title,
      nameBox: box(name), nameCut: name.scrollWidth > name.clientWidth,
      nameRoom: name.clientWidth / parseFloat(getComputedStyle(name).fontSize),
      figures: [...i.querySelectorAll('.strip-numbers > div')].filter(vis).map(f => ({
        key: f.className.replace('strip-', ''), text: f.querySelector('b').textContent,
        box: box(f.querySelector('b')),
        cut: f.querySelector('b').scrollWidth > f.querySelector('b').clientWidth})),
    };
  }),
};"""


# The widest figures a big city shows, put into every card for a moment: the layout must hold
# them, not just today's small numbers of a test city.
WORST_CASE = """
const widest = {volume: '88,888', overdue: '8,888'}, saved = [];
for (const b of document.querySelectorAll('#wall-district-strip .strip-numbers b')) {
  saved.push([b, b.textContent]);
  const key = b.parentElement.className.replace('strip-', '');
  b.textContent = widest[key] || '100.0%';
}
const cut = [...document.querySelectorAll('#wall-district-strip .strip-numbers > div')]
  .filter(f => f.offsetParent !== null)
  .map(f => [f.closest('.strip-item').dataset.code, f.className, f.querySelector('b')])
  .filter(([, , b]) => b.scrollWidth > b.clientWidth
          || b.getBoundingClientRect().right > b.closest('.strip-item').getBoundingClientRect().right)
  .map(([code, cls]) => code + ' ' + cls);
for (const [b, text] of saved) b.textContent = text;
return cut;"""


def _city(databases, label: str, **extra) -> str:
    url = databases.create(label)
    load_demo(store.engine(url), now=datetime.now(timezone.utc), progress=lambda _: None, **CITY, **extra)
    return url


@pytest.fixture(scope="module")
def city3(databases) -> str:
    return _city(databases, "screens3", districts=3)


@pytest.fixture(scope="module")
def city30(databases) -> str:
    return _city(databases, "screens30", districts=30)


@pytest.fixture(scope="module")
def city16(databases) -> str:
    return _city(databases, "screens16", districts=16)


@pytest.fixture(scope="module")
def many_categories(databases) -> str:
    """A city whose category list is hundreds of ungrouped items (some with long names), added
    and used by plain SQL the way an integrator writes them (docs/schema.md §4)."""
    url = _city(databases, "screensmany")
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("""
            INSERT INTO categories (code, name, parent_id, deadline_hours)
            SELECT 'X' || lpad(k::text, 3, '0'),
                   CASE WHEN k % 3 = 0 THEN '城市道路及附属设施损坏维修养护事项第' || k || '类' ELSE '事项' || k END,
                   NULL, 24
            FROM generate_series(1, :n) k"""), {"n": MANY_CATEGORIES})
        # six big ones (X003 and X006 with long names) in the top, the rest 1..40 events each,
        # spread over the grids and the last 25 days
        conn.execute(sa.text("""
            WITH g AS (SELECT array_agg(id ORDER BY id) ids FROM units u
                       WHERE NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id))
            INSERT INTO events (source, external_id, category_id, reported_at, grid_id, deadline_at)
            SELECT 'mailbox', 'SCREENS-' || c.code || '-' || j, c.id,
                   now() - (j * 37 % 600) * interval '1 hour',
                   g.ids[1 + (c.id * 31 + j * 7) % array_length(g.ids, 1)],
                   now() - (j * 37 % 600) * interval '1 hour' + interval '24 hours'
            FROM categories c CROSS JOIN g
            CROSS JOIN LATERAL generate_series(1, CASE WHEN substr(c.code, 2)::int <= 6
                THEN 3000 - 100 * substr(c.code, 2)::int ELSE 1 + (substr(c.code, 2)::int * 13) % 40 END) j
            WHERE c.code LIKE 'X%'"""))
    return url


def districts_today(url: str) -> list[dict]:
    with store.engine(url).connect() as conn:
        return live_view.wall_view(conn, None, settings().timezone)["districts"]


def inside(inner: list[float], outer: list[float], slack: float = 0.5) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack
            and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack)


def check_wall(dash_duo, url: str, n: int, width: int, height: int) -> dict:
    viewport(dash_duo, width, height)
    expected = districts_today(url)
    assert len(expected) == n
    dash_duo._wait_for(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#wall-district-strip .strip-item")) == n,
                       timeout=30, msg=f"the strip never showed {n} districts")
    time.sleep(1.5)  # layout settles after the resize
    fit = dash_duo.driver.execute_script(STRIP_FIT)
    assert fit["w"] == width and fit["h"] == height
    assert fit["sw"] <= width and fit["sh"] <= height, {k: fit[k] for k in ("sw", "sh", "w", "h")}
    assert fit["map"] >= 0.3 * height, "the strip ate the map"
    assert fit["untitled"] == []  # whatever may ellipsize carries its full text as the title
    assert [i["code"] for i in fit["items"]] == [d["code"] for d in expected]
    screen = [0, 0, width, height]
    for item, d in zip(fit["items"], expected):
        assert inside(item["box"], screen), item  # every district on screen
        assert item["name"] == item["title"] == d["name"]  # the full name, also as the hover title
        assert inside(item["nameBox"], item["box"]), item
        assert item["nameRoom"] >= 2.5, item  # room for two characters and the ellipsis at least
        shown = {f["key"]: f for f in item["figures"]}
        # a narrow card drops figures, but never the volume, the closure rate or the overdue count
        assert {"volume", "closure_rate", "overdue"} <= set(shown), item
        assert shown["volume"]["text"] == count(d["volume"])
        assert shown["overdue"]["text"] == count(d["overdue"])
        for f in item["figures"]:
            assert not f["cut"] and inside(f["box"], item["box"]), (d["name"], f)
    assert dash_duo.driver.execute_script(WORST_CASE) == []
    return fit


@pytest.mark.parametrize("n, lang", [(3, "zh"), (16, "zh"), (30, "zh"), (30, "en")])
def test_wall_strip_fits_any_number_of_districts(dash_duo, use_store, request, n, lang):
    url = request.getfixturevalue(f"city{n}")
    use_store(url)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        start(dash_duo, f"/wall?rotate=0&kiosk=1&lang={lang}", *SCREENS[0])
        for width, height in SCREENS:
            fit = check_wall(dash_duo, url, n, width, height)
            dash_duo.driver.save_screenshot(str(ARTIFACTS / f"wall-{n}-districts-{lang}-{width}x{height}.png"))
            if n == 30:
                # the long names ("…高新技术产业开发区") really are shortened, and still read
                cut = [i for i in fit["items"] if i["nameCut"]]
                assert cut and all(len(i["title"]) > 6 for i in cut)
                # and on the map too, where they ran into their neighbours
                assert len(fit["labels"]) == n and max(map(len, fit["labels"])) <= 8
                assert any(label.endswith("…") for label in fit["labels"])
            if n == 3:
                assert not any(i["nameCut"] for i in fit["items"])
                assert all(len(i["figures"]) == 5 for i in fit["items"])  # room for every figure
    finally:
        changes.stop_all()


def test_category_chart_is_top_n_and_others_adding_up_to_the_volume(dash_duo, use_store, many_categories):
    url = use_store(many_categories)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        start(dash_duo, "/?period=30d", 1920, 1080)
        dash_duo._wait_for(lambda d: d.find_element(By.ID, "kpi-volume").text not in ("", "…"), timeout=30,
                           msg="KPI cards never filled")
        dash_duo._wait_for(lambda d: d.execute_script(
            "const g = document.querySelector('#group-chart .js-plotly-plot'); return g && g.data && g.data.length"),
            timeout=20, msg="no category chart")
        state = dash_duo.driver.execute_script("""
            const s = document.querySelector('#view-state span');
            return {unit: s.dataset.unit, from: s.dataset.from, to: s.dataset.to};""")
        chart = dash_duo.driver.execute_script("""
            const g = document.querySelector('#group-chart .js-plotly-plot');
            return {x: g.data[0].x, names: g.data[0].customdata, ticks: g.layout.yaxis.ticktext,
                    shown: [...g.querySelectorAll('.ytick text')].map(e => e.textContent)};""")
        card = dash_duo.find_element("#kpi-volume").text
        ranking = dash_duo.driver.execute_script(
            "return [...document.querySelectorAll('#ranking td.name a')].map(a => [a.textContent, a.title])")
        dash_duo.driver.execute_script("document.querySelector('#group-chart').scrollIntoView()")
        time.sleep(1)
        dash_duo.driver.save_screenshot(str(ARTIFACTS / "drilldown-many-categories-1920x1080.png"))
    finally:
        changes.stop_all()

    with store.engine(url).connect() as conn:
        period = period_of("custom", settings().timezone, state["from"], state["to"])
        view = unit_view(conn, state["unit"], period, Filters())
        assert view["unit"]["level"] == "city"  # the whole city: every placed event counts
        n_groups = conn.execute(sa.text("SELECT count(*) FROM categories WHERE parent_id IS NULL")).scalar()
        # the city's events of the period, counted from the events themselves (not the rollups)
        counted = conn.execute(sa.text("""
            SELECT count(*) FROM events WHERE grid_id IS NOT NULL AND reported_at >= :a AND reported_at < :b"""),
            {"a": period.start_utc, "b": period.end_utc}).scalar()
    assert n_groups > MANY_CATEGORIES
    assert sorted(ranking) == sorted([k["name"], k["name"]] for k in view["children"])
    assert len(view["by_group"]) > TOP_GROUPS + 1  # there is a rest to sum
    bars = list(reversed(chart["x"]))  # top first
    names = list(reversed(chart["names"]))
    assert len(bars) == TOP_GROUPS + 1
    assert sum(bars) == view["kpi"]["volume"] == counted  # the bars add up to the unit's volume
    assert card == count(counted)
    ranked = sorted(view["by_group"], key=lambda r: (-r["volume"], r["code"]))
    assert bars[:TOP_GROUPS] == [r["volume"] for r in ranked[:TOP_GROUPS]]
    assert names[:TOP_GROUPS] == [r["name"] for r in ranked[:TOP_GROUPS]]  # full names on hover
    rest = ranked[TOP_GROUPS:]
    assert bars[-1] == sum(r["volume"] for r in rest)
    assert names[-1] == t("others_detail", "zh").format(n=len(rest))
    ticks = list(reversed(chart["ticks"]))
    assert ticks[-1] == t("others", "zh")
    long_ones = [(n, s) for n, s in zip(names, ticks) if len(n) > 8 and n != names[-1]]
    assert long_ones, "the test city put no long name in the top"
    assert all(s.endswith("…") and n.startswith(s[:-1]) for n, s in long_ones)
    assert sorted(s.strip() for s in chart["shown"]) == sorted(ticks)  # what plotly drew
