"""The course as a website: a Jupyter Book 1 built from the students' release, with the committed outputs.

    python -m depthkit.course.site          # make site: fetch the pages' scripts once, build, check

The book is made of nbgrader's release of every notebook (:func:`depthkit.course.student.write_student_copies`
with ``keep_outputs``: solutions stubbed, hidden tests and written answers removed, the committed
``demo`` outputs and widget state kept), ``docs/teaching.md`` and ``docs/performance.md``, and a
landing page (``book/index.md``) whose path through the course comes from ``notebooks/README.md`` and
whose results table comes from ``figures/results.md``. Nothing is executed. ``book/_config.yml`` is
the configuration; the repository it names, and so every page's "Open in Colab" button, is read from
``notebooks/colab_cell.txt``.

Every script the pages load is served by the site itself: MathJax, RequireJS and the ipywidgets
renderer are fetched once from the npm registry (``npm pack``, pinned versions) into
``site/_vendor/`` (git-ignored) and copied into each build. The build runs with warnings as errors
and is then checked (:func:`check_site`): no broken internal link or missing image, nothing asked of
an outside host, no page holding the key. ``tests/test_site.py`` runs the same checks and a headless
browser over the result.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

from depthkit.config import repo_root
from depthkit.course.colab import current_slug
from depthkit.course.student import BEGIN, END, notebook_paths, write_student_copies

HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
SITE = "site"  # under the repository root, git-ignored: _vendor/, src/ (the staged book), _build/html/
NPM_PACKAGES = {"mathjax": "mathjax@3.2.2", "requirejs": "requirejs@2.3.8",
                "html-manager": "@jupyter-widgets/html-manager@1.0.15"}
# What the site keeps of each package (paths in its tarball's package/ folder -> under _vendor/<name>/)
VENDOR_FILES = {
    "mathjax": {"es5/tex-mml-chtml.js": "tex-mml-chtml.js", "es5/input": "input", "es5/output/chtml": "output/chtml",
                "es5/ui": "ui", "es5/a11y": "a11y", "es5/sre": "sre", "es5/adaptors": "adaptors"},
    "requirejs": {"require.js": "require.js"},
    "html-manager": {"dist": "."},
}
VENDOR_SKIP = shutil.ignore_patterns("*.map", "embed.js", "libembed-amd.js")  # source maps, the non-AMD bundles
DOC_PAGES = {"docs/teaching.md": "teaching", "docs/performance.md": "performance", "docs/running.md": "running"}
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\(([^)\s]+)\)")
MD_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
RESULTS_HEADING = "## The report's comparison table, and ours"
PATH_MARK = "<!-- the path: filled in by depthkit.course.site from notebooks/README.md -->"
RESULTS_MARK = "<!-- the results: filled in by depthkit.course.site from figures/results.md -->"
WORD = re.compile(r"\w+")
KEY_FILE = Path(__file__).with_name("answer_key.json")  # depthkit.course.checks.KEY_FILE (that module imports torch)


def vendor_missing(vendor: Path) -> str | None:
    """One line saying how to get the pages' scripts when ``vendor`` lacks them (or holds other versions), else None."""
    try:
        found = json.loads((vendor / "versions.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    if found == NPM_PACKAGES:
        return None
    return (f"{vendor}: the pages' scripts ({', '.join(NPM_PACKAGES.values())}) are not there: "
            "run `make site` once (it fetches them from the npm registry)")


def fetch_vendor(vendor: Path) -> bool:
    """Fetch the pinned npm packages into ``vendor`` unless they are there; True when it fetched.

    ``npm pack`` downloads each tarball without installing anything; the files the site needs are
    copied into a folder beside ``vendor`` that is renamed into place only when complete.
    """
    if vendor_missing(vendor) is None:
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: make site fetches MathJax, RequireJS and the widget renderer "
                           "with it, once (apt-get install npm, or install Node.js)")
    vendor.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".vendor-", dir=vendor.parent) as tmp:
        tmp = Path(tmp)
        done = subprocess.run([npm, "pack", "--silent", "--pack-destination", str(tmp), *NPM_PACKAGES.values()],
                              capture_output=True, text=True)
        tarballs = done.stdout.split()
        if done.returncode or len(tarballs) != len(NPM_PACKAGES):
            why = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise RuntimeError(f"npm pack {' '.join(NPM_PACKAGES.values())} failed: {why}")
        staged = tmp / "vendor"
        for name, tarball in zip(NPM_PACKAGES, tarballs):
            with tarfile.open(tmp / tarball) as archive:
                archive.extractall(tmp / name, filter="data")
            for inside, target in VENDOR_FILES[name].items():
                source, dest = tmp / name / "package" / inside, staged / name / target
                if source.is_dir():
                    shutil.copytree(source, dest, ignore=VENDOR_SKIP, dirs_exist_ok=True)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, dest)
        (staged / "versions.json").write_text(json.dumps(NPM_PACKAGES, indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(vendor, ignore_errors=True)
        staged.rename(vendor)
    return True


def book_link(target: str, source: str, slug: str, pages: dict[str, str]) -> str:
    """A Markdown link target of the repository file ``source`` as the book needs it.

    A page of the book becomes a link to that page; any other file of the repository, a link to it
    on GitHub (``slug`` = OWNER/NAME); addresses and in-page anchors stay as they are.
    """
    if urlsplit(target).scheme or target.startswith("#"):
        return target
    path, _, anchor = target.partition("#")
    in_repo = os.path.normpath(os.path.join(os.path.dirname(source), path))
    if in_repo in pages:
        return pages[in_repo] + ("#" + anchor if anchor else "")
    return f"https://github.com/{slug}/blob/main/{in_repo}" + ("#" + anchor if anchor else "")


def with_book_links(text: str, source: str, slug: str, pages: dict[str, str]) -> str:
    """``text`` (Markdown from the repository file ``source``) with every link target rewritten by :func:`book_link`."""
    return MD_LINK.sub(lambda m: m.group(1) + book_link(m.group(2), source, slug, pages) + m.group(3), text)


def unbadged(path: Path) -> str:
    """Replace the Colab badge (an image on Colab's host) of the notebook at ``path`` by a text link; return its title."""
    nb = nbformat.read(path, as_version=4)
    title = ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = BADGE.sub(r"[Open in Colab](\1)", cell.source)
            title = title or next((line[2:].strip() for line in cell.source.splitlines() if line.startswith("# ")), "")
    nbformat.write(nb, str(path))
    return title or path.stem


def path_table(titles: dict[str, str], root: Path) -> str:
    """The landing page's path through the course: ``notebooks/README.md``'s table, each notebook linked to its page."""
    readme = root / "notebooks" / "README.md"
    rows = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `(\d\d_\w+)` \| (.+) \|$", line)
        if match and match.group(1) in titles:
            rows.append(f"| [{titles[match.group(1)]}]({match.group(1)}.ipynb) | {match.group(2)} |")
    if len(rows) != len(titles):
        missing = sorted(set(titles) - {r.split("](")[1].split(".ipynb")[0] for r in rows})
        raise ValueError(f"{readme}: no row | `NN_name` | ... | for {', '.join(missing)}")
    return "\n".join(["| notebook | what it covers |", "|---|---|", *rows])


def results_section(root: Path) -> str:
    """The report's table beside ours, as ``figures/results.md`` has it (its caveat, the table, the protocol notes)."""
    results = root / "figures" / "results.md"
    text = results.read_text(encoding="utf-8")
    if RESULTS_HEADING not in text:
        raise ValueError(f"{results}: no section {RESULTS_HEADING!r}")
    title = text.splitlines()[0].removeprefix("# ")
    caveat = [line for line in text.splitlines() if line.startswith("> ")]
    table = text.split(RESULTS_HEADING, 1)[1].split("\n## ", 1)[0].strip()
    return "\n\n".join([f"From `figures/results.md` ({title}), written by `make reproduce`:", *caveat, table])


def book_config(root: Path, slug: str) -> dict:
    """``book/_config.yml`` with the repository that ``notebooks/colab_cell.txt`` names."""
    import yaml  # installed with jupyter-book

    config = yaml.safe_load((root / "book" / "_config.yml").read_text(encoding="utf-8"))
    config["repository"]["url"] = f"https://github.com/{slug}"
    return config


def stage(src: Path, vendor: Path, notebooks_dir: Path | None = None, release: bool = True,
          only: list[str] | None = None) -> list[str]:
    """Write the book's sources into ``src`` (emptied first); returns the notebook pages, in order.

    ``release=False`` stages the committed notebooks, key and all: only for the test that the
    checks catch it.
    """
    import yaml

    root = repo_root()
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    if release:
        notebooks = write_student_copies(src, notebooks_dir, only, keep_outputs=True)
    else:
        notebooks = [Path(shutil.copyfile(p, src / p.name)) for p in notebook_paths(notebooks_dir, only)]
    titles = {p.stem: unbadged(p) for p in notebooks}
    slug = current_slug(root)
    pages = {f"notebooks/{p.name}": p.name for p in notebooks}
    pages |= {f"notebooks/{p.stem}.py": p.name for p in notebooks}
    pages |= {doc: f"{name}.md" for doc, name in DOC_PAGES.items()}
    for doc, name in DOC_PAGES.items():
        text = (root / doc).read_text(encoding="utf-8")
        (src / f"{name}.md").write_text(with_book_links(text, doc, slug, pages), encoding="utf-8")
    index = (root / "book" / "index.md").read_text(encoding="utf-8")
    index = index.replace(PATH_MARK, path_table(titles, root)).replace(RESULTS_MARK, results_section(root))
    (src / "index.md").write_text(with_book_links(index, "book/index.md", slug, pages), encoding="utf-8")
    toc = {"format": "jb-book", "root": "index", "parts": [
        {"caption": "The notebooks", "chapters": [{"file": stem} for stem in titles]},
        {"caption": "For instructors, and running the series", "chapters": [{"file": name} for name in DOC_PAGES.values()]}]}
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    (src / "_config.yml").write_text(yaml.safe_dump(book_config(root, slug), sort_keys=False), encoding="utf-8")
    shutil.copytree(vendor, src / "_assets" / "vendor")  # served as _static/vendor/
    for name in ("widgets.js", "book.css"):
        shutil.copyfile(root / "book" / name, src / "_assets" / name)
    return list(titles)


def run_jupyter_book(src: Path, out: Path) -> Path:
    """``jupyter-book build`` of ``src`` into ``out/_build/html`` with warnings as errors (``-W -n``); returns that folder."""
    command = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
               "build", str(src), "--path-output", str(out), "-W", "-n", "--keep-going", "--all", "-q"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if "WARNING" in line or "ERROR" in line]
        tail = lines or (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"jupyter-book build {src} failed (warnings are errors):\n  " + "\n  ".join(tail[:20]))
    return out / "_build" / "html"


def build_site(out: Path, vendor: Path, notebooks_dir: Path | None = None, release: bool = True,
               only: list[str] | None = None) -> Path:
    """Stage the book in ``out/src`` and build it; returns the HTML folder (``out/_build/html``)."""
    missing = vendor_missing(vendor)
    if missing:
        raise FileNotFoundError(missing)
    shutil.rmtree(out / "_build", ignore_errors=True)
    stage(out / "src", vendor, notebooks_dir, release, only)
    return run_jupyter_book(out / "src", out)


class Page(HTMLParser):
    """One HTML page read once: its tags with their attributes, its ids, and its text (scripts' text included)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Keep the tag and its attributes; note its id."""
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.ids.add(attributes["id"])

    def handle_data(self, data: str) -> None:
        """Keep the text."""
        self.text.append(data)


def html_pages(html_dir: Path) -> dict[Path, Page]:
    """Every HTML page of the site, parsed (the theme's and the vendored assets under ``_static`` left out)."""
    return {p: Page(p.read_text(encoding="utf-8")) for p in sorted(html_dir.rglob("*.html"))
            if "_static" not in p.relative_to(html_dir).parts}


def local_links(page: Page) -> list[tuple[str, str]]:
    """``(attribute, url)`` of every link or resource of ``page`` that points inside the site."""
    found = []
    for tag, attrs in page.tags:
        for name in ("href", "src"):
            url = attrs.get(name, "")
            parts = urlsplit(url)
            if url and not parts.scheme and not parts.netloc and url != "#":
                found.append((f"<{tag} {name}>", url))
    return found


def broken_links(html_dir: Path) -> list[str]:
    """One line per internal link, image or script of the site whose file (or in-page anchor) does not exist."""
    pages = html_pages(html_dir)
    problems = []
    for path, page in pages.items():
        for what, url in local_links(page):
            parts = urlsplit(url)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(html_dir)}: {what} {url}"
            if not target.is_file():
                problems.append(f"{where}: no such file")
            elif parts.fragment and target.suffix == ".html" and target in pages and parts.fragment not in pages[target].ids:
                problems.append(f"{where}: no id {parts.fragment!r} in {target.name}")
    return problems


def outside_requests(html_dir: Path) -> list[str]:
    """One line per script, style sheet, image, font or widget module that a page would fetch from another host.

    Read from the HTML (``src`` of every element, ``href`` of fetched ``<link>``s, the widget
    renderer's ``data-jupyter-widgets-cdn``) and the CSS (``url(...)``, ``@import``); links a reader
    clicks (``<a href>``) are not requests.
    """
    fetched_rels = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut", "manifest",
                    "apple-touch-icon", "preconnect", "dns-prefetch"}
    problems = []
    for path, page in html_pages(html_dir).items():
        for tag, attrs in page.tags:
            urls = [attrs.get("src", ""), attrs.get("data", ""), attrs.get("data-jupyter-widgets-cdn", "")]
            if tag == "link" and fetched_rels & set(attrs.get("rel", "").lower().split()):
                urls.append(attrs.get("href", ""))
            problems += [f"{path.relative_to(html_dir)}: <{tag}> asks {url}" for url in urls if is_remote(url)]
    for css in sorted(html_dir.rglob("*.css")):
        for url in re.findall(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", css.read_text(errors="replace")):
            remote = [u for u in url if is_remote(u)]
            problems += [f"{css.relative_to(html_dir)}: asks {u}" for u in remote]
    return problems


def is_remote(url: str) -> bool:
    """Whether ``url`` names another host (``http(s)://...`` or ``//host/...``)."""
    return bool(re.match(r"(https?:)?//", url.strip(), re.I))


def words(text: str) -> tuple[str, ...]:
    """The words of ``text`` (letters, digits, underscores), in order: markup, punctuation and line breaks left out."""
    return tuple(WORD.findall(text))


def region(source: str, begin: str, end: str) -> list[str]:
    """The lines of ``source`` between the marker lines ``begin`` and ``end`` (every such region)."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside:
            out.append(line)
    return out


def key_fragments(notebooks_dir: Path | None = None) -> dict[tuple[str, ...], str]:
    """What only the key holds, as word sequences -> where it comes from.

    Each line (of at least three words and 13 characters) of every worked solution, hidden test and
    written answer in the committed notebooks, and every answer of ``answer_key.json`` (floats
    stored to 12 digits).
    """
    fragments = {}
    for path in notebook_paths(notebooks_dir):
        for cell in nbformat.read(path, as_version=4).cells:
            grading = cell.metadata.get("nbgrader", {})
            parts = {"hidden test": region(cell.source, *HIDDEN)}
            if grading.get("solution"):
                kind = "solution" if cell.cell_type == "code" else "written answer"
                parts[kind] = region(cell.source, BEGIN, END) if cell.cell_type == "code" else cell.source.splitlines()
            for kind, lines in parts.items():
                for line in lines:
                    if len(line.strip()) > 12 and len(words(line)) >= 3:
                        fragments[words(line)] = f"{kind} of {path.name} ({grading.get('grade_id', '?')}): {line.strip()[:60]!r}"
    for number, entry in json.loads(Path(KEY_FILE).read_text(encoding="utf-8"))["exercises"].items():
        for value in re.findall(r"-?\d+\.\d{8,}", json.dumps(entry["cases"] + entry["hidden"])):
            fragments[words(value)] = f"an answer of exercise {number} in {Path(KEY_FILE).name}: {value}"
    return fragments


def find_fragments(tokens: tuple[str, ...], fragments: dict[tuple[str, ...], str]) -> set[tuple[str, ...]]:
    """The fragments that occur in ``tokens`` as consecutive words."""
    by_first = defaultdict(list)
    for fragment in fragments:
        by_first[fragment[0]].append(fragment)
    found = set()
    for i, token in enumerate(tokens):
        for fragment in by_first.get(token, ()):
            if tokens[i:i + len(fragment)] == fragment:
                found.add(fragment)
    return found


def key_leaks(html_dir: Path, notebooks_dir: Path | None = None) -> list[str]:
    """One line per file of the site (pages, search index, downloadable sources) that shows a piece of the key."""
    fragments = key_fragments(notebooks_dir)
    problems = []
    for path in sorted(p for p in html_dir.rglob("*") if p.suffix in {".html", ".js", ".txt", ".ipynb", ".json", ".md"}):
        if "_static" in path.relative_to(html_dir).parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".html":
            text = " ".join(Page(text).text)
        for fragment in sorted(find_fragments(words(text), fragments)):
            problems.append(f"{path.relative_to(html_dir)}: shows the key, {fragments[fragment]}")
    return problems


def check_site(html_dir: Path, notebooks_dir: Path | None = None) -> list[str]:
    """Everything wrong with the built site: broken links, requests to other hosts, the key on a page."""
    return broken_links(html_dir) + outside_requests(html_dir) + key_leaks(html_dir, notebooks_dir)


def main(argv: list[str] | None = None) -> int:
    """``python -m depthkit.course.site [--out site]``: fetch the scripts if needed, build the book, check it."""
    parser = argparse.ArgumentParser(prog="python -m depthkit.course.site", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(repo_root() / SITE), help="the site's folder (default: site/)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        start = time.perf_counter()
        fetched = fetch_vendor(out / "_vendor")
        built_at = time.perf_counter()
        html = build_site(out, out / "_vendor")
        problems = check_site(html)
    except (RuntimeError, ValueError, OSError) as err:
        print(f"depthkit.course.site: error: {err}", file=sys.stderr)
        return 1
    for line in problems[:20]:
        print(f"depthkit.course.site: {line}", file=sys.stderr)
    if len(problems) > 20:
        print(f"depthkit.course.site: ... and {len(problems) - 20} more", file=sys.stderr)
    end = time.perf_counter()
    fetch_note = f"scripts fetched from npm in {built_at - start:.1f} s, " if fetched else ""
    print(f"{html / 'index.html'}: {len(list(html.glob('*.html')))} pages; {fetch_note}"
          f"built and checked in {end - built_at:.1f} s; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
