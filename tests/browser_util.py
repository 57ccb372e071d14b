"""Helpers for tests/test_browser.py: JupyterLab on loopback, headless Chromium driven by Selenium, what a page shows.

- ``Lab``: a JupyterLab server on 127.0.0.1 (free port, random token, ``--no-browser``) in its own process group, with
  its own config, settings, workspaces and runtime folders (nothing of the user's own Jupyter set-up leaks in); ``stop``
  shuts its kernels down, signals the whole group and reports any process of its tree that outlived it.
- ``start_chromium``: Debian's headless Chromium with the system chromedriver; Selenium Manager is never consulted, so
  nothing is downloaded.
- ``LabPage``: a student's actions on one notebook (open it, Run > Run All Cells, File > Save Notebook, drag a slider)
  and what the page shows afterwards (``problems``, ``stderr_texts``, a screenshot of the whole notebook).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from unittest import mock

from izkit.serving.loopback import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1400, 1000)  # a laptop-sized window; the file browser stays open, as a student has it
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}"]
WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class")
STDERR = "application/vnd.jupyter.stderr"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# JupyterLab user settings for the test server: no news or update pop-ups over the notebook; every cell attached to the
# page (no windowing), so what is checked and photographed is the whole notebook; cell timings kept in the saved file.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none", "recordTiming": True,
                                                                    "scrollPastEnd": False},
}


def browser_missing() -> list[str]:
    """What is missing to drive a browser: the chromium and chromedriver binaries, the selenium package."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    return missing


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren ...), read from /proc."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in found]
        found.update(kids)
        todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def end_processes(pids: set[int], wait: float = 15.0, grace: float = 10.0) -> list[str]:
    """Give the processes ``wait`` seconds to exit on their own, then SIGTERM, then SIGKILL the ones still alive;
    describe each one that had to be ended."""
    deadline = time.monotonic() + wait
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in pids if alive(p)]
    names = []
    for p in left:
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            names.append(f"{p}: {cmdline[:200] or Path(f'/proc/{p}/comm').read_text().strip()}")
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while any(alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in left:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    return names


class Lab:
    """A JupyterLab server on 127.0.0.1 serving ``root``, its kernels started with ``env``."""

    def __init__(self, root: Path, state: Path, env: dict[str, str], log: Path):
        self.root, self.state, self.log = root, state, log
        self.port, self.token = free_port(), secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "matplotlib")]:
            (state / sub).mkdir(parents=True, exist_ok=True)
            self.env[var] = str(state / sub)
        for name, values in LAB_SETTINGS.items():
            path = state / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "Lab":
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def api(self, method: str, path: str, timeout: float = 30.0):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def url(self, name: str, workspace: str) -> str:
        """A notebook in its own fresh workspace, so no tab of an earlier notebook is restored beside it."""
        return f"{self.base}/lab/workspaces/{workspace}/tree/{name}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """Shut down every session and kernel (one model-heavy kernel at a time on a small machine)."""
        for s in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{s['id']}", timeout=60)
        for k in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{k['id']}", timeout=60)

    def stop(self) -> list[str]:
        """Stop the server and everything it started; return the processes that had to be ended by hand."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            self.shutdown_kernels()
        except OSError:
            pass
        tree = descendants(self.proc.pid)  # kernels run in sessions of their own: remember them before the signal
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        except ProcessLookupError:
            pass
        return end_processes(tree | descendants(self.proc.pid))


def start_chromium(user_data_dir: Path, log: Path):
    """Headless Chromium through the system chromedriver, with the browser console kept for error messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={user_data_dir}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=str(log))

    def refuse(*_args, **_kw):
        raise AssertionError("Selenium Manager was asked for a browser or driver: nothing may be downloaded")

    with mock.patch.object(SeleniumManager, "binary_paths", refuse):
        driver = webdriver.Chrome(service=service, options=opts)
    driver.set_script_timeout(60)
    return driver


# ----------------------------------------------------------------------------------------------------------------------
# What the page shows. One script reads the notebook panel; the Python side decides what counts as a problem.

_STATE_JS = r"""
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) return null;
const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map(c => ({
  code: c.classList.contains('jp-CodeCell'),
  prompt: (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
  empty: c.classList.contains('jp-CodeCell') && !((c.querySelector('.cm-content') || {}).textContent || '').trim(),
  stderr: [...c.querySelectorAll('.jp-OutputArea-output[data-mime-type="%s"]')].map(o => o.innerText),
  widgets: c.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets').length,
  widgetErrors: [...c.querySelectorAll('.jupyter-widgets-error-widget')].map(e => e.textContent.trim()),
}));
const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
const tab = document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current');
const dialogs = [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.slice(0, 300));
return {cells: cells, dialogs: dialogs, status: ind ? ind.getAttribute('data-status') : null,
        dirty: tab ? tab.classList.contains('jp-mod-dirty') : null,
        text: document.body.innerText + '\n' + [...document.querySelectorAll('.jp-OutputArea')].map(
          o => o.textContent).join('\n')};
""" % STDERR


ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception)(?::|\s*$)", re.M)


def is_error_text(text: str) -> bool:
    """An error's traceback as JupyterLab shows it (errors render as stderr), not a warning or a progress bar."""
    return "Traceback" in text or bool(ERROR_LINE.search(text))


def cell_seconds(saved: Path) -> list[tuple[int, float, str]]:
    """(cell index, seconds, first line of the source) of every code cell that ran, from the timing JupyterLab saved
    in the notebook (``recordTiming``), slowest first."""
    from datetime import datetime

    nb = json.loads(saved.read_text())
    out = []
    for i, cell in enumerate(nb["cells"]):
        t = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in t and "shell.execute_reply" in t:
            dt = (datetime.fromisoformat(t["shell.execute_reply"]) - datetime.fromisoformat(t["iopub.execute_input"]))
            src = "".join(cell["source"]).strip().splitlines()
            out.append((i, dt.total_seconds(), src[0][:80] if src else ""))
    return sorted(out, key=lambda x: -x[1])


class LabPage:
    """One browser tab on a Lab server, used as a student would."""

    def __init__(self, driver, lab: Lab):
        self.driver, self.lab, self._n = driver, lab, 0
        self.answered: list[str] = []  # dialogs answered for the student (title and page)

    # -- waiting ------------------------------------------------------------------------------------------------------
    def wait(self, predicate, timeout: float, what: str, poll: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}; the page: {self.summary()}")
            time.sleep(poll)

    def state(self) -> dict | None:
        return self.driver.execute_script(_STATE_JS)

    def summary(self) -> str:
        """The kernel status and the cells' prompts, for a failure message."""
        try:
            s = self.state()
        except Exception as e:  # noqa: BLE001 (a page that no longer answers is worth reporting too)
            return f"no answer from the page ({type(e).__name__})"
        if not s:
            return "no notebook panel"
        dialogs = f", dialogs {s['dialogs']}" if s["dialogs"] else ""
        return f"kernel {s['status']}, prompts {' '.join(c['prompt'] for c in s['cells'] if c['code'])}{dialogs}"

    # -- a student's actions ----------------------------------------------------------------------------------------
    def open(self, name: str, timeout: float = 180.0) -> None:
        """Open a notebook in a fresh workspace and wait until its kernel is up and idle. JupyterLab may still ask
        which kernel to start (a race at page load): the dialog is answered with its default, Python 3."""
        self._n += 1
        self.console_errors()  # drop the console messages of the page before
        self.driver.get(self.lab.url(name, f"t{self._n}"))
        calm_since = [None]

        def ready():
            self.accept_dialogs("Select Kernel")
            s = self.state()
            sessions = [x for x in self.lab.api("GET", "/api/sessions") if x["path"] == name]
            ok = (s and s["cells"] and s["status"] == "idle" and not s["dialogs"] and sessions
                  and sessions[0]["kernel"]["execution_state"] == "idle" and sessions[0]["kernel"]["connections"])
            if not ok:
                calm_since[0] = None
                return False
            calm_since[0] = calm_since[0] or time.monotonic()
            return time.monotonic() - calm_since[0] > 2.0

        self.wait(ready, timeout, f"{name} to open with an idle kernel")

    def accept_dialogs(self, title: str) -> None:
        from selenium.webdriver.common.by import By

        for dialog in self.driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog"):
            if title in dialog.text:
                self.answered.append(f"{title} ({self.driver.title})")
                dialog.find_element(By.CSS_SELECTOR, ".jp-Dialog-button.jp-mod-accept").click()
                time.sleep(0.5)

    def menu(self, menu: str, item: str) -> None:
        """Click a main-menu item by its labels: ``menu`` on the bar (Run, File ...), ``item`` in the menu."""
        from selenium.webdriver.common.by import By

        bar = f"//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='{menu}']]"
        self.driver.find_element(By.XPATH, bar).click()
        xpath = (f"//li[contains(@class,'lm-Menu-item')][not(contains(@class,'lm-mod-disabled'))]"
                 f"[.//div[contains(@class,'lm-Menu-itemLabel')][normalize-space()='{item}']]")
        self.wait(lambda: [e for e in self.driver.find_elements(By.XPATH, xpath) if e.is_displayed()], 10,
                  f"{menu} > {item}")[0].click()

    def run_all(self) -> None:
        """Run > Run All Cells, and check that the kernel took the cells."""
        self.menu("Run", "Run All Cells")
        self.wait(lambda: (s := self.state()) and (s["status"] != "idle" or any(
            c["prompt"].strip() not in ("", "[ ]:") for c in s["cells"] if c["code"])), 60,
            "the first cell to start after Run All Cells")

    def wait_until_done(self, timeout: float) -> dict:
        """Wait until the kernel is idle, no cell shows [*] and every non-empty code cell has run (or one failed)."""
        def done():
            s = self.state()
            if not s or s["status"] != "idle":
                return None
            code = [c for c in s["cells"] if c["code"] and not c["empty"]]
            if any("*" in c["prompt"] for c in code):
                return None
            ran = all(any(ch.isdigit() for ch in c["prompt"]) for c in code)
            failed = any(is_error_text(t) for c in code for t in c["stderr"])
            return s if ran or failed else None

        self.wait(done, timeout, "all cells to run")
        time.sleep(2.0)  # widget views attach after the kernel went idle; check again once they have
        return self.wait(done, 60, "the notebook to settle")

    def save(self, timeout: float = 60.0) -> None:
        self.menu("File", "Save Notebook")
        self.wait(lambda: (s := self.state()) and s["dirty"] is False, timeout, "the notebook to be saved")

    # -- what the page shows ------------------------------------------------------------------------------------------
    def problems(self, saved: Path | None = None) -> list[str]:
        """Everything a student would see go wrong: tracebacks, widgets that failed to render, widgets shown as text.

        With ``saved`` (the notebook as saved from this page) also the error outputs and widget outputs in the file.
        """
        self.reveal_widget_errors()
        s = self.state()
        if s is None:
            return ["no notebook panel on the page"]
        found = []
        for i, c in enumerate(s["cells"]):
            found += [f"cell {i}: an error in the output:\n{t[:1500]}" for t in c["stderr"] if is_error_text(t)]
            found += [f"cell {i}: a widget that failed to render: {t[:500] or '(no message)'}"
                      for t in c["widgetErrors"]]
        for line in dict.fromkeys(line.strip() for line in s["text"].splitlines()):
            if any(w in line for w in WIDGET_ERRORS):
                found.append(f"widget error on the page: {line[:500]}")
        if saved is not None:
            nb = json.loads(saved.read_text())
            for i, cell in enumerate(nb["cells"]):
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error":
                        found.append(f"cell {i}: {out['ename']}: {out['evalue']}"[:500])
                in_file = sum(WIDGET_VIEW in out.get("data", {}) for out in cell.get("outputs", []))
                shown = s["cells"][i]["widgets"] if i < len(s["cells"]) else 0
                if in_file > shown:
                    found.append(f"cell {i}: {in_file - shown} of {in_file} widget outputs not rendered as widgets "
                                 "(no widget manager in the front end?)")
        return found

    def reveal_widget_errors(self) -> None:
        """A widget that failed shows "Click to show javascript error."; click, as a student would, to see why."""
        from selenium.webdriver.common.by import By

        for e in self.driver.find_elements(By.CSS_SELECTOR, ".jupyter-widgets-error-widget"):
            if "Click to show" in e.text:
                self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", e)
                e.click()
        time.sleep(0.3)

    def stderr_texts(self) -> list[tuple[int, str]]:
        """(cell index, text) of every stderr output that is not an error: warnings, progress bars."""
        s = self.state() or {"cells": []}
        return [(i, t) for i, c in enumerate(s["cells"]) for t in c["stderr"] if not is_error_text(t)]

    def console_errors(self) -> list[str]:
        try:
            return [e["message"][:300] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
        except Exception:  # noqa: BLE001 (a driver without the log endpoint)
            return []

    def screenshot(self, path: Path, max_height: int = 30000) -> int:
        """The whole notebook as a student scrolls through it, in one image: the window is made as tall as the notebook
        (same width), photographed, and put back. Returns the image's height."""
        scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
        overflow = f"const e = document.querySelector('{scroller}'); return e ? e.scrollHeight - e.clientHeight : 0;"
        height = WINDOW[1]
        for _ in range(5):  # widgets and images may reflow once the window is taller
            extra = self.driver.execute_script(overflow)
            if extra <= 1 or height >= max_height:
                break
            height = min(max_height, height + extra)
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": WINDOW[0], "height": height, "deviceScaleFactor": 1, "mobile": False})
            time.sleep(1.0)
        path.parent.mkdir(parents=True, exist_ok=True)
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        time.sleep(0.5)
        return height

    # -- widgets ------------------------------------------------------------------------------------------------------
    def explorer_cell(self, css_class: str | None = None):
        """Where an explorer's widgets are: the box with the CSS class ``css_class`` (``ui.add_class`` in izkit), or,
        with none, the output area of the first cell that holds a slider and an image widget. None when not found."""
        from selenium.webdriver.common.by import By

        panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
        if css_class is not None:
            boxes = self.driver.find_elements(By.CSS_SELECTOR, f"{panel} .jp-OutputArea .{css_class}")
            return boxes[0] if boxes else None
        for cell in self.driver.find_elements(By.CSS_SELECTOR, f"{panel} .jp-CodeCell"):
            if (cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-slider")
                    and cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-image")):
                return cell.find_element(By.CSS_SELECTOR, ".jp-OutputArea")
        return None

    def image_bytes(self, img) -> bytes:
        """The bytes behind an ``img`` element (a widget image is a blob: URL)."""
        data = self.driver.execute_async_script("""
            const [img, done] = arguments;
            fetch(img.src).then(r => r.arrayBuffer()).then(b => {
              let s = ''; const u = new Uint8Array(b);
              for (let i = 0; i < u.length; i += 8192) s += String.fromCharCode.apply(null, u.subarray(i, i + 8192));
              done(btoa(s));
            }).catch(e => done('ERROR ' + e));""", img)
        if data.startswith("ERROR"):
            raise RuntimeError(f"could not read the image: {data}")
        return base64.b64decode(data)

    def drag_slider(self, root, offset: int = 60, timeout: float = 120.0) -> dict:
        """Drag the first slider under ``root`` (an explorer, from :meth:`explorer_cell`) by ``offset`` pixels, as a
        student does with the mouse, and wait until the kernel is idle again and the explorer's image has been
        redrawn. Returns the readouts and images before and after."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        slider = root.find_elements(By.CSS_SELECTOR, ".widget-slider")[0]
        handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
        readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
        img = root.find_element(By.CSS_SELECTOR, ".widget-image")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", slider)
        before = {"readout": readout.text, "src": img.get_attribute("src"), "png": self.image_bytes(img)}
        ActionChains(self.driver).click_and_hold(handle).pause(0.2).move_by_offset(offset, 0).pause(0.2) \
            .release().perform()

        after = self.image_after(root, before["src"], timeout)
        after["readout"] = readout.text
        return {"before": before, "after": after}

    def submit_text(self, root, text: str, timeout: float = 300.0) -> dict:
        """Type ``text`` into the first text box under ``root`` (an explorer) and press Enter, as a student does, then
        wait until the kernel is idle again and the explorer's image has been redrawn. Returns the images before and
        after."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        box = root.find_element(By.CSS_SELECTOR, ".widget-text input")
        img = root.find_element(By.CSS_SELECTOR, ".widget-image")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
        before = {"src": img.get_attribute("src"), "png": self.image_bytes(img)}
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)
        box.send_keys(text, Keys.ENTER)

        return {"before": before, "after": self.image_after(root, before["src"], timeout)}

    def image_after(self, root, src_before: str, timeout: float) -> dict:
        """Wait until the kernel is idle and the explorer's image under ``root`` has a new source; its source and
        bytes then (or, after ``timeout``, as they are, so the caller's comparison fails with what the page shows)."""
        from selenium.webdriver.common.by import By

        def redrawn():
            s = self.state()
            if not s or s["status"] != "idle":
                return None
            now = root.find_element(By.CSS_SELECTOR, ".widget-image")
            src = now.get_attribute("src")
            return {"src": src, "png": self.image_bytes(now)} if src != src_before else None

        try:
            return self.wait(redrawn, timeout, "the explorer's image to be redrawn", poll=1.0)
        except TimeoutError:
            img = root.find_element(By.CSS_SELECTOR, ".widget-image")
            return {"src": img.get_attribute("src"), "png": self.image_bytes(img)}
