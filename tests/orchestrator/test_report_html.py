"""The HTML report's building blocks (orchestrator.report.html) and the headless-Chromium driver (.browser).

Pure tests: user text is escaped, the document is self-contained (viewport meta, no script, no
external src/href), figures embed the PNG bytes unchanged; the driver's errors with a fake browser.
Browser tests (skipped without Chromium): a page with two tables and a matplotlib figure is loaded
in headless Chromium: its DOM holds the tables and the image, the image really decodes, a wide table
scrolls inside its box instead of widening the page, and phone and desktop screenshots have the
requested size and are not blank. screenshot_url (DevTools over a pipe) on a local server that
serves its page only with a login cookie: with the cookie the script-built page is waited for and
captured at the requested size; without it the call fails quoting the login page instead of
capturing it.
"""

from __future__ import annotations

import base64
import http.server
import io
import re
import stat
import sys
import threading
import time
from html.parser import HTMLParser

import matplotlib.image
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ecgcore.errors import ProjectError
from orchestrator.report import browser
from orchestrator.report.html import definition_list, figure, page, paragraph, preformatted, section, table

EVIL = "<script>alert('x')</script>"
NO_CHROMIUM = "Chromium not installed (the set-up installs Debian's chromium package when it can: .ci/install-browser)"
FIG_PIXELS = (400, 250)  # width, height of the test figure
WIDE_COLUMNS = 40  # wide enough to overflow any default headless window unless its box scrolls


def png_bytes() -> bytes:
    """A small line plot rendered with the Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(FIG_PIXELS[0] / 100, FIG_PIXELS[1] / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2, 3], [0.2, 0.5, 0.4, 0.9], marker="o")
    ax.set_title("validation F1")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def report(png: bytes) -> str:
    scores = table(
        ["job", "model", "F1", "time"],
        [[EVIL, "CNN", "0.8312", "12.5 s"], ["demo_b", "CRNN", "0.7901", "20 s"], ["demo_c", "CNN", "0.65", "9 s"]],
        caption="Scores",
        highlight_rows={0},
    )
    wide = table([f"c{i}" for i in range(WIDE_COLUMNS)], [[f"{i * 1234.5678:.4f}" for i in range(WIDE_COLUMNS)]] * 2)
    return page(
        f"Report for {EVIL}",
        [
            section("Scores", paragraph(f"Job {EVIL} did best."), scores, anchor="scores"),
            section("All columns", wide, figure(png, f"Curves of {EVIL}", alt=f"curves {EVIL}")),
            section("Settings", definition_list([("job", EVIL), ("epochs", "30")]), preformatted(f"cmd {EVIL}")),
        ],
        subtitle=f"log/CNN/{EVIL}",
    )


class Tags(HTMLParser):
    """Tag counts and <img> attributes of a document, as a parser (not a regex) sees them."""

    def __init__(self, text: str):
        super().__init__()
        self.counts: dict[str, int] = {}
        self.images: list[dict[str, str | None]] = []
        self.attrs_of: dict[str, dict[str, str | None]] = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "img":
            self.images.append(dict(attrs))
        self.attrs_of.setdefault(tag, dict(attrs))


# --- pure: the document ---------------------------------------------------------------------------


def test_user_text_is_escaped():
    doc = report(png_bytes())
    assert "<script" not in doc.lower()
    # title, subtitle, paragraph, cell, caption, alt, dd and pre: every place text goes in
    assert doc.count("&lt;script&gt;") == 9
    assert Tags(doc).counts.get("script", 0) == 0


def test_document_is_self_contained():
    doc = report(png_bytes())
    assert doc.startswith("<!doctype html>")
    assert '<meta charset="utf-8">' in doc
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in doc
    assert "<script" not in doc.lower()
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", doc, flags=re.IGNORECASE)
    assert external == []
    assert "@import" not in doc and "url(" not in doc  # no fonts or images pulled in by the CSS
    assert "@media print" in doc


def test_figure_embeds_the_png_bytes():
    png = png_bytes()
    html = figure(png, "caption", alt="alt text")
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert match and base64.b64decode(match.group(1)) == png
    assert "<figcaption>caption</figcaption>" in html and 'alt="alt text"' in html


def test_table_alignment_highlight_and_scroll_box():
    html = table(["job", "F1"], [["a", "0.5"], ["b", "1e-05"], ["c", "3/5"]], caption="c", highlight_rows={1})
    assert html.startswith('<div class="scroll">')
    assert '<td class="num">0.5</td>' in html and '<td class="num">1e-05</td>' in html
    assert "<td>3/5</td>" in html and "<td>a</td>" in html
    assert '<th scope="col">job</th><th scope="col">F1</th>' in html  # F1 holds "3/5": not all numbers
    assert '<th scope="col" class="num">F1</th>' in table(["F1"], [["0.5"], ["2 s"]])
    assert html.count('<tr class="hl">') == 1 and '<tr class="hl"><td>b</td>' in html
    assert '<td class="num">' not in table(["F1"], [["0.5"]], numeric=False)


def test_section_anchor():
    html = section("Scores", "<p>x</p>", anchor="scores")
    assert html.startswith('<section id="scores">\n<h2>Scores</h2>')
    assert section("No anchor").startswith("<section>\n")


# --- pure: the driver with a fake browser ---------------------------------------------------------


def fake_browser(tmp_path, body: str) -> str:
    path = tmp_path / "fake-chromium"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_find_chromium_prefers_the_environment(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "/opt/my/chrome")
    assert browser.find_chromium() == "/opt/my/chrome"


def test_driver_errors_carry_the_stderr_tail(tmp_path, monkeypatch):
    html_path = tmp_path / "r.html"
    html_path.write_text(page("t", []))
    monkeypatch.setenv("CHROMIUM", fake_browser(tmp_path, "echo noise >&2; echo 'the real reason' >&2; exit 3"))
    with pytest.raises(ProjectError, match=r"exit 3(.|\n)*the real reason"):
        browser.dump_dom(html_path)
    monkeypatch.setenv("CHROMIUM", fake_browser(tmp_path, "echo 'wrote nothing' >&2; exit 0"))
    with pytest.raises(ProjectError, match="wrote no screenshot(.|\n)*wrote nothing"):
        browser.screenshot(html_path, tmp_path / "s.png")
    # A browser that hangs in a child process: the time-out must end the child too, or the pipes it
    # holds open keep the call waiting its whole 30 s.
    hang = f"'{sys.executable}' -c 'import time; time.sleep(30)' & wait"
    monkeypatch.setenv("CHROMIUM", fake_browser(tmp_path, hang))
    start = time.monotonic()
    with pytest.raises(ProjectError, match="timed out"):
        browser.dump_dom(html_path, timeout=0.5)
    assert time.monotonic() - start < 10
    with pytest.raises(ProjectError, match="no such file"):
        browser.dump_dom(tmp_path / "missing.html")
    monkeypatch.setenv("CHROMIUM", fake_browser(tmp_path, "echo 'no pipe for you' >&2; exit 4"))
    with pytest.raises(ProjectError, match=r"exited \(code 4\)(.|\n)*no pipe for you"):
        browser.screenshot_url("http://127.0.0.1:9/", tmp_path / "u.png", ready_text="x")


# --- a real browser ---------------------------------------------------------------------------------

# Test-only probe, appended to a COPY of the report (the report itself stays script-free): after load,
# record each image's decoded width and whether the page is wider than the window.
PROBE = """<script>
window.addEventListener("load", () => {
  for (const img of document.images) img.setAttribute("data-natural-width", img.naturalWidth);
  const box = document.querySelectorAll(".scroll")[1];
  document.body.setAttribute("data-page-overflow", document.documentElement.scrollWidth - window.innerWidth);
  document.body.setAttribute("data-box-overflow", box.scrollWidth - box.clientWidth);
});
</script>"""


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    if browser.find_chromium() is None:
        pytest.skip(NO_CHROMIUM)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(report(png_bytes()), encoding="utf-8")
    return path


def test_browser_dom_has_tables_rows_and_image(report_file):
    dom = browser.dump_dom(report_file)
    tags = Tags(dom)
    assert tags.counts["table"] == 2
    assert tags.counts["tr"] == (1 + 3) + (1 + 2)  # header row + data rows of each table
    assert tags.counts.get("script", 0) == 0
    assert len(tags.images) == 1 and tags.images[0]["src"].startswith("data:image/png;base64,")
    assert "&lt;script&gt;alert" in dom  # the job name came through as text


def test_browser_decodes_the_image_and_tables_scroll_in_their_box(report_file):
    probe = report_file.with_name("report-probe.html")
    probe.write_text(report_file.read_text(encoding="utf-8").replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    tags = Tags(browser.dump_dom(probe))
    widths = [int(img["data-natural-width"]) for img in tags.images]
    assert len(widths) == 1 and all(w > 0 for w in widths)
    body = tags.attrs_of["body"]
    assert int(body["data-box-overflow"]) > 0  # the wide table is wider than its box ...
    assert int(body["data-page-overflow"]) <= 0  # ... and scrolls inside it: the page is not widened


@pytest.mark.parametrize("size", [(390, 844), (1000, 1400)], ids=["phone", "desktop"])
def test_browser_screenshot(report_file, tmp_path, size):
    png_path = tmp_path / "shot.png"
    browser.screenshot(report_file, png_path, width=size[0], height=size[1])
    pixels = matplotlib.image.imread(png_path)
    assert pixels.shape[:2] == (size[1], size[0])
    assert pixels[..., :3].std() > 0


class CookiePage(http.server.BaseHTTPRequestHandler):
    """The secret page (its text written by a script, after a moment) only with the cookie; else a login page."""

    def do_GET(self):
        if "session=s3cret" in self.headers.get("Cookie", ""):
            body = "<body><script>setTimeout(() => document.body.innerHTML = '<h1>the secret page</h1>', 300)</script>"
        else:
            body = "<body><h1>please log in</h1></body>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture()
def cookie_server():
    if browser.find_chromium() is None:
        pytest.skip(NO_CHROMIUM)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CookiePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page"
    server.shutdown()
    server.server_close()


def test_browser_screenshot_url_with_a_login_cookie(cookie_server, tmp_path):
    png_path = tmp_path / "page.png"
    browser.screenshot_url(cookie_server, png_path, ready_text="the secret page", cookies={"session": "s3cret"},
                           width=640, height=360)
    pixels = matplotlib.image.imread(png_path)
    assert pixels.shape[:2] == (360, 640)
    assert pixels[..., :3].std() > 0
    with pytest.raises(ProjectError, match="never showed 'the secret page'; it shows: 'please log in'"):
        browser.screenshot_url(cookie_server, tmp_path / "login.png", ready_text="the secret page", timeout=6)
    assert not (tmp_path / "login.png").exists()
