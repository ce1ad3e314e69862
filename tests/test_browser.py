"""The window/level viewer of lab 01, used as a learner uses it: in JupyterLab, in a real browser.

JupyterLab starts on the loopback address with a token and the course's settings (``jupyter/``,
as ``make lab`` starts it); headless Chromium (the operating system's package, driven by
Playwright) opens lab 01, runs it, and moves the viewer's slice slider. The live view must change
with the slider, no dialog or notice may wait for the learner, and the browser console must show
no error. Without Chromium the test is skipped with the command that installs it.
"""

import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LAB = "01_preprocessing"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    found = os.environ.get("MEDLAB_CHROMIUM") or next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if not found:
        pytest.skip("no Chromium for the browser test: install it with `apt-get install chromium` "
                    "(Debian/Ubuntu; or set MEDLAB_CHROMIUM to a Chrome or Chromium executable)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab serving a copy of lab 01 (smoke profile) from ``tmp_path``; yields its URL and token."""
    nb = nbformat.read(ROOT / "notebooks" / f"{LAB}.ipynb", as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace('PROFILE = "default"', 'PROFILE = "smoke"')
    nbformat.write(nb, tmp_path / f"{LAB}.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(ROOT / "jupyter")}
    env.pop("MEDLAB_CHECKS", None)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _live_image(page, viewer):
    """The live view's picture (a PNG the kernel drew), as a grey array, once it is there."""
    from PIL import Image

    image = viewer.locator(".widget-output img").first
    image.wait_for(state="visible", timeout=60_000)
    return image.get_attribute("src"), np.asarray(Image.open(io.BytesIO(image.screenshot())).convert("L"), float)


def _move(page, slider, steps: int):
    handle = slider.locator(".noUi-handle, [role='slider']").first
    handle.focus()
    for _ in range(steps):
        page.keyboard.press("ArrowRight")


@pytest.mark.slow
def test_the_window_viewer_follows_its_slider_in_chromium(jupyterlab, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    executable = _browser()
    url, token = jupyterlab
    problems = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        try:
            page.goto(f"{url}/lab/tree/{LAB}.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            page.wait_for_timeout(2000)  # what greets the learner has had time to appear
            assert page.locator(".jp-Dialog").count() == 0, "a dialog waits for the learner"
            assert page.locator(".Toastify__toast").count() == 0, \
                f"a notice waits for the learner: {page.locator('.Toastify__toast').first.inner_text()}"
            kernel = page.locator(".jp-Toolbar-kernelName").first.inner_text()
            assert "MedLab" in kernel, f"the lab opened in kernel {kernel!r}, not the course's"

            page.locator(".jp-Notebook").first.click()
            page.get_by_role("menuitem", name="Run").click()
            page.get_by_text("Run All Cells", exact=True).click()
            slider = page.locator(".widget-slider").first
            slider.wait_for(timeout=300_000)
            slider.scroll_into_view_if_needed()
            viewer = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider")).first

            _move(page, slider, 3)
            first_src, first = _live_image(page, viewer)
            _move(page, slider, 8)
            page.wait_for_function(
                "([sel, src]) => { const i = document.querySelector(sel); return i && i.src !== src; }",
                arg=[".widget-output img", first_src], timeout=60_000)
            page.wait_for_timeout(500)
            _, second = _live_image(page, viewer)
            page.screenshot(path=str(tmp_path / "viewer.png"))
        finally:
            browser.close()
    assert first.shape == second.shape and first.std() > 5, "the live view shows no image"
    assert np.abs(first - second).mean() > 1.0, "moving the slice slider did not change the image"
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_the_course_site_typesets_maths_offline_in_chromium(tmp_path):
    """A page of the site, opened from disk: MathJax (the site's own copy) typesets the maths and
    nothing is requested from the network."""
    playwright = pytest.importorskip("playwright.sync_api")
    executable = _browser()
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from medlab.site import build_site

    nb = new_notebook(cells=[new_markdown_cell("# 01 · Maths\n\nThe sigmoid $\\sigma(z) = 1 / (1 + e^{-z})$ and\n\n"
                                               "$$L = -\\frac{1}{N}\\sum_i y_i \\log p_i.$$"),
                             new_code_cell('PROFILE = "default"', metadata={"tags": ["parameters"]})])
    for folder in ("notebooks", "executed"):
        (tmp_path / folder).mkdir()
        nbformat.write(nb, tmp_path / folder / "01_maths.ipynb")
    build_site(notebook_dir=tmp_path / "notebooks", executed_dir=tmp_path / "executed", site_dir=tmp_path / "site")
    remote, problems = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda r: remote.append(r.url) if r.url.startswith(("http:", "https:")) else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            page.goto((tmp_path / "site" / "01_maths.html").as_uri())
            page.wait_for_function("() => document.querySelectorAll('.MathJax, .MathJax_Display').length >= 2",
                                   timeout=60_000)
            page.wait_for_timeout(1000)
            text = page.locator("body").inner_text()
        finally:
            browser.close()
    assert "Math Processing Error" not in text and "\\frac" not in text, "MathJax left the maths untypeset"
    assert not remote, f"the page fetched from the network: {remote}"
    assert not problems, problems
