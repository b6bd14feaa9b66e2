# Two commands do all set-up on a fresh machine with Python 3.11:
#   make book   -> .venv, the project with its book extras, the HTML site in _build/html
#   make test   -> .venv, unit tests, and nbval over every chapter at the smoke profile
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
BOOKFLAGS ?=
STAMP := $(VENV)/.symact-installed

# A relative data root is taken from the repository root, wherever a notebook runs.
ifdef SYMACT_DATA
export SYMACT_DATA := $(abspath $(SYMACT_DATA))
endif

CHAPTERS := $(wildcard book/*.md)
NBVAL_DIR := _build/nbval

.PHONY: help install test unit nbval book check-site chapter benchmark clean

help:
	@echo "make test                         unit tests + every chapter under nbval (smoke profile)"
	@echo "make book                         build the HTML book into _build/html"
	@echo "make check-site                   check _build/html in headless Chromium, screenshots in _build/screenshots"
	@echo "make chapter NAME=dome PROFILE=quick   execute one chapter into _build/chapters/NAME.ipynb"
	@echo "make benchmark                    speed and memory benchmarks (benchmarks/*.py)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[book,test]'
	touch $(STAMP)

test: install
	rm -rf $(NBVAL_DIR) && mkdir -p $(NBVAL_DIR)
	for f in $(CHAPTERS); do $(VENV)/bin/jupytext --quiet --to ipynb -o $(NBVAL_DIR)/$$(basename $${f%.md}).ipynb $$f || exit 1; done
	SYMACT_PROFILE=smoke $(PY) -m pytest tests $(NBVAL_DIR) --nbval-lax -p no:cacheprovider

book: install
	$(VENV)/bin/jupyter-book build --all $(BOOKFLAGS) .
	@echo "Open _build/html/index.html"

# Every figure the book shows is in git (names, not bytes); then every page in headless Chromium (needs
# Debian's chromium package or CHROMIUM=/path): no raw TeX, no broken image, link or anchor, no JavaScript error.
check-site: install
	@test -f _build/html/index.html || { echo "no _build/html: run make book first"; exit 1; }
	status=0; $(PY) .ci/check_figures.py _build/html || status=1; \
	$(PY) .ci/check_html.py _build/html || status=1; exit $$status

chapter: install
	@test -n "$(NAME)" || { echo "usage: make chapter NAME=<chapter> [PROFILE=smoke|quick|paper]"; exit 1; }
	mkdir -p _build/chapters
	SYMACT_PROFILE=$(PROFILE) $(VENV)/bin/jupytext --execute --to ipynb -o _build/chapters/$(NAME).ipynb book/$(NAME).md

benchmark: install
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf _build
