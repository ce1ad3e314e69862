"""A static website of the executed labs (``make site``): read the course in a browser, offline.

``build/site/index.html`` holds the syllabus and the latest course report; each lab has a page
(nbconvert's JupyterLab look, figures inline) with links to the previous and next lab and to
its downloads: the lab as a notebook and its student copy (:mod:`medlab.student`). Maths is
typeset by a copy of MathJax inside the site, so the pages need no network, whether served or
opened from disk.

From the command line::

    python -m medlab.course site          # after `make course`: build/executed/ -> build/site/
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path

import nbformat

from medlab.course import find_notebooks, strip_outputs
from medlab.student import student_copy

MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
"""Where a page finds MathJax: the copy inside the site (from the jupyter-server-mathjax package)."""
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX_FONTS = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {webFont: "STIX-Web", availableFonts: ["STIX"], preferredFont: "STIX", imageFont: null},
                   SVG: {font: "STIX-Web"}});  // the web font the site's copy of MathJax carries
</script>
"""
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{#- nbconvert's JupyterLab page without the scripts it would fetch from a CDN: require.js
    (for old-style interactive outputs) and Mermaid (for diagrams); the labs need neither -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f; }
.medlab-nav { display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; padding: 0.6em 1.5em; background: #f3f5f7;
              border-bottom: 1px solid #d8dde3; font-size: 0.95em; }
.medlab-nav.bottom { border-top: 1px solid #d8dde3; border-bottom: none; margin-top: 2em; }
.medlab-nav a { color: #0b5cad; text-decoration: none; } .medlab-nav a:hover { text-decoration: underline; }
.medlab-nav .spacer { flex: 1; }
main.medlab-home { max-width: 72em; margin: 1.5em auto; padding: 0 1.5em; line-height: 1.45; }
main.medlab-home table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
main.medlab-home th, main.medlab-home td { border: 1px solid #d8dde3; padding: 0.35em 0.6em; vertical-align: top; }
main.medlab-home th { background: #f3f5f7; }
"""


class SiteError(RuntimeError):
    """The site cannot be built (the message says what is missing and what to run)."""


def _title(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if match:
                return match.group(1).strip()
    return fallback


def _without_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop live widget outputs: a static page cannot run them (the figure drawn before them stays)."""
    nb = deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    return nb


def _nav(labs: list[str], titles: dict[str, str], here: str | None, *, bottom: bool = False) -> str:
    links = ['<a href="index.html">MedLab: all labs</a>']
    if here is not None:
        k = labs.index(here)
        if k > 0:
            links.append(f'<a href="{labs[k - 1]}.html" rel="prev">← {html.escape(titles[labs[k - 1]])}</a>')
        if k + 1 < len(labs):
            links.append(f'<a href="{labs[k + 1]}.html" rel="next">{html.escape(titles[labs[k + 1]])} →</a>')
        links += ['<span class="spacer"></span>',
                  f'<a href="downloads/{here}.ipynb" download>download the lab (.ipynb)</a>',
                  f'<a href="downloads/student/{here}.ipynb" download>student copy (.ipynb)</a>']
    return f'<nav class="medlab-nav{" bottom" if bottom else ""}">{" ".join(links)}</nav>'


def lab_page(nb: nbformat.NotebookNode, *, nav_top: str, nav_bottom: str) -> str:
    """One lab's page: nbconvert's HTML of the executed notebook ``nb`` with the site's navigation."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="medlab.html.j2", mathjax_url=MATHJAX_URL,
                            extra_loaders=[jinja2.DictLoader({"medlab.html.j2": TEMPLATE})])
    body, _ = exporter.from_notebook_node(_without_widgets(nb))
    if "<!-- Load mathjax -->" not in body:
        raise RuntimeError("nbconvert's page no longer loads MathJax where the site expects it")
    body = body.replace("<!-- Load mathjax -->", MATHJAX_FONTS + "<!-- Load mathjax -->", 1)
    body = body.replace("</head>", f"<style>{STYLE}</style>\n</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav_top, body, count=1)
    return body.replace("</body>", nav_bottom + "\n</body>", 1)


def _syllabus_rows(readme: Path | None, labs: list[str], titles: dict[str, str]) -> str:
    """The README's syllabus table, its rows kept for the labs of this site and linked to their pages."""
    rows, header = {}, None
    if readme is not None and readme.is_file():
        section = readme.read_text(encoding="utf-8").split("## Syllabus", 1)[-1].split("\n## ", 1)[0]
        table = [line for line in section.splitlines() if line.startswith("|")]
        if len(table) > 2:
            header = table[:2]
            for line in table[2:]:
                match = re.search(r"\(notebooks/([\w.-]+)\.ipynb\)", line)
                if match and match.group(1) in labs:
                    rows[match.group(1)] = re.sub(r"\(notebooks/([\w.-]+)\.ipynb\)", r"(\1.html)", line)
    if header is None:
        header = ["| lab | title |", "|---|---|"]
    lines = list(header)
    for lab in labs:
        lines.append(rows.get(lab) or f"| [{lab}]({lab}.html) | {titles[lab]} |" + " |" * (header[0].count("|") - 3))
    return "\n".join(lines)


def home_page(*, labs: list[str], titles: dict[str, str], readme: Path | None, report: Path | None) -> str:
    """The site's index: what the course is, the syllabus, the downloads and the latest report."""
    import mistune

    markdown = mistune.create_markdown(plugins=["table"], escape=False)
    downloads = "\n".join(f"- [{titles[lab]}]({lab}.html): [lab](downloads/{lab}.ipynb) · "
                          f"[student copy](downloads/student/{lab}.ipynb)" for lab in labs)
    text = ["# MedLab: machine learning for medical image analysis, lab by lab", "",
            "Each lab below is shown as it ran, with its figures and results. Download a lab to run it "
            "yourself, or its student copy to work the exercises (each check says *Not yet* until your "
            "answer is right).", "", "## Syllabus", "", _syllabus_rows(readme, labs, titles), "",
            "## Downloads", "", downloads, ""]
    if report is not None and report.is_file():
        body = report.read_text(encoding="utf-8").replace("# MedLab course report", "").strip()
        text += ["## The latest course report", "", body, ""]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>MedLab</title><style>{STYLE}</style></head>\n<body>{_nav(labs, titles, None)}"
            f"<main class=\"medlab-home\">{markdown(chr(10).join(text))}</main></body></html>\n")


def _copy_mathjax(site_dir: Path) -> None:
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = site_dir / "mathjax"
    if not (target / "MathJax.js").is_file():
        shutil.copytree(source, target, dirs_exist_ok=True)


def build_site(
    *,
    notebook_dir: Path,
    executed_dir: Path,
    site_dir: Path,
    readme: Path | None = None,
    report: Path | None = None,
    only: Sequence[str] = (),
) -> list[Path]:
    """Write the site for the labs in ``notebook_dir`` from their executed copies in ``executed_dir``.

    Every lab needs an executed copy (``make course`` writes them); a missing one raises
    :class:`SiteError` naming it. Returns the pages written, the index first.
    """
    labs_paths = [p for p in find_notebooks(notebook_dir) if not only or p.stem in set(only)]
    missing = [p.stem for p in labs_paths if not (Path(executed_dir) / p.name).is_file()]
    if missing:
        raise SiteError(f"no executed copy in {executed_dir} of {', '.join(missing)}: run `make course` "
                        "(or `python -m medlab.course run <lab>`) first")
    site_dir = Path(site_dir)
    (site_dir / "downloads" / "student").mkdir(parents=True, exist_ok=True)
    _copy_mathjax(site_dir)
    labs = [p.stem for p in labs_paths]
    sources = {p.stem: nbformat.read(p, as_version=4) for p in labs_paths}
    titles = {lab: _title(nb, lab) for lab, nb in sources.items()}
    pages = [site_dir / "index.html"]
    pages[0].write_text(home_page(labs=labs, titles=titles, readme=readme, report=report), encoding="utf-8")
    for path in labs_paths:
        lab = path.stem
        nbformat.write(strip_outputs(deepcopy(sources[lab])), site_dir / "downloads" / path.name)
        nbformat.write(student_copy(sources[lab], name=path.name), site_dir / "downloads" / "student" / path.name)
        executed = nbformat.read(Path(executed_dir) / path.name, as_version=4)
        page = lab_page(executed, nav_top=_nav(labs, titles, lab), nav_bottom=_nav(labs, titles, lab, bottom=True))
        (site_dir / f"{lab}.html").write_text(page, encoding="utf-8")
        pages.append(site_dir / f"{lab}.html")
    return pages
