"""Settings for every test run, notebooks included: smoke scale, a throw-away COURSE_HOME, an absolute
COURSE_DATA, a headless matplotlib. They are set before any notebook kernel starts, so nbval's kernels
inherit them."""

import os
import tempfile
from pathlib import Path


def pytest_configure(config):
    os.environ.setdefault("COURSE_SCALE", "smoke")
    os.environ["COURSE_HOME"] = tempfile.mkdtemp(prefix="llm-course-home-")
    if os.environ.get("COURSE_DATA"):
        os.environ["COURSE_DATA"] = str(Path(os.environ["COURSE_DATA"]).expanduser().resolve())
    os.environ.setdefault("MPLBACKEND", "Agg")
