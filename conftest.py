"""Settings for every test run, notebooks included: smoke scale, a throw-away COURSE_HOME, an absolute
COURSE_DATA, a headless matplotlib. They are set before any notebook kernel starts, so nbval's kernels
inherit them. The throw-away COURSE_HOME is removed when the run ends."""

import os
import shutil
import tempfile
from pathlib import Path

_created: list[str] = []  # the temporary COURSE_HOME of this run, removed at the end


def pytest_configure(config):
    os.environ.setdefault("COURSE_SCALE", "smoke")
    home = tempfile.mkdtemp(prefix="llm-course-home-")
    _created.append(home)
    os.environ["COURSE_HOME"] = home
    if os.environ.get("COURSE_DATA"):
        os.environ["COURSE_DATA"] = str(Path(os.environ["COURSE_DATA"]).expanduser().resolve())
    os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_unconfigure(config):
    while _created:
        shutil.rmtree(_created.pop(), ignore_errors=True)
