"""`make lab` starts a real JupyterLab that serves the course."""

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_serves_notebook_00(tmp_path):
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("make lab uses the project's .venv; run `make setup` (or `make test`) first")
    port, token = free_port(), secrets.token_hex(8)
    args = (f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} "
            f"--ServerApp.port_retries=0")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    server = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, page = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/?token={token}", timeout=5) as r:
                    page, landing = r.read().decode(), r.geturl()
                break
            except OSError:
                time.sleep(0.5)
        assert page is not None, "JupyterLab did not answer: " + (server.stdout.read1().decode()
                                                                  if server.poll() is not None else "timeout")
        assert "JupyterLab" in page
        assert landing.startswith(f"{base}/lab/tree/notebooks/00_start_here.ipynb"), landing
        with urllib.request.urlopen(f"{base}/api/contents/notebooks/00_start_here.ipynb?token={token}") as r:
            model = json.load(r)
        assert model["type"] == "notebook" and model["content"]["cells"]
    finally:
        stop(server)


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
