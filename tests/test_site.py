"""The course website: built from a small executed course, every page, image and link checked."""

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import matplotlib.pyplot as plt
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from medlab import course
from medlab.site import SiteError, build_site

ROOT = Path(__file__).resolve().parents[1]


def _png(seed: int) -> str:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [seed, seed + 1, seed * 2])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _lab(k: int, *, executed: bool):
    figure = new_output("display_data", data={"image/png": _png(k), "text/plain": "<Figure>"})
    widget = new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                               "text/plain": "VBox()"})
    return new_notebook(cells=[
        new_markdown_cell(f"# 0{k} · Lab {k}\n\nThe loss is $L = -\\frac{{1}}{{N}}\\sum_i y_i \\log p_i$."),
        new_code_cell('PROFILE = "default"', metadata={"tags": ["parameters"]}),
        new_code_cell("plot()", outputs=[figure, widget] if executed else [], execution_count=2 if executed else None),
        new_markdown_cell("## Exercises\n\n### Exercise 1: one"),
        new_code_cell("answer_value = 42", metadata={"tags": ["solution"]}),
        new_code_cell('with exercise("Exercise 1"):\n    check(answer_value == 42, success="ok", hint="")'),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.fixture
def small_course(tmp_path):
    notebooks, executed = tmp_path / "notebooks", tmp_path / "build" / "executed"
    notebooks.mkdir()
    executed.mkdir(parents=True)
    for k in (1, 2, 3):
        nbformat.write(_lab(k, executed=False), notebooks / f"0{k}_lab.ipynb")
        nbformat.write(_lab(k, executed=True), executed / f"0{k}_lab.ipynb")
    (tmp_path / "build" / "report.md").write_text("# MedLab course report\n\n| notebook | status |\n|---|---|\n"
                                                  "| 01_lab | ok |\n")
    return tmp_path


class _Page(HTMLParser):
    """The links, asset addresses and images of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links, self.assets, self.images = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("script", "img", "iframe", "source") and attrs.get("src"):
            self.assets.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.assets.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))


def _parse(page: Path) -> _Page:
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    return parsed


def test_every_lab_has_a_page_with_its_images_and_every_link_resolves(small_course):
    site = small_course / "build" / "site"
    pages = build_site(notebook_dir=small_course / "notebooks", executed_dir=small_course / "build" / "executed",
                       site_dir=site, readme=None, report=small_course / "build" / "report.md")
    assert [p.name for p in pages] == ["index.html", "01_lab.html", "02_lab.html", "03_lab.html"]
    home = _parse(site / "index.html")
    for lab in ("01_lab", "02_lab", "03_lab"):
        assert f"{lab}.html" in home.links and f"downloads/student/{lab}.ipynb" in home.links, lab
    assert "| 01_lab | ok |" not in (site / "index.html").read_text() and "<table>" in (site / "index.html").read_text()

    for page in pages:
        parsed = _parse(page)
        for address in parsed.links + parsed.assets:
            parts = urlsplit(address)
            if parts.scheme in ("http", "https", "mailto", "data") or address.startswith("#"):
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.name} links to {address}, which is not in the site"
        remote = [a for a in parsed.assets if urlsplit(a).scheme in ("http", "https") or a.startswith("//")]
        assert not remote, f"{page.name} fetches assets from the network: {remote}"
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), f"{page.name}'s styles fetch from the network"

    for k, lab in enumerate(("01_lab", "02_lab", "03_lab"), 1):
        parsed = _parse(site / f"{lab}.html")
        pictures = [src for src in parsed.images if src.startswith("data:image/png;base64,")]
        assert len(pictures) == 1 and base64.b64decode(pictures[0].split(",", 1)[1]) == base64.b64decode(_png(k))
        text = (site / f"{lab}.html").read_text(encoding="utf-8")
        assert "mathjax/MathJax.js" in text and "\\sum_i y_i" in text, "the maths is left for MathJax"
        assert "VBox()" not in text, "a live widget's placeholder reached a static page"
        assert ("02_lab.html" in parsed.links) == (lab != "02_lab")
        student = nbformat.read(site / "downloads" / "student" / f"{lab}.ipynb", as_version=4)
        assert "answer_value = ...  # your code" in student.cells[4].source
        assert all(not c.get("outputs") for c in nbformat.read(site / "downloads" / f"{lab}.ipynb", as_version=4).cells
                   if c.cell_type == "code")


def test_a_lab_without_an_executed_copy_is_named(small_course):
    (small_course / "build" / "executed" / "02_lab.ipynb").unlink()
    with pytest.raises(SiteError, match="02_lab: run `make course`"):
        build_site(notebook_dir=small_course / "notebooks", executed_dir=small_course / "build" / "executed",
                   site_dir=small_course / "build" / "site")


def test_the_syllabus_comes_from_the_readme_for_the_labs_in_the_site(small_course):
    readme = small_course / "README.md"
    readme.write_text("# X\n\n## Syllabus\n\n| lab | topic |\n|---|---|\n"
                      "| [01 first](notebooks/01_lab.ipynb) | the first topic |\n"
                      "| [99 gone](notebooks/99_gone.ipynb) | not in this site |\n\n## Next\n")
    build_site(notebook_dir=small_course / "notebooks", executed_dir=small_course / "build" / "executed",
               site_dir=small_course / "site", readme=readme)
    home = (small_course / "site" / "index.html").read_text()
    assert '<a href="01_lab.html">01 first</a>' in home and "the first topic" in home
    assert "99_gone" not in home and '<a href="03_lab.html">03_lab</a>' in home


def test_command_line_reports_missing_labs(small_course, capsys):
    (small_course / "build" / "executed" / "03_lab.ipynb").unlink()
    assert course.main(["site", "--notebook-dir", str(small_course / "notebooks"),
                        "--build-dir", str(small_course / "build")]) == 1
    assert "03_lab" in capsys.readouterr().err
