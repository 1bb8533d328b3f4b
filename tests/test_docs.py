"""The built docs site shows its formulas without the network: a page with formulas, served from 127.0.0.1 and
opened in headless Chromium that cannot resolve any other host, comes out typeset by the MathJax the site ships,
and no request of the page goes anywhere but the local server (Chromium's network log).

The site is ``$GAUSSIFY_DOCS_SITE`` when set (``make test`` sets it to the ``site/`` that ``make docs`` has just
built), else a fresh ``mkdocs build`` into a temporary folder. Chromium: Debian's ``chromium`` package, which
``make browser`` (run by .ci/run) installs; without it the test is skipped with that instruction.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGE = "reference/regularizers/"  # formulas in the docstrings of SIGReg, sliced Wasserstein, …
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def chromium() -> str:
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        pytest.skip(f"no Chromium ({', '.join(BROWSERS)}) on PATH: install Debian's package, `make browser`")
    return found


@pytest.fixture(scope="module")
def site(chromium, tmp_path_factory) -> Path:
    """The built site (no build without a browser to open it in)."""
    if os.environ.get("GAUSSIFY_DOCS_SITE"):
        return Path(os.environ["GAUSSIFY_DOCS_SITE"]).resolve()
    pytest.importorskip("mkdocs", reason="the docs tools are in the dev extra")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


class _Server(http.server.ThreadingHTTPServer):
    """Serves a folder on 127.0.0.1 (a free port) and records (path, status) of every request."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-") -> None:
                server.requests.append((self.path, int(code)))

        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))


def page_requests(netlog: Path, origin: str) -> tuple[list[str], list[str]]:
    """(every URL the page requested, those outside ``origin``) from a Chromium network log: the requests whose
    initiator is the page's origin, and the page itself. Chromium's own background requests (initiator "not an
    origin", about updates or accounts) are not the page's."""
    text = netlog.read_text(encoding="utf-8")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short: the events array is left open
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [event["params"] for event in log["events"] if event["type"] == start and "url" in event.get("params", {})]
    urls = [job["url"] for job in starts if job.get("initiator") == origin or job["url"].startswith(origin + "/")]
    return urls, [url for url in urls if not url.startswith(origin + "/")]


def test_a_page_with_formulas_renders_them_offline(chromium, site, tmp_path):
    html = (site / PAGE / "index.html").read_text(encoding="utf-8")
    formulas = len(re.findall(r'class="arithmatex"', html))
    assert formulas >= 1, "the page has no formula to check"
    remote = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]*)"', html)
    assert not remote, f"the page loads {remote}"
    server = _Server(site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    netlog = tmp_path / "netlog.json"
    try:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no other host resolves
             f"--log-net-log={netlog}", "--virtual-time-budget=30000", "--dump-dom", f"{origin}/{PAGE}"],
            capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
        thread.join()
    assert proc.returncode == 0, proc.stderr[-4000:]
    dom = proc.stdout
    # every formula typeset by MathJax's CHTML output, none an error
    assert len(re.findall(r'<mjx-container [^>]*jax="CHTML"', dom)) == formulas, dom[-2000:]
    assert "<mjx-merror" not in dom
    urls, outside = page_requests(netlog, origin)
    assert not outside, f"the page requested {outside}"
    assert any(url.endswith("/javascripts/mathjax/tex-chtml.js") for url in urls)
    assert any(url.endswith(".woff") for url in urls), "MathJax's fonts were not loaded from the site"
    assert server.requests and all(status == 200 for _, status in server.requests), server.requests
