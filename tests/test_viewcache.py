"""Views many screens share: computed once per (token, scope, arguments), even when asked at once,
across processes through the state folder; a new token or another scope computes again."""
from __future__ import annotations

import multiprocessing
import threading
import time

from cockpit.metrics import viewcache
from cockpit.metrics.viewcache import ViewCache, view_key


def _slow(counter: list, value):
    def compute():
        counter.append(1)
        time.sleep(0.2)  # long enough for every asker to arrive while it runs
        return value
    return compute


def _ask_all(cache: ViewCache, key, compute, n: int = 12) -> list:
    got = [None] * n

    def ask(i):
        got[i] = cache.get(key, compute)
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_one_key_is_computed_once_however_many_ask_at_once(tmp_path):
    cache, calls = ViewCache(tmp_path), []
    key = view_key("1:w10.20", "db", "*", "wall", None)
    got = _ask_all(cache, key, _slow(calls, {"city": 1}))
    assert len(calls) == 1 and got == [{"city": 1}] * 12
    got[0]["city"] = 99  # an asker's copy is its own
    assert cache.get(key, _slow(calls, None)) == {"city": 1} and len(calls) == 1


def test_a_new_token_computes_again(tmp_path):
    cache, calls = ViewCache(tmp_path), []
    assert cache.get(view_key("1:w10.20", "db", "*", "wall", None), _slow(calls, "old")) == "old"
    assert cache.get(view_key("1:w11.20", "db", "*", "wall", None), _slow(calls, "new")) == "new"
    assert cache.get(view_key("1:w11.20~5", "db", "*", "wall", None), _slow(calls, "newer")) == "newer"
    assert len(calls) == 3


def test_each_scope_has_its_own_answer(tmp_path):
    cache, calls = ViewCache(tmp_path), []
    city = cache.get(view_key("1:w1.1", "db", "*", "unit", "440303"), _slow(calls, "the city's view"))
    district = cache.get(view_key("1:w1.1", "db", "unit:440303", "unit", "440303"), _slow(calls, "the district's"))
    assert (city, district) == ("the city's view", "the district's") and len(calls) == 2


def test_no_token_or_turned_off_computes_every_time(tmp_path):
    calls = []
    cache = ViewCache(tmp_path)
    for _ in range(2):
        cache.get(view_key(None, "db", "*", "wall", None), _slow(calls, 1))
    off = ViewCache(tmp_path / "off", enabled=False)
    for _ in range(2):
        off.get(view_key("1:w1.1", "db", "*", "wall", None), _slow(calls, 1))
    assert len(calls) == 4


def test_an_answer_ages_out(tmp_path):
    cache, calls = ViewCache(tmp_path, max_age=0.3), []
    key = view_key("1:w1.1", "db", "*", "wall", None)
    cache.get(key, _slow(calls, 1))
    time.sleep(0.4)
    cache.get(key, _slow(calls, 2))
    assert len(calls) == 2


def test_an_error_reaches_every_waiting_asker_and_is_not_kept(tmp_path):
    cache = ViewCache(tmp_path)
    key = view_key("1:w1.1", "db", "*", "wall", None)

    def fails():
        time.sleep(0.2)
        raise RuntimeError("store gone")
    errors = []

    def ask():
        try:
            cache.get(key, fails)
        except RuntimeError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and cache.get(key, lambda: "back") == "back"


def _worker(directory, key, start, out):
    start.wait()
    cache = ViewCache(directory)

    def compute():
        time.sleep(0.3)
        return "view"
    out.put((cache.get(key, compute), cache.computed))


def test_worker_processes_share_one_computation(tmp_path):
    """Like gunicorn's workers: separate processes, one state folder."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    key = view_key("1:w3.3", "db", "*", "wall", "440303")
    procs = [ctx.Process(target=_worker, args=(tmp_path, key, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    answers = [out.get(timeout=20) for _ in procs]
    for p in procs:
        p.join(10)
    assert [a for a, _ in answers] == ["view"] * 4
    assert sum(n for _, n in answers) == 1


def test_a_district_officer_never_gets_the_citys_cached_view(demo_url, use_store):
    """Through the app: the city-wide admin's drill-down fills the cache first; an officer of one
    district asking the same question gets their own view, the same as with no cache at all."""
    import sqlalchemy as sa

    from conftest import signed_in_client
    from cockpit import store
    from cockpit.callbacks.app import create_app
    from cockpit.metrics import viewcache

    use_store(demo_url)
    with store.engine(demo_url).connect() as conn:
        district = conn.execute(sa.text("SELECT code FROM units WHERE level = 'district' ORDER BY code LIMIT 1")).scalar()
    app = create_app()
    key = next(k for k, v in app.callback_map.items() if "view.data" in k and v["inputs"][0]["id"] == "query")
    outputs = [dict(zip(("id", "property"), p.rsplit(".", 1))) for p in key[2:-2].split("...")]

    def render(client):
        answer = client.post("/_dash-update-component", json={
            "output": key, "outputs": outputs, "inputs": [{"id": "query", "property": "data", "value": "period=7d"}],
            "state": [{"id": "map-kpi", "property": "value", "value": None}, {"id": "lang", "property": "data", "value": "en"}],
            "changedPropIds": ["query.data"]})
        assert answer.status_code == 200
        return answer.get_json()["response"]

    admin, officer = signed_in_client(app), signed_in_client(app, "officer", district)
    city = render(admin)
    assert render(admin) == city  # the second ask: from the cache
    theirs = render(officer)
    assert theirs["kpi-volume"] != city["kpi-volume"] or theirs["store-status"] != city["store-status"]
    state = app.server.extensions["cockpit"].settings.state_dir
    caches = [viewcache.shared(state), viewcache.shared(state, "viewcache-answers")]  # views, whole answers
    for cache in caches:
        cache.enabled = False
    try:
        assert render(officer) == theirs  # what the officer sees with no cache at all
    finally:
        for cache in caches:
            cache.enabled = True


def test_an_answer_built_from_a_view_never_waits_on_its_own_lock(tmp_path):
    """A shared answer is built from shared views: one layer computing asks the one below. With
    one folder for both, a key whose view fell on the answer's lock stripe waited for itself."""

    answers, views = viewcache.shared(tmp_path, "answers"), viewcache.shared(tmp_path, "views")
    key = view_key("1:w1.1", "db", "*", "wall", None)  # the same key: the same stripe in both layers
    done = []
    worker = threading.Thread(target=lambda: done.append(answers.get(key, lambda: views.get(key, lambda: "v"))),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert done == ["v"]


def test_a_state_folder_it_cannot_write_leaves_a_cache_per_process(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    cache, calls = ViewCache(blocked / "viewcache"), []
    key = view_key("1:w1.1", "db", "*", "wall", None)
    assert cache.get(key, _slow(calls, "v")) == "v" and cache.get(key, _slow(calls, "v")) == "v"
    assert cache.directory is None and len(calls) == 1
