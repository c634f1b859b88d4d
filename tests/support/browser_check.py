"""`make browser-check`: the notebooks as a learner sees them, in JupyterLab in a real browser.

JupyterLab starts from the project's virtualenv on 127.0.0.1 with a token, in the notebooks'
offline environment (demo model, a fresh embedded engine of its own). Debian's Chromium,
driven by Playwright, opens each notebook in order and runs all its cells; any error or
stderr output, browser console error, or image that did not load fails the check. Then the
search widget at the end of 03 answers a typed query, an uploaded picture and a "more like
this". Screenshots of every notebook go to build/browser-check/ (kept on failure, to look at).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
from playwright.sync_api import ConsoleMessage, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from helpers._settings import DATA_DIR, PROJECT_ROOT
from tests.support.nbval_env import NOTEBOOK_ENV

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out, and this machine refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = PROJECT_ROOT / "build" / "browser-check"
ENGINE = DATA_DIR / "browser-engine"
LAB_ROOT = SHOTS / "lab"
LAB_SETTINGS = {  # a learner's choices, made once: start the notebook's kernel, no news toasts
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}
NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
RUN_TIMEOUT_S = 300


class CheckFailed(AssertionError):
    """What a learner would have seen go wrong, in one line."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyterlab(port: int, token: str) -> Iterator[str]:
    """JupyterLab from this virtualenv, serving a copy of the notebooks (JupyterLab saves what
    it runs: the committed notebooks stay as they are), until the block ends."""
    shutil.rmtree(ENGINE, ignore_errors=True)
    shutil.rmtree(LAB_ROOT, ignore_errors=True)
    for path in NOTEBOOKS:  # without their stored outputs: what shows after Run All is what ran
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        (LAB_ROOT / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, LAB_ROOT / "notebooks" / path.name)
    for plugin, values in LAB_SETTINGS.items():
        settings = LAB_ROOT / "settings" / f"{plugin}.jupyterlab-settings"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(values))
    env = os.environ | NOTEBOOK_ENV | {"EMBEDDED_ES_PATH": str(ENGINE.relative_to(PROJECT_ROOT))}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
    command += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={LAB_ROOT}", "--allow-root"]
    command += [f"--LabApp.user_settings_dir={LAB_ROOT / 'settings'}", f"--LabApp.workspaces_dir={LAB_ROOT}"]
    # No news or update checks from the page: they would reach outside, and count as console errors.
    command += ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = (SHOTS / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise CheckFailed("JupyterLab did not start: see build/browser-check/jupyterlab.log")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def start_kernel(page: Page) -> None:
    """Wait for the notebook's kernel (JupyterLab starts it: see LAB_SETTINGS)."""
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=120_000)


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, then wait until every code cell has run (no `[*]` prompt left)."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    start_kernel(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            return prompts.length > 0 && prompts.every(text => /\\[\\d+\\]/.test(text));
        }""",
        timeout=RUN_TIMEOUT_S * 1000,
    )


def problems_on_page(page: Page) -> list[str]:
    """Error and stderr outputs, and images that did not load."""
    found = page.evaluate(
        """() => {
            const problems = [];
            for (const node of document.querySelectorAll('.jp-OutputArea-output')) {
                const mime = node.getAttribute('data-mime-type') || '';
                if (mime.includes('stderr') || mime.includes('error'))
                    problems.push(mime + ': ' + node.textContent.slice(0, 200));
            }
            for (const img of document.querySelectorAll('.jp-OutputArea img'))
                if (!img.complete || img.naturalWidth === 0) problems.push('image did not load');
            return problems;
        }"""
    )
    return list(found)


def local_error(message: ConsoleMessage, base: str) -> bool:
    """A console error from the page itself. Resources from elsewhere (the Colab badge's
    picture) cannot load on a machine without network: that is the machine, not the page."""
    return message.type == "error" and message.location.get("url", "").startswith(base)


def check_notebook(page: Page, base: str, token: str, path: Path, console_errors: list[str]) -> int:
    """Open, run all, look. Returns how many pictures the notebook shows."""
    page.goto(f"{base}/lab/tree/notebooks/{path.name}?reset&token={token}")  # reset: this notebook alone
    run_all_cells(page)
    page.wait_for_timeout(1000)  # the last outputs render
    page.screenshot(path=SHOTS / f"{path.stem}.png", full_page=True)
    problems = problems_on_page(page) + console_errors
    if problems:
        raise CheckFailed(f"{path.name}: {problems[0]}")
    return page.locator(".jp-OutputArea img").count()


def close_notebook(page: Page) -> None:
    """Kernel > Shut Down Kernel, so that notebooks do not pile up kernels in memory."""
    page.get_by_role("menuitem", name="Kernel", exact=True).click()
    page.get_by_text("Shut Down Kernel", exact=True).click()
    page.get_by_text("No Kernel", exact=True).first.wait_for(timeout=30_000)


def widget_status(page: Page, expected: str) -> str:
    """The widget's status line once it says `expected` (or an error)."""
    status = page.locator(".widget-html-content", has_text=re.compile(f"{expected}|error:"))
    status.first.wait_for(timeout=60_000)
    text = status.first.inner_text()
    if "error:" in text:
        raise CheckFailed(f"the widget answered with an error: {text}")
    return text


def check_widget(page: Page, demo_image: Path) -> None:
    """Type a query and press Enter; upload a data set picture and click Search; ask for more like a hit;
    search by object and see which object matched."""
    page.get_by_placeholder("a photo of ...").fill("a photo of a red circle")
    page.get_by_placeholder("a photo of ...").press("Enter")  # as in every search box
    typed = widget_status(page, "text: 'a photo of a red circle': 5 hits")
    if "red circle" not in typed.split("best:", 1)[1]:
        raise CheckFailed(f"the typed query's best hit is not labelled red circle: {typed}")
    page.get_by_placeholder("a photo of ...").fill("")
    with page.expect_file_chooser() as chooser:
        page.locator(".widget-upload").click()
    chooser.value.set_files(str(demo_image))
    page.get_by_role("button", name="Search").click()
    uploaded = widget_status(page, f"picture: {demo_image.name}: 5 hits")
    if f"best: train/images/{demo_image.name}" not in uploaded:
        raise CheckFailed(f"the uploaded picture did not come back first: {uploaded}")
    page.locator(".widget-dropdown select").select_option(index=1)
    page.get_by_role("button", name="More like this").click()
    widget_status(page, "more like 2.")
    page.screenshot(path=SHOTS / "widget.png", full_page=True)
    page.get_by_role("button", name="Objects").click()
    page.get_by_placeholder("a photo of ...").fill("a photo of a red circle")
    page.get_by_placeholder("a photo of ...").press("Enter")
    by_object = widget_status(page, "matched ")
    if "matched red circle" not in by_object:
        raise CheckFailed(f"searching by object did not match a red circle first: {by_object}")
    page.screenshot(path=SHOTS / "widget-objects.png", full_page=True)


def main() -> int:
    shutil.rmtree(SHOTS, ignore_errors=True)  # no screenshot of an earlier run left to mislead
    SHOTS.mkdir(parents=True)
    token, port = secrets.token_hex(16), free_port()
    started = time.monotonic()
    with jupyterlab(port, token) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console_errors: list[str] = []
        page.on("console", lambda message: local_error(message, base) and console_errors.append(message.text))
        try:
            for path in NOTEBOOKS:
                pictures = check_notebook(page, base, token, path, console_errors)
                if path.name >= "02" and pictures == 0:
                    raise CheckFailed(f"{path.name} shows no picture")
                print(f"{path.name}: ran every cell, {pictures} pictures, no error", flush=True)
                if path.name.startswith("03"):
                    check_widget(page, DATA_DIR / "demo" / "train" / "images" / "demo_0_000009.jpg")
                    print(
                        "03 widget: a typed query, an uploaded picture, more like this and a search by object answered",
                        flush=True,
                    )
                close_notebook(page)
        except (CheckFailed, PlaywrightError) as failure:
            page.screenshot(path=SHOTS / "failure.png", full_page=True)
            print(f"browser check failed: {failure} (screenshots in build/browser-check/)", file=sys.stderr)
            return 1
        finally:
            browser.close()
    print(f"browser check passed in {time.monotonic() - started:.0f} s (screenshots in build/browser-check/)")
    return 0


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    sys.exit(main())
