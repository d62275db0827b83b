"""The `cockpit` command. A user's mistake gets one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from cockpit.errors import CockpitError

EXIT_USER_ERROR = 2


def _cmd_db(args) -> int:
    from sqlalchemy.engine import make_url

    from cockpit.config import settings
    from cockpit.store.database import describe, managed_cluster

    s = settings()
    if s.database_url and args.action != "url":
        print(f"COCKPIT_DATABASE_URL is set ({describe(s.database_url)}): the managed cluster is not used")
        return 0
    cluster = managed_cluster()
    if args.action == "up":
        url = cluster.up()
        print(f"local PostgreSQL running: {make_url(url).render_as_string(hide_password=True)} "
              "(`cockpit db url [--app]` prints it with its password)")
    elif args.action == "down":
        print("local PostgreSQL stopped" if cluster.down() else "local PostgreSQL was not running")
    elif args.action == "status":
        state = cluster.status()
        print(f"{state}: {cluster.data}" + (f" on port {cluster.port}" if state != "absent" else ""))
        return 0 if state == "running" else 3
    elif args.action == "url":
        if args.writer:
            from cockpit.errors import CockpitError
            from cockpit.store.database import writer_database_url

            url = writer_database_url(s)
            if url is None:
                raise CockpitError("no writer role for this store: set COCKPIT_WRITER_DATABASE_URL "
                                   "(or, on the managed cluster, run `cockpit db up`)")
            print(url)
        else:
            print(s.database_url or cluster.url(role="app" if args.app else "owner"))
    return 0


def _cmd_migrate(args) -> int:
    from cockpit.context import for_admin
    from cockpit.metrics import rollup
    from cockpit.store import migrate

    ctx = for_admin()
    migrate.upgrade(ctx.engine)
    print(f"schema at revision {migrate.current(ctx.engine)} in {ctx.describe()}")
    with ctx.connect() as conn:
        if rollup.ensure_timezone(conn, ctx.timezone):
            print(f"rollups rebuilt for time zone {ctx.timezone.key}")
        conn.commit()
    return 0


def _cmd_rollup(args) -> int:
    import time

    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.metrics import heat, rollup

    ctx = for_admin()
    store.check(ctx.engine)
    with ctx.connect() as conn:
        if args.action == "rebuild":
            started = time.monotonic()
            rollup.rebuild(conn, ctx.timezone)
            heat.rebuild(conn)
            conn.commit()
            print(f"rollups rebuilt in {time.monotonic() - started:.1f} s")
        for line in rollup.status(conn):
            print(line)
    return 0


def _cmd_partitions(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.store import partitions

    if args.action != "detach" and args.before:
        raise CockpitError(f"--before is for partitions detach, not {args.action}")
    if args.action == "detach" and not args.before:
        raise CockpitError("partitions detach needs --before YYYY-MM: the first month kept")
    ctx = for_admin()
    store.check(ctx.engine)
    with ctx.connect() as conn:
        if args.action == "list":
            print(f"{'month':<8} {'events':>12} {'transitions':>12} {'size':>10}")
            for p in partitions.listing(conn):
                print(f"{p['month']:<8} {p['events']:>12,} {p['transitions']:>12,} {p['bytes'] / 2**20:>8.1f} MB")
        elif args.action == "ensure":
            made = partitions.ensure_ahead(conn, args.ahead)
            conn.commit()
            print(f"months created: {', '.join(m.strftime('%Y-%m') for m in made) or 'none (all there)'}")
        else:
            done = partitions.detach_before(conn, args.before)
            conn.commit()
            print(f"detached {len(done['months'])} months ({', '.join(done['months']) or 'none'}) to schema archive: "
                  f"{done['events']:,} events, {done['transitions']:,} transitions; rollups keep their numbers")
            if done["left_in_default"]:
                print(f"{done['left_in_default']:,} events before {args.before} are in the DEFAULT partition "
                      "(months never created): not detached")
    return 0


def _cmd_demo(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.demo.load import count_events, load_demo

    ctx = for_admin()
    eng = ctx.engine
    store.check(eng, reloading=True)
    if args.if_empty and count_events(eng):
        print("the store already holds events: demo not loaded")
        return 0
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise CockpitError(f"--now {args.now!r} is not an ISO timestamp (e.g. 2026-11-23T12:00:00+08:00)")
        if now.tzinfo is None:
            now = now.replace(tzinfo=ctx.timezone)
    load_demo(eng, seed=args.seed, grids=args.grids, events=args.events, days=args.days,
              districts=args.districts, now=now,
              replace=args.replace, progress=lambda line: print(line, flush=True))
    return 0


def _cmd_kpi(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.metrics.kpi import Period, unit_kpi

    ctx = for_admin()
    period = Period.parse(args.date_from, args.date_to, ctx.timezone)
    store.check(ctx.engine)
    with ctx.connect() as conn:
        result = unit_kpi(conn, args.unit, period)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        from cockpit.ui.formatting import count, percent

        u, p = result["unit"], result["period"]
        print(f"{u['name']} ({u['code']}, {u['level']})  {p['from']} .. {p['to']} (both included), {p['timezone']}")
        print(f"  volume             {count(result['volume'])}")
        print(f"  closure rate       {percent(result['closure_rate'])}  ({result['closed']}/{result['volume']})")
        print(f"  on-time rate       {percent(result['on_time_rate'])}  "
              f"({result['closed_on_time']}/{result['closed']})")
        print(f"  satisfaction rate  {percent(result['satisfaction_rate'])}  "
              f"({result['satisfied']}/{result['rated']})")
    return 0


def _cmd_report(args) -> int:
    import os

    from cockpit import reports, store
    from cockpit.context import for_admin
    from cockpit.reports.content import gather
    from cockpit.ui.i18n import LANGS

    fmt = args.format or os.path.splitext(args.out)[1].lstrip(".").lower()
    if fmt not in reports.FORMATS:
        raise CockpitError(f"--format {fmt or '(none)'}: choose one of {', '.join(reports.FORMATS)} "
                           "(or end --out with .xlsx or .pdf)")
    if args.lang not in LANGS:
        raise CockpitError(f"--lang {args.lang!r}: choose one of {', '.join(LANGS)}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out) or not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
        # said before the report is made, not after
        raise CockpitError(f"--out {args.out}: cannot write there (" + (
            "a folder" if os.path.isdir(args.out) else "no such folder" if not os.path.isdir(out_dir)
            else "folder not writable") + ")")
    ctx = for_admin()
    store.check(ctx.engine)
    with ctx.connect() as conn:
        report = gather(conn, ctx.timezone, period_text=args.period, level=args.level, by=args.by,
                        group=args.group, source=args.source, lang=args.lang)
    data = reports.render(report, fmt)
    try:
        with open(args.out, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise CockpitError(f"--out {args.out}: {exc.strerror or exc}") from None
    print(f"{args.out}  {len(data):,} bytes  ({report.title} · {report.period_name})")
    return 0


def _cmd_simulate(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.demo import simulate

    if args.rate <= 0:
        raise CockpitError("--rate must be above 0 (events per second)")
    eng = for_admin().engine
    store.check(eng)
    print(f"simulate: about {args.rate:g} new events a second; Ctrl-C stops", flush=True)
    done = simulate.run(eng, rate=args.rate, seconds=args.seconds, seed=args.seed,
                        progress=lambda line: print(line, flush=True))
    print(f"simulate: {done['created']:,} new events, {done['moved']:,} moved on in {done['seconds']:.0f} s")
    return 0


def _cmd_import_units(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    import os

    import sqlalchemy as sa

    from cockpit.access import audit
    from cockpit.access.people import CLI_PERSON
    from cockpit.ingest.units import import_units, load_mapping
    from cockpit.store.schema import LEVELS

    bad = [lv for lv, _ in args.level or [] if lv not in LEVELS]
    if bad:
        raise CockpitError(f"--level {bad[0]}: levels are {', '.join(LEVELS)} (map a file's own level names "
                           "onto these)")
    sources = [(lv, path) for lv, path in args.level or []] + [(None, path) for path in args.files]
    mapping = load_mapping(args.mapping, {"code": args.code_field, "name": args.name_field,
                                          "parent": args.parent_field, "population": args.population_field,
                                          "level": args.level_field}, args.level_value or [])
    ctx = for_admin()
    store.check(ctx.engine)
    count = sa.text("SELECT count(*) FROM units")
    with ctx.connect() as conn:
        before = conn.execute(count).scalar()
        lines = import_units(conn, sources, mapping, source_crs=args.source_crs, coords=args.coords,
                             city_code=args.city_code, city_name=args.city_name, replace=args.replace)
        after = conn.execute(count).scalar()
        audit.record(conn, CLI_PERSON, "import_units", files=[os.path.basename(path) for _, path in sources],
                     units=after, units_before=before, replace=args.replace or None)
        conn.commit()
    for line in lines:
        print(line)
    return 0


def _cmd_serve(args) -> int:
    from cockpit import store
    from cockpit.config import settings
    from cockpit.serve import serve

    s = settings()
    store.check(store.engine(store.app_database_url(s)))  # the web app reads as the unprivileged role
    serve(s, host=args.host, port=args.port, workers=args.workers, threads=args.threads)
    return 0


def _cmd_api_token(args) -> int:
    from cockpit import store
    from cockpit.access import audit, tokens
    from cockpit.access.people import CLI_PERSON
    from cockpit.context import for_admin

    if args.action == "revoke" and not args.name.strip():
        raise CockpitError("api-token revoke needs the token's name: cockpit api-token revoke NAME")
    if args.scope is not None and args.action != "create":
        raise CockpitError(f"--scope is for api-token create, not {args.action}")
    ctx = for_admin()
    store.check(ctx.engine)
    with ctx.connect() as conn:
        if args.action == "create":
            scope = "write" if args.write else "read"
            token = tokens.create(conn, args.name, scope, args.scope)
            code = _scope_code(args.scope)
            audit.record(conn, CLI_PERSON, "api_token_create", unit_code=code, name=args.name.strip(), scope=scope)
            conn.commit()
            print(f"API token for {args.name.strip()!r}, {scope}, {_scope_text(code)} (shown once; keep it secret):\n"
                  f"{token}")
        elif args.action == "revoke":
            tokens.revoke(conn, args.name)
            audit.record(conn, CLI_PERSON, "api_token_revoke", name=args.name)
            conn.commit()
            print(f"revoked the token named {args.name!r}")
        else:
            rows = tokens.listing(conn)
            for r in rows:
                state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "live"
                print(f"{r['name']}\t{r['scope']}\t{r['scope_code'] or '*'}\tmade {r['created_at']:%Y-%m-%d %H:%M}\t"
                      f"{state}")
            if not rows:
                print("no API tokens yet: `cockpit api-token create NAME`")
    return 0


DEFAULT_BASE_URL = "http://127.0.0.1:8050"


def _scope_code(scope: str | None) -> str | None:
    """A --scope as stored: None for the whole city ('*' or nothing)."""
    code = (scope or "").strip()
    return None if code in ("", "*") else code


def _scope_text(code: str | None) -> str:
    return "whole city" if code is None else f"scope {code}"


def _base(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CockpitError(f"--base-url {url!r}: give the address users open, e.g. https://cockpit.example.org")
    return url


def _new_password(args, name: str) -> str:
    """The password from stdin (--password-stdin) or asked twice on a terminal."""
    from cockpit.access.users import check_password

    if args.password_stdin:
        line = sys.stdin.readline()
        return check_password(line.rstrip("\r\n"))
    if not sys.stdin.isatty():
        raise CockpitError("no terminal to ask for the password: pipe it in with --password-stdin")
    import getpass

    try:
        first = check_password(getpass.getpass(f"new password for {name}: "))
        second = getpass.getpass("again: ")
    except EOFError:
        raise CockpitError("no password given") from None
    if first != second:
        raise CockpitError("the two passwords differ: nothing changed")
    return first


def _when(t, tz) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M") if t is not None else "-"


def _iso(t, tz) -> str | None:
    return t.astimezone(tz).isoformat() if t is not None else None


def _cmd_user(args) -> int:
    from cockpit import store
    from cockpit.access import audit, users
    from cockpit.access.people import CLI_PERSON
    from cockpit.context import for_admin

    base = _base(args.base_url) if getattr(args, "base_url", None) is not None else None
    ctx = for_admin()
    store.check(ctx.engine)
    tz = ctx.timezone
    with ctx.connect() as conn:
        if args.action == "list":
            rows = users.listing(conn)
            now = datetime.now(tz)
            for r in rows:
                state = ("disabled" if r["disabled_at"] else
                         "locked" if r["locked_until"] is not None and r["locked_until"] > now else "active")
                if args.json:
                    print(json.dumps({"name": r["name"], "role": r["role"], "scope": r["scope_code"] or "*",
                                      "state": state, "password": r["has_password"],
                                      "created_at": _iso(r["created_at"], tz),
                                      "last_sign_in_at": _iso(r["last_sign_in_at"], tz),
                                      "disabled_at": _iso(r["disabled_at"], tz)}, ensure_ascii=False))
                else:
                    print(f"{r['name']}\t{r['role']}\t{r['scope_code'] or '*'}\t{state}\t"
                          f"{'password' if r['has_password'] else 'no password'}\t"
                          f"last sign-in {_when(r['last_sign_in_at'], tz)}")
            if not rows and not args.json:
                print("no users yet: `cockpit user add NAME --role leader|officer|duty|admin`")
            return 0
        name = args.name.strip()
        if args.action == "add":
            users.check_role(args.role)
            password = _new_password(args, name) if args.password_stdin else None
            person = users.create(conn, name, args.role, args.scope, password=password)
            token = users.issue_link(conn, name) if password is None else None
            audit.record(conn, CLI_PERSON, "user_add", unit_code=person.scope_code, user=name, role=args.role,
                         password=password is not None)
            conn.commit()
            print(f"user {name!r} added: {args.role}, {_scope_text(person.scope_code)}")
            if token:
                print(f"one-time sign-in link (valid {users.LINK_MINUTES // 60} h; shown once):\n{base}/?token={token}")
        elif args.action == "disable":
            users.disable(conn, name)
            audit.record(conn, CLI_PERSON, "user_disable", user=name)
            conn.commit()
            print(f"user {name!r} disabled (signed-in sessions end at their next request)")
        elif args.action == "passwd":
            users._row(conn, name)  # an unknown name is said before the password is asked for
            users.set_password(conn, name, _new_password(args, name))
            audit.record(conn, CLI_PERSON, "user_passwd", user=name)
            conn.commit()
            print(f"password of {name!r} changed")
        elif args.action == "link":
            token = users.issue_link(conn, name)
            audit.record(conn, CLI_PERSON, "user_link", user=name)
            conn.commit()
            print(f"one-time sign-in link for {name!r} (valid {users.LINK_MINUTES // 60} h; replaces any earlier "
                  f"one):\n{base}/?token={token}")
    return 0


def _cmd_wall_token(args) -> int:
    from cockpit import store
    from cockpit.access import audit, walltokens
    from cockpit.access.people import CLI_PERSON
    from cockpit.context import for_admin

    base = _base(args.base_url) if getattr(args, "base_url", None) is not None else None
    ctx = for_admin()
    store.check(ctx.engine)
    tz = ctx.timezone
    with ctx.connect() as conn:
        if args.action == "create":
            token = walltokens.create(conn, args.name, args.scope)
            code = _scope_code(args.scope)
            audit.record(conn, CLI_PERSON, "wall_token_create", unit_code=code, name=args.name.strip())
            conn.commit()
            print(f"wall screen {args.name.strip()!r}, {_scope_text(code)}: open this on the screen "
                  f"(shown once; `cockpit wall-token revoke {args.name.strip()}` ends it):\n{base}/wall?key={token}")
        elif args.action == "revoke":
            walltokens.revoke(conn, args.name)
            audit.record(conn, CLI_PERSON, "wall_token_revoke", name=args.name)
            conn.commit()
            print(f"revoked the wall token named {args.name!r}")
        else:
            rows = walltokens.listing(conn)
            for r in rows:
                if args.json:
                    print(json.dumps({"name": r["name"], "scope": r["scope_code"] or "*",
                                      "created_at": _iso(r["created_at"], tz),
                                      "revoked_at": _iso(r["revoked_at"], tz)}, ensure_ascii=False))
                else:
                    state = f"revoked {_when(r['revoked_at'], tz)}" if r["revoked_at"] else "live"
                    print(f"{r['name']}\t{r['scope_code'] or '*'}\tmade {_when(r['created_at'], tz)}\t{state}")
            if not rows and not args.json:
                print("no wall tokens yet: `cockpit wall-token create --name NAME [--scope UNIT_CODE]`")
    return 0


def _cmd_audit(args) -> int:
    from cockpit import store
    from cockpit.access import audit
    from cockpit.context import for_admin

    if args.limit < 1:
        raise CockpitError("--limit must be 1 or more")
    ctx = for_admin()
    tz = ctx.timezone
    since = None
    if args.since is not None:
        text = args.since.strip()
        try:
            since = datetime.fromisoformat(text)
        except ValueError:
            raise CockpitError(f"--since {args.since!r} is not a day or a time (e.g. 2026-12-01 or "
                               "2026-12-01T08:00)") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=tz)  # the city's local day or time
    store.check(ctx.engine)
    with ctx.connect() as conn:
        rows = audit.query(conn, since=since, user=args.user, action=args.action, limit=args.limit)
    for r in rows:
        if args.json:
            print(json.dumps({**r, "at": r["at"].astimezone(tz).isoformat()}, ensure_ascii=False))
        else:
            print(audit.as_line(r, tz))
    if not rows and not args.json:
        print("nothing in the audit log" + (" for this selection" if args.since or args.user or args.action else ""),
              file=sys.stderr)
    return 0


def _mapping_and_tz(args):
    """The import's mapping and time zone from the flags import-events and quarantine retry share."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from cockpit.context import for_admin
    from cockpit.ingest import events as ingest

    mapping = ingest.build_mapping(preset=args.preset, mapping_file=args.mapping, maps=args.map or [],
                                   values=args.value or [], source=args.source,
                                   fmt=getattr(args, "format", None), time_formats=args.time_format or [],
                                   default_deadline_hours=args.default_deadline_hours,
                                   approximate_points=args.approximate_point or [],
                                   approximate_min_rows=args.approximate_min_rows,
                                   approximate_min_share=args.approximate_min_share,
                                   approximate_ratio=args.approximate_ratio)
    ctx = for_admin()
    tz = ctx.timezone
    if args.tz:
        try:
            tz = ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CockpitError(f"--tz {args.tz!r} is not an IANA time zone (e.g. Asia/Shanghai, America/New_York)")
    return ctx, mapping, tz


def _import_progress(verbose: bool):
    """The importer's progress on stderr: on a terminal the rows read as one line redrawn in place
    (rows, rows/s), elsewhere nothing; with --verbose every line (the store's steps and times too)."""
    tty = sys.stderr.isatty()
    redrawn = False

    def show(line: str) -> None:
        nonlocal redrawn
        if tty and line.startswith("read "):
            print("\r\033[K" + line, end="", file=sys.stderr, flush=True)
            redrawn = True
        elif verbose:
            print(("\n" if redrawn else "") + line, file=sys.stderr, flush=True)
            redrawn = False

    return show


def _import_counts(d: dict) -> dict:
    """What the audit row of an import keeps of its summary."""
    return {k: d[k] for k in ("import_id", "read", "inserted", "updated", "unchanged", "quarantined")}


def _cmd_import_events(args) -> int:
    import os

    from cockpit import store
    from cockpit.access import audit
    from cockpit.access.people import CLI_PERSON
    from cockpit.ingest import events as ingest

    ctx, mapping, tz = _mapping_and_tz(args)
    store.check(ctx.engine)
    with ctx.connect() as conn:
        result = ingest.import_events(conn, args.file, mapping, tz, rejects=args.rejects, encoding=args.encoding,
                                      progress=_import_progress(args.verbose))
        audit.record(conn, CLI_PERSON, "import_events", outcome="ok" if result.loaded else "failed",
                     file=os.path.basename(args.file), **_import_counts(result.as_dict()))
        conn.commit()
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(result.lines()))
    if not result.loaded:
        raise CockpitError(f"{args.file}: nothing could be loaded ({sum(result.quarantined.values()):,} rows "
                           f"quarantined, import {result.import_id})")
    return 0


def _cmd_quarantine(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.access import audit
    from cockpit.access.people import CLI_PERSON
    from cockpit.ingest import quarantine

    if args.action != "export" and args.file:
        raise CockpitError(f"quarantine {args.action} takes no file ({args.file!r}); only export writes one")
    if args.action == "export" and not args.file:
        raise CockpitError("quarantine export needs the CSV file to write: cockpit quarantine export FILE.csv")
    if args.limit < 1:
        raise CockpitError("--limit must be 1 or more")
    if args.action != "retry":
        given = [f for f, v in (("--preset", args.preset), ("--mapping", args.mapping), ("--map", args.map),
                                ("--value", args.value), ("--source", args.source), ("--tz", args.tz),
                                ("--time-format", args.time_format),
                                ("--default-deadline-hours", args.default_deadline_hours),
                                ("--approximate-point", args.approximate_point),
                                ("--approximate-min-rows", args.approximate_min_rows),
                                ("--approximate-min-share", args.approximate_min_share),
                                ("--approximate-ratio", args.approximate_ratio)) if v]
        if given:
            raise CockpitError(f"{given[0]} is for quarantine retry, not {args.action}")
        ctx = for_admin()
    else:
        ctx, mapping, tz = _mapping_and_tz(args)
    store.check(ctx.engine)
    with ctx.connect() as conn:
        if args.action == "list":
            groups = quarantine.counts(conn, args.import_id, args.reason)
            if not groups:
                print("nothing in quarantine" + (" for this selection" if args.import_id or args.reason else ""))
                return 0
            last = None
            for g in groups:
                if g["import_id"] != last:
                    last = g["import_id"]
                    print(f"import {last}  {g['file_name']}  ({g['started_at']:%Y-%m-%d %H:%M})")
                print(f"  {g['reason']:<24} {g['n']:>10,}  ({quarantine.REASONS[g['reason']]})")
            print(f"total {sum(g['n'] for g in groups):,} rows in quarantine")
            if args.import_id is not None:
                shown = quarantine.rows(conn, args.import_id, args.reason, limit=args.limit)
                for r in shown:
                    print(f"  row {r['row']:>8}  {r['reason']:<24} {r['raw']}")
                total = sum(g["n"] for g in groups)
                if total > len(shown):
                    print(f"  … {total - len(shown):,} more rows (--limit, or export them)")
        elif args.action == "export":
            n = quarantine.export(conn, args.file, args.import_id, args.reason)
            print(f"{n:,} quarantined rows written to {args.file}")
        else:
            done = quarantine.retry(conn, mapping, tz, args.import_id, args.reason,
                                    progress=_import_progress(args.verbose))
            if done:
                audit.record(conn, CLI_PERSON, "quarantine_retry",
                             outcome="ok" if any(res.loaded for res, _, _ in done) else "failed",
                             import_id=args.import_id, reason=args.reason,
                             left=sum(d[1] for d in done), kept=sum(d[2] for d in done),
                             imports=[_import_counts(res.as_dict()) for res, _, _ in done])
            conn.commit()
            if not done:
                print("nothing in quarantine to retry" + (" for this selection" if args.import_id or args.reason
                                                          else ""))
                return 0
            left, kept = sum(d[1] for d in done), sum(d[2] for d in done)
            if args.json:
                print(json.dumps([{**res.as_dict(), "left_quarantine": n_left, "still_quarantined": n_kept}
                                  for res, n_left, n_kept in done], ensure_ascii=False, indent=2))
            else:
                for res, _, _ in done:
                    print("\n".join(res.lines()))
                print(f"left the quarantine: {left:,}; still quarantined (under their own imports): {kept:,}")
            if not any(res.loaded for res, _, _ in done):
                raise CockpitError(f"nothing could be loaded: the {kept:,} rows stay in quarantine with the reasons "
                                   "of this attempt (`cockpit quarantine list`)")
    return 0


def _mapping_args(p: argparse.ArgumentParser, retry: bool = False) -> None:
    """The mapping flags of import-events, also taken by quarantine retry."""
    p.add_argument("--preset", help="a shipped mapping: open311, hotline12345")
    p.add_argument("--mapping", metavar="FILE.toml", help="column and value mapping (overrides the preset)")
    p.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                   help="map one of our fields to the file's column (repeatable; overrides the mapping file)")
    p.add_argument("--value", action="append", metavar="FIELD:THEIRS=OURS",
                   help="map a status, source or rating value, e.g. status:已办结=closed (repeatable)")
    p.add_argument("--source", help="the source of every row (when the file has no source column)")
    if not retry:  # quarantined rows are records already: no file format to tell
        p.add_argument("--format", choices=["csv", "parquet", "jsonl", "open311"], help="default: from the file name")
    p.add_argument("--tz", help="IANA zone of local times without an offset (default COCKPIT_TIMEZONE)")
    p.add_argument("--time-format", action="append", metavar="STRFTIME",
                   help="a local time format tried before ISO 8601, e.g. '%%m/%%d/%%Y %%I:%%M:%%S %%p' (repeatable)")
    p.add_argument("--default-deadline-hours", type=float,
                   help="deadline for rows with none and a category without deadline_hours")
    p.add_argument("--approximate-point", action="append", metavar="LON,LAT",
                   help="a known geocoding fallback point: its rows are flagged approximate (repeatable)")
    p.add_argument("--approximate-min-rows", type=int, metavar="N",
                   help="a fallback point holds at least N rows (default 50)")
    p.add_argument("--approximate-min-share", type=float, metavar="FRACTION",
                   help="… and at least this share of the rows with coordinates (default 0.01)")
    p.add_argument("--approximate-ratio", type=float, metavar="R",
                   help="… and R times the rows of the densest real place (default 5)")


def _cmd_rank(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.metrics.ranking import rank

    ctx = for_admin()
    store.check(ctx.engine)
    with ctx.connect() as conn:
        table = rank(conn, ctx.timezone, level=args.level, period_text=args.period, group=args.group,
                     source=args.source, by=args.by)
    rows = table.as_dicts()
    if args.json:
        print(json.dumps({**table.header(), "rows": rows}, ensure_ascii=False, indent=2))
    elif args.csv:
        import csv

        out = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["rank"], lineterminator="\n")
        out.writeheader()
        for r in rows:
            out.writerow({**r, "trend": ";".join("" if x is None else f"{x:.2f}" for x in r["trend"])})
    else:
        from cockpit.ui.ranking_table import text_table

        from cockpit.config import settings

        print(text_table(table, settings().lang))
    return 0


def _cmd_hotspots(args) -> int:
    from cockpit import store
    from cockpit.context import for_admin
    from cockpit.hotspots import store as hot
    from cockpit.store.schema import WARNING_KINDS

    ctx = for_admin()
    at = None
    if args.at is not None:
        try:
            at = datetime.fromisoformat(args.at.strip())
        except ValueError:
            raise CockpitError(f"--at {args.at!r} is not a timestamp (e.g. 2026-11-30T18:00 or 2026-11-30 18:00+08:00)")
        if at.tzinfo is None:
            at = at.replace(tzinfo=ctx.timezone)  # the city's local time
    if args.kind is not None and args.kind not in WARNING_KINDS:
        raise CockpitError(f"--kind {args.kind!r} must be one of {', '.join(WARNING_KINDS)}")
    store.check(ctx.engine)
    with ctx.connect() as conn:
        if args.run:
            result = hot.run(conn, ctx.timezone, at)
            conn.commit()
            found = hot.in_force(conn, result.at, args.unit, args.kind)
        else:
            found = hot.recompute(conn, at, args.unit, args.kind)
    if args.json:
        print(json.dumps([w.as_json() for w in found], ensure_ascii=False, indent=2))
        return 0
    from cockpit.config import settings

    lang = settings().lang
    if not found:
        print("no warnings in force" if lang == "en" else "当前无预警")
    for w in found:
        print(f"{w.kind:<10} {w.unit_code:<22} {w.unit_name}  {w.explain(lang)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cockpit", description="City operations cockpit (数字驾驶舱) on PostGIS")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="the project-managed local PostgreSQL: up | down | status | url [--app|--writer]")
    db.add_argument("action", choices=["up", "down", "status", "url"])
    role = db.add_mutually_exclusive_group()
    role.add_argument("--app", action="store_true",
                      help="with url: the web app's read-only role (cockpit_app) instead of the owner")
    role.add_argument("--writer", action="store_true",
                      help="with url: the role that stores events POSTed to the API (cockpit_writer)")
    db.set_defaults(func=_cmd_db)

    sub.add_parser("migrate", help="create or upgrade the store's schema (Alembic)").set_defaults(func=_cmd_migrate)

    roll = sub.add_parser("rollup", help="the drill-down's pre-aggregated tables: status | rebuild")
    roll.add_argument("action", choices=["status", "rebuild"])
    roll.set_defaults(func=_cmd_rollup)

    parts = sub.add_parser("partitions", help="monthly partitions of the events: list | ensure [--ahead N] | "
                                              "detach --before YYYY-MM")
    parts.add_argument("action", choices=["list", "ensure", "detach"])
    parts.add_argument("--before", metavar="YYYY-MM", help="detach: every month before this one")
    parts.add_argument("--ahead", type=int, default=3, help="ensure: months after the current one (default 3)")
    parts.set_defaults(func=_cmd_partitions)

    demo = sub.add_parser("demo", help="load the deterministic demo city and its events")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--grids", type=int, default=3000, help="number of grids (default 3000)")
    demo.add_argument("--events", type=int, default=511_000, help="events over the period (default ~1,400/day)")
    demo.add_argument("--days", type=int, default=365, help="length of the period, ending now (default 365)")
    demo.add_argument("--districts", type=int,
                      help="number of districts (top-level units); default: one per 500 grids, 2..16")
    demo.add_argument("--now", help="the demo's 'now' (ISO timestamp); default: the current time")
    demo.add_argument("--replace", action="store_true", help="wipe a store that already holds events")
    demo.add_argument("--if-empty", action="store_true", help="do nothing if the store holds events")
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser("simulate", help="stream realistic new events (and progress old ones) until stopped")
    sim.add_argument("--rate", type=float, default=5.0, help="new events per second (default 5)")
    sim.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    sim.add_argument("--seed", type=int)
    sim.set_defaults(func=_cmd_simulate)

    serve = sub.add_parser("serve", help="serve the cockpit web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8050)
    serve.add_argument("--workers", type=int, help="worker processes (default COCKPIT_WORKERS, 2)")
    serve.add_argument("--threads", type=int, help="app threads per worker, beside its connection loop (default COCKPIT_THREADS, 4)")
    serve.set_defaults(func=_cmd_serve)

    tok = sub.add_parser("api-token", help="bearer tokens for the HTTP API: create NAME [--write] | list | revoke NAME")
    tok.add_argument("action", choices=["create", "list", "revoke"])
    tok.add_argument("name", nargs="?", default="", help="who or what uses the token (create, revoke)")
    tok.add_argument("--write", action="store_true",
                     help="with create: the token may also send events (POST /api/events); default: read only")
    tok.add_argument("--scope", metavar="UNIT_CODE",
                     help="with create: the token reads this unit's subtree only (default, or '*': the whole city)")
    tok.set_defaults(func=_cmd_api_token)

    usr = sub.add_parser("user", help="accounts of the web app: add | list | disable | passwd | link",
                         description="Accounts of the web app (README, 'Users, roles and scope'). A user without a "
                                     "password signs in with a one-time link.")
    usub = usr.add_subparsers(dest="action", required=True, metavar="ACTION")
    u_add = usub.add_parser("add", help="a new account; prints a one-time sign-in link unless --password-stdin")
    u_add.add_argument("name", metavar="NAME")
    u_add.add_argument("--role", required=True, metavar="ROLE", help="leader, officer, duty or admin")
    u_add.add_argument("--scope", metavar="UNIT_CODE",
                       help="the unit whose subtree the user sees (default, or '*': the whole city)")
    u_add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    u_add.add_argument("--base-url", default=DEFAULT_BASE_URL,
                       help=f"the address users open, for the link (default {DEFAULT_BASE_URL})")
    u_list = usub.add_parser("list", help="the accounts, their roles, scopes and states")
    u_list.add_argument("--json", action="store_true", help="one JSON object per line")
    u_dis = usub.add_parser("disable", help="stop an account (its sessions end at their next request)")
    u_dis.add_argument("name", metavar="NAME")
    u_pw = usub.add_parser("passwd", help="set an account's password (asked twice on a terminal)")
    u_pw.add_argument("name", metavar="NAME")
    u_pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    u_link = usub.add_parser("link", help="a new one-time sign-in link (replaces any earlier one)")
    u_link.add_argument("name", metavar="NAME")
    u_link.add_argument("--base-url", default=DEFAULT_BASE_URL,
                        help=f"the address users open (default {DEFAULT_BASE_URL})")
    usr.set_defaults(func=_cmd_user)

    wall = sub.add_parser("wall-token", help="kiosk URLs of wall screens: create --name NAME | list | revoke NAME")
    wsub = wall.add_subparsers(dest="action", required=True, metavar="ACTION")
    w_new = wsub.add_parser("create", help="a new kiosk URL (<base>/wall?key=…), shown once")
    w_new.add_argument("--name", required=True, help="which screen it is for")
    w_new.add_argument("--scope", metavar="UNIT_CODE",
                       help="the unit whose subtree the wall shows (default, or '*': the whole city)")
    w_new.add_argument("--base-url", default=DEFAULT_BASE_URL,
                       help=f"the address the screen opens (default {DEFAULT_BASE_URL})")
    w_list = wsub.add_parser("list", help="the wall tokens, live and revoked")
    w_list.add_argument("--json", action="store_true", help="one JSON object per line")
    w_rev = wsub.add_parser("revoke", help="end a wall token (its screens stop at their next request)")
    w_rev.add_argument("name", metavar="NAME")
    wall.set_defaults(func=_cmd_wall_token)

    aud = sub.add_parser("audit", help="the audit trail, newest first (sign-ins, reveals, downloads, admin acts)",
                         description="The audit log (留痕), newest first, times in the city's time zone "
                                     "(COCKPIT_TIMEZONE). Actions: see README, 'Personal data and audit'.")
    aud.add_argument("--since", metavar="YYYY-MM-DD|ISO TIME", help="only rows from then on (local time of the city "
                                                                     "unless an offset is given)")
    aud.add_argument("--user", metavar="NAME", help="only this actor's rows")
    aud.add_argument("--action", metavar="ACTION", help="only this action, e.g. reveal_contact or sign_in")
    aud.add_argument("--limit", type=int, default=100, help="rows shown (default 100)")
    aud.add_argument("--json", action="store_true", help="JSON lines")
    aud.set_defaults(func=_cmd_audit)

    kpi = sub.add_parser("kpi", help="一量三率 of a unit over a period",
                         description="一量三率 of a unit for the events reported from --from to --to, both days "
                                     "included (local days of COCKPIT_TIMEZONE), as in the drill-down's URL "
                                     "and in the JSON's period.")
    kpi.add_argument("--unit", required=True, help="unit code, e.g. 440300 or 440303-001")
    kpi.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD",
                     help="first local day included (default: 29 days before --to: 30 days)")
    kpi.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last local day included (default: today)")
    kpi.add_argument("--json", action="store_true", help="machine-readable output")
    kpi.set_defaults(func=_cmd_kpi)

    rk = sub.add_parser("rank", help="league table of one level's units or of the departments (一量三率)",
                        description="Rank the units of a level (or the departments) for a period, as /rank shows "
                                    "it: score from the 95%% Wilson lower bounds of the three rates "
                                    "(COCKPIT_RANK_WEIGHTS), units under COCKPIT_RANK_MIN_VOLUME events not ranked.")
    rk.add_argument("--level", help="district, street, community, grid... (the city's levels; default: the level "
                                    "below the city)")
    rk.add_argument("--period", required=True,
                    help="2026-10 (month), 2026-W44 (ISO week), 2026-Q4 or 2026-10-01..2026-10-15 (days, both included)")
    rk.add_argument("--group", help="only this category group (code)")
    rk.add_argument("--source", help="only this channel, e.g. hotline_12345")
    rk.add_argument("--by", choices=["unit", "department"], default="unit",
                    help="department: rank 承办部门 (events.department_id) instead of units")
    fmt = rk.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--csv", action="store_true", help="the rows as CSV")
    rk.set_defaults(func=_cmd_rank)

    hot = sub.add_parser("hotspots", help="hotspot warnings in force: surges, recurrences, clusters",
                         description="Recompute hotspot warnings as of a time (default now) and print them; "
                                     "--run also stores them in the warnings table, as the server's schedule does. "
                                     "Parameters: COCKPIT_HOTSPOT_* (README, Hotspot warnings).")
    hot.add_argument("--at", help="as of this time (ISO, local time of the city unless an offset is given)")
    hot.add_argument("--unit", help="only warnings in this unit's subtree (unit code)")
    hot.add_argument("--kind", help="only surge, recurrence or cluster")
    hot.add_argument("--json", action="store_true", help="machine-readable output")
    hot.add_argument("--run", action="store_true", help="store the result (new, kept, expired warnings)")
    hot.set_defaults(func=_cmd_hotspots)

    imp = sub.add_parser("import-units", help="load a city's own unit boundaries (GeoJSON, GeoPackage, Shapefile)",
                         description="Load unit boundaries: one file per level (--level district FILE) or files "
                                     "with a level field. Re-importing the same city updates it in place by code.")
    imp.add_argument("files", nargs="*", metavar="FILE", help="files whose units carry their level (--level-field)")
    imp.add_argument("--level", nargs=2, action="append", metavar=("LEVEL", "FILE"),
                     help="a file holding the units of one level (city, district, street, community, grid); repeat")
    imp.add_argument("--mapping", metavar="FILE", help="TOML/YAML: code, name, parent, population, level fields "
                                                       "(and a table per level, [levels] for level values)")
    for key, what in (("code", "the unit's code (default: code)"), ("name", "its name (default: name)"),
                      ("parent", "its parent's code (default: parent_code if present, else found spatially)"),
                      ("population", "residents (default: population if present)"),
                      ("level", "its level, in files given without --level")):
        imp.add_argument(f"--{key}-field", metavar="FIELD", help=f"the property holding {what}")
    imp.add_argument("--level-value", action="append", metavar="VALUE=LEVEL",
                     help="map a level field's value onto a level, e.g. 街道=street; repeat")
    imp.add_argument("--source-crs", metavar="EPSG:…", help="the CRS of files that declare none")
    imp.add_argument("--coords", choices=["wgs84", "gcj02", "bd09"], default="wgs84",
                     help="lon/lat taken from a Chinese web map: gcj02 (AMap, Tencent) or bd09 (Baidu)")
    imp.add_argument("--city-code", help="code of the city made from the top level when the files have no city")
    imp.add_argument("--city-name", help="its name (default 全市)")
    imp.add_argument("--replace", action="store_true",
                     help="remove the city in the store, with all its events, if it is another one")
    imp.set_defaults(func=_cmd_import_units)
    ev_imp = sub.add_parser("import-events", help="load a file of events (CSV, CSV.gz, Parquet, JSON lines, Open311)",
                         description="Load events from a file into the store: idempotent on (source, external id); "
                                     "rows that cannot be loaded are quarantined with their reason "
                                     "(docs/schema.md §4, 'Importing files').")
    ev_imp.add_argument("file")
    _mapping_args(ev_imp)
    ev_imp.add_argument("--rejects", metavar="FILE.csv", help="also write the quarantined rows here")
    ev_imp.add_argument("--encoding", default="utf-8-sig",
                     help="text encoding of CSV / JSON files (default UTF-8; many 12345 exports are gb18030)")
    ev_imp.add_argument("--json", action="store_true", help="the summary as JSON")
    ev_imp.add_argument("--verbose", action="store_true", help="progress on stderr")
    ev_imp.set_defaults(func=_cmd_import_events)

    qua = sub.add_parser("quarantine", help="rows import-events could not load: list | export FILE.csv | retry",
                         description="list: quarantined rows per import and reason (with --import, the rows); "
                                     "export FILE.csv: them as CSV (row, reason, the file's columns); retry: load "
                                     "them again with a fixed mapping (the import-events mapping flags): rows "
                                     "that load leave the quarantine, the others stay with their new reason.")
    qua.add_argument("action", choices=["list", "export", "retry"])
    qua.add_argument("file", nargs="?", metavar="FILE.csv", help="export: the CSV to write")
    qua.add_argument("--import", dest="import_id", type=int, metavar="ID", help="only this import's rows")
    qua.add_argument("--reason", help="only rows quarantined for this reason (e.g. unmapped_status)")
    qua.add_argument("--limit", type=int, default=50, help="list --import: rows shown (default 50)")
    _mapping_args(qua, retry=True)
    qua.add_argument("--json", action="store_true", help="retry: the summary as JSON")
    qua.add_argument("--verbose", action="store_true", help="retry: progress on stderr")
    qua.set_defaults(func=_cmd_quarantine)

    rep = sub.add_parser("report", help="weekly / monthly report as xlsx or pdf (一量三率, ranking, categories, "
                                        "overdue, 督办)",
                         description="A report for a period: the city's 一量三率 against the previous period, the "
                                     "ranking of a level's units (as `cockpit rank`), top categories, overdue and "
                                     "supervised events, charts. Chinese unless --lang en.")
    rep.add_argument("--period", required=True,
                     help="2026-10 (月报), 2026-W44 (周报), 2026-Q4 or 2026-10-01..2026-10-15 (days, both included)")
    rep.add_argument("--level", help="the level ranked: district, street, community, grid... (default: the level "
                                     "below the city)")
    rep.add_argument("--by", choices=["unit", "department"], default="unit",
                     help="department: rank 承办部门 instead of units")
    rep.add_argument("--group", help="only this category group (code)")
    rep.add_argument("--source", help="only this channel, e.g. hotline_12345")
    rep.add_argument("--format", choices=["xlsx", "pdf"], help="default: from --out's extension")
    rep.add_argument("--out", required=True, metavar="FILE", help="the file to write (replaced if it exists)")
    rep.add_argument("--lang", default="zh", help="zh (default) or en")
    rep.set_defaults(func=_cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CockpitError as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # driver errors that escaped a narrower handler: still one line
        from sqlalchemy.exc import InterfaceError, OperationalError

        if isinstance(exc, (OperationalError, InterfaceError)):
            from cockpit.store.database import connection_error, database_url

            print(f"cockpit: {connection_error(exc, database_url())}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
