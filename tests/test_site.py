"""The course website (``make site``, depthkit/course/site.py): built from the students' release, checked as files
and in headless Chromium.

The book is built once per module from the scripts ``make site`` fetched into site/_vendor/ (nothing is
downloaded here: without them the module skips, and fails under CI, saying to run ``make site``). The
browser tests skip locally, with one line saying what to install, when Chromium is missing; ``.ci/run``
installs it. Screenshots of three pages go to site/screenshots/ (git-ignored).
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from depthkit.course import site
from depthkit.course.colab import current_slug

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / site.SITE / "_vendor"
SCREENSHOTS = REPO / site.SITE / "screenshots"
NOTEBOOKS = [p.stem for p in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
PAGES = ["index", *NOTEBOOKS, "teaching", "performance"]


def widget_views(stem: str) -> int:
    """How many widgets the committed notebook ``stem`` displays from its saved widget state (01, 02 and 07 have some)."""
    nb = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    if not nb["metadata"].get("widgets"):
        return 0
    return sum("application/vnd.jupyter.widget-view+json" in out.get("data", {})
               for cell in nb["cells"] for out in cell.get("outputs", []))


# Console messages a page may log at level SEVERE: the browser's own request for /favicon.ico (the book has none).
CONSOLE_ALLOWED = ("/favicon.ico - Failed to load resource",)
INSTALL_CHROMIUM = "headless Chromium missing: apt-get install -y chromium chromium-driver (.ci/run installs them)"


def missing(message: str) -> None:
    """Skip with ``message`` on a developer's machine; fail under CI, where .ci/run provides everything."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """The book, built from the students' release into a temporary folder (warnings are errors)."""
    if (why := site.vendor_missing(VENDOR)) is not None:
        missing(why)
    start = time.perf_counter()
    built = site.build_site(tmp_path_factory.mktemp("site"), VENDOR)
    print(f"book built in {time.perf_counter() - start:.1f} s")
    return built


def page_text(path: Path) -> str:
    """The text of an HTML page, markup left out."""
    return " ".join(site.Page(path.read_text(encoding="utf-8")).text)


def test_the_book_has_a_page_per_notebook_and_the_two_docs(html):
    for name in [*PAGES, "search"]:
        assert (html / f"{name}.html").is_file(), f"no page {name}.html"
    for stem in NOTEBOOKS:
        title = re.search(r"<title>(.*?)</title>", (html / f"{stem}.html").read_text(encoding="utf-8")).group(1)
        assert title.startswith(stem[:2] + " · "), f"{stem}.html: title {title!r}"


def test_a_warning_fails_the_build_and_names_its_cause(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(REPO / "book" / "_config.yml", src / "_config.yml")
    (src / "_toc.yml").write_text("format: jb-book\nroot: index\n", encoding="utf-8")
    (src / "index.md").write_text("# A page\n\nSee [the missing page](no_such_page.md).\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"warnings are errors[\s\S]*no_such_page"):
        site.run_jupyter_book(src, tmp_path)


def test_every_notebook_page_opens_in_colab_at_the_address_of_colab_cell(html):
    slug = current_slug(REPO)
    for stem in NOTEBOOKS:
        links = [attrs["href"] for tag, attrs in site.Page((html / f"{stem}.html").read_text(encoding="utf-8")).tags
                 if tag == "a" and "colab.research.google.com" in attrs.get("href", "")]
        expected = f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{stem}.ipynb"
        assert len(links) >= 2 and set(links) == {expected}, f"{stem}.html: Colab links {links}"  # the button, the title's link


def test_the_landing_page_shows_the_path_and_the_reports_table_beside_ours(html):
    from depthkit.reproduce import REPORT_RESULTS

    index = (html / "index.html").read_text(encoding="utf-8")
    for stem in NOTEBOOKS:
        assert f'href="{stem}.html"' in index, f"index.html: no link to {stem}.html"
    text = page_text(html / "index.html")
    results = json.loads((REPO / "figures" / "results.json").read_text(encoding="utf-8"))["models"]
    for name, ours in results.items():
        for number in (f"{ours['nyu']['normalized_mse']:.4f}", f"{100 * ours['diw']['ordinal_accuracy']:.1f} %",
                       f"{REPORT_RESULTS[name]['nyu_mse']:.4f}", f"{REPORT_RESULTS[name]['diw_acc']} %"):
            assert number in text, f"index.html: {ours['label']}'s {number} is not on the landing page"


def test_no_internal_link_is_broken_and_every_image_exists(html):
    problems = site.broken_links(html)
    assert not problems, "\n".join(problems)
    images = [url for page in site.html_pages(html).values() for what, url in site.local_links(page) if what == "<img src>"]
    assert len(images) >= 20, f"only {len(images)} images on the pages"  # the check saw the figures


def test_a_broken_link_and_a_deleted_image_are_found(html, tmp_path):
    copy = Path(shutil.copytree(html, tmp_path / "html"))
    page = copy / "index.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</article>", '<a href="no_such_page.html">x</a></article>', 1),
                    encoding="utf-8")
    image = next(url for what, url in site.local_links(site.html_pages(copy)[copy / "06_comparison.html"])
                 if what == "<img src>" and url.startswith("_images/"))  # a figure of the page, not the theme's logo
    (copy / image).unlink()
    problems = site.broken_links(copy)
    assert f"06_comparison.html: <img src> {image}: no such file" in problems, problems
    assert "index.html: <a href> no_such_page.html: no such file" in problems, problems
    assert all(image in line or "no_such_page" in line for line in problems), problems  # (the image's own link too)


def test_no_page_asks_anything_of_another_host(html):
    problems = site.outside_requests(html)
    assert not problems, "\n".join(problems)


def test_the_default_cdn_configuration_is_found(html, tmp_path):
    """The scripts MyST-NB and Sphinx load by default (their own values), planted in a page, are each reported."""
    from myst_nb.core.config import ipywidgets_js_factory
    from sphinx.ext.mathjax import MATHJAX_URL

    copy = Path(shutil.copytree(html, tmp_path / "html", ignore=shutil.ignore_patterns("_static", "_images", "_sources")))
    page = copy / "02_losses_and_metrics.html"
    scripts = [f'<script src="{MATHJAX_URL}"></script>']
    for url, attrs in ipywidgets_js_factory().items():
        scripts.append(f'<script src="{url}" ' + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "></script>")
    page.write_text(page.read_text(encoding="utf-8").replace("</head>", "".join(scripts) + "</head>", 1), encoding="utf-8")
    problems = site.outside_requests(copy)
    assert len(problems) == 4 and all(p.startswith("02_losses_and_metrics.html: <script> asks https://") for p in problems), problems


def test_no_page_holds_a_solution_a_hidden_test_or_a_written_answer(html):
    assert len(site.key_fragments()) > 300  # the key the check looks for
    leaks = site.key_leaks(html)
    assert not leaks, "\n".join(leaks[:20])


def test_a_book_of_the_committed_notebooks_is_found_to_hold_the_key(tmp_path):
    if (why := site.vendor_missing(VENDOR)) is not None:
        missing(why)
    leaks = site.key_leaks(site.build_site(tmp_path, VENDOR, release=False, only=["02"]))
    for kind in ("solution", "hidden test", "written answer"):
        assert any(f"02_losses_and_metrics.html: shows the key, {kind} of 02_losses_and_metrics.ipynb" in line
                   for line in leaks), f"no {kind} found in {leaks[:3]}"


# ---------------------------------------------------------------------------------------- in headless Chromium

def chromium(width: int = 1280, height: int = 900):
    """A headless Chromium driven by Debian's chromedriver, with no way to reach another host; skips when missing."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        binary = None
    if not binary or not driver:
        missing(INSTALL_CHROMIUM)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the book without a log line per request."""

    def log_message(self, *args) -> None:
        """Say nothing."""


@pytest.fixture(scope="module")
def browser(html):
    """``(driver, base address)``: headless Chromium and the book served on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chromium()
    try:
        yield driver, f"http://127.0.0.1:{server.server_port}/"
    finally:
        driver.quit()
        server.shutdown()


def open_page(driver, url: str) -> None:
    """Load ``url`` and wait for MathJax to finish typesetting (where the page loads it) and the widgets to render."""
    driver.get(url)
    driver.execute_async_script("""const done = arguments[arguments.length - 1];
        const typeset = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
        const loaded = document.readyState === "complete" ? Promise.resolve()
            : new Promise(ok => window.addEventListener("load", ok));
        Promise.all([typeset, loaded]).then(() => setTimeout(done, 300), () => done());""")


PAGE_REPORT = """
const outside = (el) => !el.closest("pre, code, script, style, textarea, .highlight, .output");
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const raw = [];
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  if (outside(n.parentElement) && /\\\\\\(|\\\\\\[|\\$\\$/.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 60));
}
const maths = Array.from(document.querySelectorAll(".math"));
return {
  maths: maths.length,
  unrendered: maths.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.slice(0, 60)),
  raw: raw,
  images: document.images.length,
  broken_images: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
  outside: performance.getEntriesByType("resource").map(e => e.name).filter(n => !n.startsWith(location.origin)),
  widgets: Array.from(document.querySelectorAll(".widget-subarea")).filter(w => w.querySelector(".jupyter-widgets")).length,
};
"""


def test_every_page_in_chromium_shows_its_maths_and_images_asks_no_other_host_and_logs_no_error(browser):
    driver, base = browser
    problems, maths = [], {}
    for name in PAGES:
        open_page(driver, base + f"{name}.html")
        report = driver.execute_script(PAGE_REPORT)
        maths[name] = report["maths"]
        errors = [e["message"] for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and not any(ok in e["message"] for ok in CONSOLE_ALLOWED)]
        problems += [f"{name}.html: {what}: {report[what]}" for what in ("unrendered", "raw", "broken_images", "outside")
                     if report[what]]
        problems += [f"{name}.html: console error: {message[:200]}" for message in errors]
        if name in NOTEBOOKS and report["widgets"] != widget_views(name):
            problems.append(f"{name}.html: shows {report['widgets']} of its {widget_views(name)} saved widgets")
    assert not problems, "\n".join(problems)
    assert maths["02_losses_and_metrics"] >= 10, maths  # the check saw typeset maths
    assert widget_views("02_losses_and_metrics") and widget_views("07_your_own_image") == 2  # ... and widgets


def test_the_saved_widgets_show_on_02_and_07(browser):
    driver, base = browser
    open_page(driver, base + "02_losses_and_metrics.html")
    shown = driver.execute_script("""return {dropdown: document.querySelectorAll(".widget-dropdown select").length,
        sliders: Array.from(document.querySelectorAll(".widget-slider")).map(s => s.innerText.replace(/\\s+/g, " ").trim())};""")
    assert shown == {"dropdown": 1, "sliders": ["z_A − z_B −2.50"]}, shown
    open_page(driver, base + "07_your_own_image.html")
    shown = driver.execute_script("""return {sliders: document.querySelectorAll(".widget-slider").length,
        upload: document.querySelectorAll(".widget-upload").length};""")
    assert shown == {"sliders": 4, "upload": 1}, shown


def test_search_finds_the_ranking_loss(browser):
    driver, base = browser
    driver.get(base + "search.html?q=ranking+loss")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = driver.execute_script(
            "return Array.from(document.querySelectorAll('#search-results li a')).map(a => a.getAttribute('href'))")
        if found:
            break
        time.sleep(0.2)
    assert any(href.startswith("02_losses_and_metrics.html") for href in found), found


def test_screenshots_of_three_pages(browser):
    """The landing page's results table, 02's ranking-loss widgets and 07's, at 100 % zoom, for a developer to look at."""
    driver, base = browser
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = {"index": ("#the-report-s-table-beside-ours", "start"), "02_losses_and_metrics": (".widget-slider", "center"),
             "07_your_own_image": (".widget-slider", "center")}
    for name, (selector, where) in shots.items():
        open_page(driver, base + f"{name}.html")
        driver.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: arguments[1]})", selector, where)
        time.sleep(0.3)
        path = SCREENSHOTS / f"{name}.png"
        assert driver.save_screenshot(str(path)) and path.stat().st_size > 20_000, path
