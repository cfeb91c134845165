"""`make lab` starts a real JupyterLab that serves the course, and the course works in a real browser.

One JupyterLab (started by `make lab`, on a free loopback port) serves every test here. The browser test drives
headless Chromium (Debian's `chromium` and `chromedriver`, through selenium) the way a learner would: open
notebook 00, Kernel > Restart Kernel and Run All Cells, wait, look at the outputs, move a slider. It skips when
no browser is installed, unless COURSE_BROWSER_REQUIRED=1 (set by .ci/run, which installs the browser)."""

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/00_start_here.ipynb"
SCREENSHOT = ROOT / "build" / "browser_00_start_here.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab started by `make lab`: yields (base url, token, the folder of its private settings)."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("make lab uses the project's .venv; run `make setup` (or `make test`) first")
    tmp = tmp_path_factory.mktemp("lab")
    # The browser edits notebook 00 (outputs, a slider): Lab's autosave must never write it back to the repository.
    user_settings = tmp / "user-settings" / "@jupyterlab" / "docmanager-extension"
    user_settings.mkdir(parents=True)
    (user_settings / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    port, token = free_port(), secrets.token_hex(8)
    args = (f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} "
            f"--ServerApp.port_retries=0 --LabApp.expose_app_in_browser=True")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "user-settings")}
    # A fresh workspaces folder: the learner's first `make lab`, which seeds the layout with notebook 00 open.
    server = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}", f"WORKSPACES={tmp / 'workspaces'}"], cwd=ROOT,
                              env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, up = time.monotonic() + 90, False
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    up = True
                break
            except OSError:
                time.sleep(0.5)
        assert up, "JupyterLab did not answer: " + (server.stdout.read1().decode()
                                                    if server.poll() is not None else "timeout")
        yield base, token
    finally:
        stop(server)


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode(), r.geturl()


def test_make_lab_serves_notebook_00(lab):
    base, token = lab
    page, landing = get(f"{base}/?token={token}")
    assert "JupyterLab" in page
    assert landing.startswith(f"{base}/lab/tree/{NOTEBOOK}"), landing
    model = json.loads(get(f"{base}/api/contents/{NOTEBOOK}?token={token}")[0])
    assert model["type"] == "notebook" and model["content"]["cells"]


def test_make_lab_applies_the_course_settings(lab):
    """.jupyter/: no Jupyter news pop-up, and the editable install's egg-info folder is not in the file browser."""
    base, token = lab
    names = [item["name"] for item in json.loads(get(f"{base}/api/contents?token={token}")[0])["content"]]
    assert "notebooks" in names and not [n for n in names if n.endswith(".egg-info")], names
    plugin = json.loads(get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")[0])
    assert plugin["schema"]["properties"]["fetchNews"]["default"] == "false"


def browser():
    """Headless Chromium driven by selenium, or None with the reason why not."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        return None, "no browser: install Debian's chromium and chromium-driver (.ci/run does) to run the browser test"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (it is a dev dependency: make setup)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver)), ""


# What the notebook's model holds, read from the page's JupyterLab (exposed by --LabApp.expose_app_in_browser).
NOTEBOOK_STATE = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.content.model) return null;
if (!panel.sessionContext || !panel.sessionContext.session) return null;
const kernel = panel.sessionContext.session.kernel, cells = panel.content.model.cells;
let code = 0, run = 0, errors = [];
for (let i = 0; i < cells.length; i++) {
  const cell = cells.get(i);
  if (cell.type !== 'code') continue;
  code++;
  if (cell.executionCount) run++;
  for (const out of cell.outputs.toJSON())
    if (out.output_type === 'error') errors.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
}
return {path: panel.context.path, kernel: kernel ? kernel.status : 'none', code: code, run: run, errors: errors};
"""


def wait_for(condition, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_notebook_00_runs_in_a_real_browser(lab):
    base, token = lab
    driver, reason = browser()
    if driver is None:
        if os.environ.get("COURSE_BROWSER_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = hashlib.sha256((ROOT / NOTEBOOK).read_bytes()).hexdigest()
    try:
        driver.get(f"{base}/lab?token={token}")  # plain /lab: the course's first layout opens notebook 00
        state = wait_for(lambda: (s := driver.execute_script(NOTEBOOK_STATE)) and s["kernel"] == "idle" and s,
                         90, "notebook 00 to open with an idle kernel")
        assert state["path"] == NOTEBOOK and state["code"] > 10, state

        # Kernel > Restart Kernel and Run All Cells, as the notebook tells the learner, through the menus.
        next(e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text == "Kernel").click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "li[data-command='runmenu:restart-and-run-all']"),
                 10, "the Kernel menu")[0].click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog-button.jp-mod-accept"),
                 10, "the restart dialog")[0].click()
        # Lab's Run All stops at the first error, so an error ends the wait too.
        state = wait_for(lambda: (s := driver.execute_script(NOTEBOOK_STATE)) and s["kernel"] == "idle"
                         and (s["run"] == s["code"] or s["errors"]) and s, 300, "Run All to finish")
        assert not state["errors"], state["errors"]

        # The sampler widget rendered (labels in full), and moving its temperature slider draws a new sample.
        sliders = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".widget-slider"), 30, "the sampler's sliders")
        labels = {s.find_element(By.CSS_SELECTOR, ".widget-label").text: s for s in sliders}
        assert {"temperature", "top-k (0 = off)", "top-p (1 = off)"} <= labels.keys(), list(labels)
        temperature = labels["temperature"]
        sample = driver.find_elements(By.CSS_SELECTOR, ".widget-html-content pre")[-1]
        old_text, old_readout = sample.text, temperature.find_element(By.CSS_SELECTOR, ".widget-readout").text
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", temperature)
        handle = temperature.find_element(By.CSS_SELECTOR, ".noUi-handle")
        handle.click()
        handle.send_keys(Keys.ARROW_LEFT * 10)  # 1.00 -> 0.50, one step of 0.05 per key
        wait_for(lambda: temperature.find_element(By.CSS_SELECTOR, ".widget-readout").text != old_readout, 10,
                 "the slider's readout to move")
        new = wait_for(lambda: (t := driver.find_elements(By.CSS_SELECTOR, ".widget-html-content pre")[-1].text)
                       != old_text and t, 60, "the sample to change after the slider moved")
        assert new.startswith("ROMEO:"), new[:80]
        assert not driver.execute_script(NOTEBOOK_STATE)["errors"]
        notes = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output small")]
        assert any("run the cell again" in n for n in notes), notes  # widgets.REOPENED_NOTE, under the sampler
        SCREENSHOT.parent.mkdir(exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))
    finally:
        driver.quit()
    assert hashlib.sha256((ROOT / NOTEBOOK).read_bytes()).hexdigest() == before, "the browser test saved notebook 00"


def stop(server: subprocess.Popen) -> None:
    """Stop make and the JupyterLab it started (they share a process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
