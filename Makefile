# The course in two commands:  `make lab`  (study)  and  `make test`  (check everything).
# Each target does its own set-up: a .venv is created and filled on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SCALE  ?= cpu
NB     ?= 00
LAB_ARGS ?=
WORKSPACES ?= .jupyter/workspaces
# Jupyter refuses to start as root unless told; containers and cloud machines often run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
NB_FILE = $(firstword $(wildcard notebooks/$(NB)_*.ipynb) $(wildcard notebooks/$(NB)))

.PHONY: setup lab test run solutions grade lint bench clean

setup: $(VENV)/.installed

# Re-install only when the dependency files change. torch is pinned by constraints.txt; scripts/torch_index.py
# adds PyTorch's CPU index on Linux without an NVIDIA GPU (when it answers), so that the pin gets the CPU build.
$(VENV)/.installed: pyproject.toml constraints.txt scripts/torch_index.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install $$($(BIN)/python scripts/torch_index.py --explain) -c constraints.txt -e ".[dev]"
	touch $@

# .jupyter/ holds the course's Lab settings (no news pop-up, no egg-info in the file browser, a first layout with
# notebook 00 open); the learner's layout is kept in $(WORKSPACES). See .jupyter/README.md.
lab: setup
	@ls $(WORKSPACES)/default-*.jupyterlab-workspace >/dev/null 2>&1 || \
		JUPYTERLAB_WORKSPACES_DIR="$(WORKSPACES)" $(BIN)/jupyter lab workspaces import .jupyter/workspace.json
	JUPYTERLAB_WORKSPACES_DIR="$(WORKSPACES)" \
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	$(BIN)/jupyter lab --LabApp.app_settings_dir="$(CURDIR)/.jupyter/lab-settings" --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb $(ROOT_FLAG) $(LAB_ARGS)

test: setup
	COURSE_SCALE=smoke $(BIN)/python -m pytest

# Execute one notebook headless, e.g. `make run NB=01 SCALE=cpu`; executed copy and HTML land in build/.
run: setup
	@test -n "$(NB_FILE)" || { echo "No notebook matches NB=$(NB) in notebooks/"; exit 2; }
	mkdir -p build
	COURSE_SCALE=$(SCALE) $(BIN)/jupyter nbconvert --to notebook --execute \
		--ExecutePreprocessor.timeout=3600 --output-dir build \
		--output $(basename $(notdir $(NB_FILE))).$(SCALE).ipynb $(NB_FILE)
	$(BIN)/jupyter nbconvert --to html build/$(basename $(notdir $(NB_FILE))).$(SCALE).ipynb

# For teachers (lessons/README.md, "Grading the exercises"): `make solutions` writes the notebooks with every exercise
# solved to build/solutions/; `make grade DIR=submissions` runs each submitted notebook headless at smoke scale and
# writes one row per student and exercise to build/grades.csv (more options: GRADE_ARGS="--notebook 01 --timeout 300").
solutions: setup
	$(BIN)/python scripts/classroom.py solutions --out build/solutions

grade: setup
	@test -n "$(DIR)" || { echo "usage: make grade DIR=<folder of submitted notebooks> (see lessons/README.md)"; exit 2; }
	$(BIN)/python scripts/classroom.py grade "$(DIR)" --csv build/grades.csv $(GRADE_ARGS)

lint: setup
	$(BIN)/ruff check helpers tests benchmarks scripts conftest.py

# Speed measurements (not tests): printed tables, reported in the README's results.
bench: setup
	$(BIN)/python benchmarks/bpe_speed.py

clean:
	rm -rf build .pytest_cache
