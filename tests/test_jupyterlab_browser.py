"""A student's view of the widgets: notebook 02 in a real JupyterLab, run through its menus in headless Chromium.

``jupyter lab`` from this interpreter's environment serves a copy of notebooks/02_losses_and_metrics.ipynb on
127.0.0.1 (the smoke profile, temporary folders for everything Jupyter writes). Chromium clears its outputs
(Edit > Clear Outputs of All Cells), runs it (Run > Run All Cells), and drags the ranking-loss slider:
what nbval cannot see, since it never draws a widget. Skips locally, with one line, without Chromium.
A screenshot of the moved slider goes to site/screenshots/jupyterlab_02.png.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_site import SCREENSHOTS, chromium  # the one headless-Chromium launcher (and its line when Chromium is missing)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_losses_and_metrics.ipynb"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, seconds: float, what):
    """Poll ``condition()`` until it returns something true (returned) or ``seconds`` pass (fails naming ``what``,
    a string or a function that says it then)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.5)
    pytest.fail(f"JupyterLab: {what if isinstance(what, str) else what()} within {seconds:.0f} s")


@pytest.fixture
def lab(tmp_path):
    """The address of a JupyterLab serving a copy of notebook 02 (stopped afterwards), and its log file."""
    driver = chromium()  # first, so that a machine without Chromium skips before starting a server
    root = tmp_path / "work"
    root.mkdir()
    shutil.copyfile(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline, as a student's does
    env.update({name: str(tmp_path / name.lower()) for name in (
        "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR")})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    log = tmp_path / "lab.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--allow-root",  # CI runs as root
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).status == 200
        except OSError:
            return server.poll() is not None and pytest.fail(f"jupyter lab exited: {log.read_text()[-800:]}")

    try:
        wait_until(up, 90, "the server did not answer")
        yield driver, f"{base}/lab/tree/{NOTEBOOK}?token={token}", log
    finally:
        driver.quit()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def menu(driver, menu_name: str, item: str) -> None:
    """Click ``menu_name`` in JupyterLab's menu bar, then its item labelled ``item``."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//div[text()='{menu_name}']]").click()
    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-Menu-item')][.//div[text()='{item}']]").click()


PROMPTS = """return Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(p => p.textContent.trim());"""
# The error outputs of the open notebook, read from JupyterLab's own model (exposed with --LabApp.expose_app_in_browser):
# on the page an error and a warning are both rendered as stderr text.
ERRORS = """const errors = [];
for (const cell of window.jupyterapp.shell.currentWidget.content.model.cells) {
  for (let i = 0; cell.type === 'code' && i < cell.outputs.length; i++) {
    const out = cell.outputs.get(i).toJSON();
    if (out.output_type === 'error') errors.push(out.ename + ': ' + out.evalue);
  }
}
return errors;"""
PLOT = """const box = document.querySelector('.widget-interact');
const img = box && box.querySelector('.jp-OutputArea img');
return img ? img.src : null;"""


def test_notebook_02_runs_in_jupyterlab_and_its_slider_redraws_the_ranking_loss(lab):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, url, log = lab
    driver.get(url)
    wait_until(lambda: driver.execute_script(PROMPTS), 120, "notebook 02 did not open")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"),
               120, "the kernel did not start")
    menu(driver, "Edit", "Clear Outputs of All Cells")
    wait_until(lambda: all(p in ("[ ]:", "") for p in driver.execute_script(PROMPTS)), 30, "the outputs were not cleared")
    start = time.perf_counter()
    menu(driver, "Run", "Run All Cells")

    def finished():  # every cell ran, or one failed and the cells after it were not run (nothing waits: no [*])
        prompts = driver.execute_script(PROMPTS)
        if "[*]:" not in prompts and (all(p[1:-2].isdigit() for p in prompts) or driver.execute_script(ERRORS)):
            return prompts

    prompts = wait_until(finished, 240, lambda: f"Run All Cells did not finish (prompts {driver.execute_script(PROMPTS)})")
    print(f"JupyterLab ran {len(prompts)} code cells of 02 in {time.perf_counter() - start:.1f} s")
    errors = driver.execute_script(ERRORS)
    assert errors == [], f"error output in JupyterLab: {errors}"

    slider = driver.find_element(By.XPATH, "//div[contains(@class,'widget-slider')][.//label[contains(., 'z_A')]]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    before, value = wait_until(lambda: driver.execute_script(PLOT), 60, "the interactive plot was not drawn"), readout.text
    ActionChains(driver).drag_and_drop_by_offset(slider.find_element(By.CSS_SELECTOR, ".noUi-handle"), 60, 0).perform()
    after = wait_until(lambda: (src := driver.execute_script(PLOT)) and src != before and src, 60,
                       f"moving the slider (readout {value} -> {readout.text}) did not redraw the plot")
    assert readout.text != value and after != before
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "jupyterlab_02.png"))  # the slider moved and the plot redrawn
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-1500:]
