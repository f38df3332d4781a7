# One entry point for people and CI. `make demo` and `make test` each set up what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup web run demo test lint typecheck pytest fuzz-smoke fuzz bench triton-env browser dicom3tools orthanc clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependency list or the lock changes.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The Triton test server's own environment (PyTriton needs numpy<2); reinstalled when its lock changes.
.venv-triton/.cds-requirements: cds/serving/triton/requirements-triton.txt $(VENV)/.installed
	$(BIN)/python -c 'from cds.serving.triton.launcher import ensure_triton_env as e, default_env_path as d; e(d())'

triton-env: .venv-triton/.cds-requirements

# The web workspace's vendor bundle (Cornerstone3D, web/) in cds/serving/ui/static/dist (git-ignored): `npm ci` when
# the lock changes, a build when the lock, build.mjs or web/src change. Needs Node.js 20+ with npm (installed with apt
# when missing); nothing is fetched
# at run time (workers and WASM codecs are served from /ui/dist).
WEB_DIST := cds/serving/ui/static/dist/BUILD.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { echo "the web workspace needs Node.js 20+ (found $$(node --version))" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund

$(WEB_DIST): web/node_modules/.package-lock.json web/build.mjs $(wildcard web/src/*.js)
	cd web && npm run --silent build

web: $(WEB_DIST)

setup: $(VENV)/.installed triton-env web

demo: $(VENV)/.installed
	$(BIN)/cds models list
	$(BIN)/cds demo

# The main job: check the bundled models, then serve on 127.0.0.1:8000 in dev mode (SQLite in ./data; Ctrl-C stops).
run: demo web
	$(BIN)/cds serve --dev

lint: $(VENV)/.installed
	$(BIN)/ruff check cds training benchmarks tests fuzz

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The browser tests (tests/ui) drive Debian's Chromium through Playwright; nothing downloads a browser.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# dciodvfy and dcentvfy (Debian's dicom3tools) check every DICOM output in tests/interop/test_dicom_conformance.py.
dicom3tools:
	@command -v dciodvfy >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dicom3tools; }

# Orthanc with its DICOMweb plugin plays the hospital PACS in tests/serving/test_pacs_round_trip.py (the packages
# start no service; the tests run their own on loopback ports).
orthanc:
	@command -v Orthanc >/dev/null && test -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq orthanc orthanc-dicomweb; }

pytest: setup browser dicom3tools orthanc
	$(BIN)/python -m pytest --durations=20

# Coverage-guided fuzzing of the untrusted-input readers (fuzz/README.md): a minute each in `make test`, ten in
# `make fuzz`; a finding fails the target and is left in fuzz/runs/<harness>/.
fuzz-smoke: $(VENV)/.installed
	$(BIN)/python -m fuzz.run --seconds 60 --seed 1

fuzz: $(VENV)/.installed
	$(BIN)/python -m fuzz.run --seconds 600

test: lint typecheck pytest fuzz-smoke

# Every shipped model on every backend present (Triton through a local server), the four ratios, and a plot:
# benchmarks/results/<device>-<date>.{json,md,png}. Options: .venv/bin/python -m benchmarks run --help
bench: $(VENV)/.installed triton-env
	$(BIN)/python -m benchmarks run

clean:
	rm -rf $(VENV) .venv-triton .mypy_cache .ruff_cache .pytest_cache fuzz/runs web/node_modules cds/serving/ui/static/dist
