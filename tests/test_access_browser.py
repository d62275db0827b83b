"""Access in a real browser: sign in as a district officer and see that district only, sign out;
a wall screen's kiosk URL on a fresh browser; a duty officer reveals one reporter's contact, on
the record. Screenshots (zh and en, 1920x1080) go to tests/artifacts/."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By

from conftest import run_cli, sign_in_link, viewport, with_token
from cockpit import store
from cockpit.access import users, walltokens
from cockpit.ui.formatting import count

ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.browser


def _district(url: str, nth: int = 0) -> tuple[str, str, list[str]]:
    """(code, name, codes of its children) of the nth district."""
    with store.engine(url).connect() as conn:
        code, name, uid = conn.execute(sa.text(
            "SELECT code, name, id FROM units WHERE level = 'district' ORDER BY code OFFSET :n LIMIT 1"), {"n": nth}).one()
        kids = conn.execute(sa.text("SELECT code FROM units WHERE parent_id = :p"), {"p": uid}).scalars().all()
    return code, name, kids


def _serve(dash_duo):
    from cockpit.callbacks.app import create_app

    dash_duo.start_server(create_app(), navigate=False)
    dash_duo._url = dash_duo.server.url
    viewport(dash_duo, 1920, 1080)


def _shot(dash_duo, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / f"{name}-1920x1080.png"))


def _audit(url: str, action: str) -> list[dict]:
    with store.engine(url).connect() as conn:
        return [r._asdict() for r in conn.execute(sa.text(
            "SELECT actor, action, outcome, unit_code, event_id, detail FROM audit_log WHERE action = :a ORDER BY id"),
            {"a": action})]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_district_officer_signs_in_sees_only_the_district_and_signs_out(dash_duo, demo_url, use_store, lang):
    use_store(demo_url)
    code, name, kids = _district(demo_url)
    other, other_name, _ = _district(demo_url, 1)
    officer = f"officer-{lang}"
    with store.engine(demo_url).begin() as conn:
        users.create(conn, officer, "officer", code, password="correct horse")
    _serve(dash_duo)
    dash_duo.driver.get(f"{dash_duo.server_url}/?lang={lang}")
    # not signed in: the form, which comes back to the page asked for
    dash_duo.wait_for_element("#signin-name", timeout=10)
    _shot(dash_duo, f"signin-{lang}")
    dash_duo.find_element("#signin-name").send_keys(officer)
    dash_duo.find_element("#signin-password").send_keys("wrong password")
    dash_duo.find_element("#signin-submit").click()
    dash_duo.wait_for_element("#signin-message", timeout=10)
    assert dash_duo.find_element("#signin-message").text in ("用户名或密码错误", "Wrong name or password")
    dash_duo.find_element("#signin-name").send_keys(officer)
    dash_duo.find_element("#signin-password").send_keys("correct horse")
    dash_duo.find_element("#signin-submit").click()

    # the top of what they see is their district, with its numbers as the CLI computes them
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "unit-name").text == name, timeout=20,
                       msg="the officer's page did not open at their district")
    expected = json.loads(run_cli("kpi", "--unit", code, "--json", url=demo_url).stdout)
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "kpi-volume").text == count(expected["volume"]), timeout=20,
                       msg="the district's volume is not the CLI's")
    bar = dash_duo.find_element("#user-bar").text
    assert officer in bar and name in bar and ("业务人员" in bar or "Officer" in bar)
    # the breadcrumb starts at the district: the city above is not theirs to see
    with store.engine(demo_url).connect() as conn:
        city = conn.execute(sa.text("SELECT name FROM units WHERE parent_id IS NULL")).scalar_one()
    crumbs = dash_duo.find_element("#breadcrumb").text
    assert name in crumbs and city not in crumbs
    # the map draws the district's children only
    codes = dash_duo.driver.execute_async_script(
        "const done = arguments[0]; fetch('/geo/_root.json').then(r => r.json())"
        ".then(j => done(j.features.map(f => f.properties.code)));")
    assert sorted(codes) == sorted(kids)
    _shot(dash_duo, f"officer-district-{lang}")

    # another district in the URL: like a unit that does not exist
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?unit={other}&lang={lang}")
    dash_duo._wait_for(lambda d: other in d.find_element(By.ID, "store-status").text, timeout=20,
                       msg="no message for the foreign unit")
    page = dash_duo.find_element("#page-content").text
    assert other_name not in page
    assert any(r["unit_code"] == other for r in _audit(demo_url, "scope_denied"))

    # sign out: back to the form, and the page needs signing in again
    dash_duo.find_element("#sign-out").click()
    dash_duo.wait_for_element("#signin-message", timeout=10)
    dash_duo.driver.get(f"{dash_duo.server_url}/")
    dash_duo.wait_for_element("#signin-name", timeout=10)
    assert "/login" in dash_duo.driver.current_url
    assert any(r["actor"] == officer for r in _audit(demo_url, "sign_out"))


def test_a_wall_token_opens_its_wall_on_a_fresh_browser(dash_duo, demo_url, use_store):
    use_store(demo_url)
    code, name, kids = _district(demo_url, 1)
    with store.engine(demo_url).begin() as conn:
        key = walltokens.create(conn, "大屏-test", code)
    _serve(dash_duo)
    dash_duo.driver.delete_all_cookies()
    dash_duo.driver.get(f"{dash_duo.server_url}/wall?key={key}")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "wall-city-name").text == name, timeout=20,
                       msg="the wall does not show its district")
    assert "key=" not in dash_duo.driver.current_url  # the key does not stay in the address bar
    expected = json.loads(run_cli("kpi", "--unit", code, "--from", "2000-01-01", "--json", url=demo_url).stdout)
    assert expected["volume"] > 0
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "wall-volume").text not in ("", "…"), timeout=20,
                       msg="the wall's numbers never filled")
    assert not dash_duo.driver.find_elements(By.ID, "user-bar")  # a kiosk: nobody's name on the wall
    strip = dash_duo.find_element("#wall-district-strip").text
    with store.engine(demo_url).connect() as conn:
        kid_names = conn.execute(sa.text("SELECT name FROM units WHERE code = ANY(:c)"), {"c": kids}).scalars().all()
    assert kid_names and all(n[:2] in strip for n in kid_names[:3])
    _shot(dash_duo, "wall-token-zh")
    # the drill-down is not the wall's to open
    dash_duo.driver.get(f"{dash_duo.server_url}/rank")
    assert "wall" in dash_duo.driver.find_element(By.TAG_NAME, "body").text
    # revoked: the next load is refused
    with store.engine(demo_url).begin() as conn:
        walltokens.revoke(conn, "大屏-test")
    dash_duo.driver.get(f"{dash_duo.server_url}/wall")
    dash_duo.wait_for_element("#signin-name", timeout=10)


def _grid_with_contacts(url: str) -> str:
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text("""
            SELECT u.code FROM events e JOIN units u ON u.id = e.grid_id
            WHERE e.reporter_phone IS NOT NULL AND e.reported_at > now() - interval '20 days'
            GROUP BY u.code ORDER BY count(*) DESC LIMIT 1""")).scalar_one()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_duty_officer_reveals_one_contact_with_a_reason(dash_duo, demo_url, use_store, lang):
    use_store(demo_url)
    grid = _grid_with_contacts(demo_url)
    _serve(dash_duo)
    dash_duo.driver.get(f"{dash_duo.server_url}{with_token(f'/?unit={grid}&lang={lang}', sign_in_link('duty'))}")
    rows = "#events-grid .ag-center-cols-container .ag-row"
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, rows), timeout=20, msg="no events")
    with store.engine(demo_url).connect() as conn:
        event_id, name, phone = conn.execute(sa.text("""
            SELECT e.id, e.reporter_name, e.reporter_phone FROM events e JOIN units u ON u.id = e.grid_id
            WHERE u.code = :g AND e.reporter_phone IS NOT NULL AND e.id = ANY(:shown)
            ORDER BY e.reported_at DESC LIMIT 1"""),
            {"g": grid, "shown": [int(r.get_attribute("row-id")) for r in dash_duo.driver.find_elements(By.CSS_SELECTOR, rows)]}
        ).one()
    table = dash_duo.find_element("#events-grid").text
    assert phone not in table and phone[-4:] in table  # masked in the list: 138****5678
    dash_duo.find_element(f"{rows}[row-id='{event_id}'] .ag-cell").click()
    dash_duo._wait_for(lambda d: d.find_elements(By.ID, "reveal-button"), timeout=15, msg="no reveal form")
    assert phone not in dash_duo.find_element("#event-history").text
    # no reason: refused, and on the record
    dash_duo.find_element("#reveal-button").click()
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "reveal-result").text, timeout=10, msg="no answer")
    assert phone not in dash_duo.find_element("#reveal-result").text
    dash_duo.find_element("#reveal-reason").send_keys("回访核实" if lang == "zh" else "call back")
    dash_duo.find_element("#reveal-button").click()
    dash_duo._wait_for(lambda d: phone in d.find_element(By.ID, "reveal-result").text, timeout=10,
                       msg="the contact was not revealed")
    assert name in dash_duo.find_element("#reveal-result").text
    _shot(dash_duo, f"reveal-{lang}")
    mine = [r for r in _audit(demo_url, "reveal_contact") if r["event_id"] == event_id]
    assert [r["outcome"] for r in mine[-2:]] == ["denied", "ok"]
    assert mine[-1]["detail"]["reason"] in ("回访核实", "call back") and mine[-1]["actor"].startswith("test-duty")
    assert not re.search(re.escape(phone), dash_duo.find_element("#events-grid").text)


def test_an_officer_sees_masked_contacts_and_no_reveal(dash_duo, demo_url, use_store):
    use_store(demo_url)
    grid = _grid_with_contacts(demo_url)
    _serve(dash_duo)
    dash_duo.driver.get(f"{dash_duo.server_url}{with_token(f'/?unit={grid}', sign_in_link('officer'))}")
    rows = "#events-grid .ag-center-cols-container .ag-row"
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, rows), timeout=20, msg="no events")
    first = dash_duo.driver.find_elements(By.CSS_SELECTOR, rows)[0]
    first.find_element(By.CSS_SELECTOR, ".ag-cell").click()
    dash_duo._wait_for(lambda d: d.find_elements(By.ID, "event-contact"), timeout=15, msg="no contact line")
    assert not dash_duo.driver.find_elements(By.ID, "reveal-button")
