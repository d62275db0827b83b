"""assets/cockpit_state.js parses a URL as cockpit.ui.url_state does (run in node, no browser)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from cockpit.config import REPO_ROOT
from cockpit.metrics.unit_view import KPI_CHOICES, PERIOD_KINDS
from cockpit.ui.url_state import DEFAULT_KPI, DEFAULT_PERIOD, parse

NODE = shutil.which("node")
SEARCHES = ["?unit=440303&channel=iot", "?source=grid_app&channel=iot", "?period=custom&from=2026-10-01&to=2026-10-31",
            "?kpi=overdue&group=SR&source=iot&lang=en", "?period=forever&kpi=mood&lang=fr"]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_browser_parses_urls_as_the_server_does():
    config = {"defaults": {"period": DEFAULT_PERIOD, "kpi": DEFAULT_KPI}, "periods": list(PERIOD_KINDS),
              "kpis": list(KPI_CHOICES)}
    script = (f"global.window = {{}};\n{(REPO_ROOT / 'assets' / 'cockpit_state.js').read_text()}\n"
              f"const c = window.dash_clientside.cockpit, config = {json.dumps(config)};\n"
              f"console.log(JSON.stringify({json.dumps(SEARCHES)}.map(s => {{\n"
              f"  const st = c.parse(s, config); return [st, c.serialise(st)]; }})));")
    out = json.loads(subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True).stdout)
    for search, (st, written) in zip(SEARCHES, out):
        server = parse(search)
        assert (st["unit"], st["period"], st["from"], st["to"], st["kpi"], st["group"], st["source"], st["lang"]) == (
            server.unit, server.period, server.first, server.last, server.kpi, server.group, server.source,
            server.lang), search
        assert "channel" not in written and parse(written) == server
