# Nanhai grid command platform — set-up, run and test on Debian/Ubuntu.
#   make run    install what is missing, start the embedded PostGIS, migrate, seed, serve :8050
#   make test   the same set-up, ruff, the import contract, mypy, then the whole test suite (real PostGIS, real
#               headless Chromium)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# nginx and systemd (systemd-analyze): the deployment tests run deploy/'s nginx example and verify its units
# openjdk-17-jre-headless: the Java runtime of the Spark matcher (gridctl match --engine spark; its tests start a
# local cluster)
APT_PACKAGES := postgresql-15-postgis-3 postgresql-client-15 chromium chromium-driver fonts-noto-cjk python3-venv \
                nginx systemd openjdk-17-jre-headless
HOST ?= 127.0.0.1
PORT ?= 8050
DEMO_PASSWORD ?= nanhai-demo-2026

.PHONY: run test setup system venv db lint clean-db

run: db
	$(BIN)/gridctl serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/gridctl db start
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: system venv

# System packages: PostgreSQL 15 + PostGIS and its client, Chromium and its driver, CJK fonts, nginx, systemd, Java.
system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark]'
	touch $@

db: setup
	$(BIN)/gridctl db start
	$(BIN)/gridctl db upgrade
	$(BIN)/gridctl seed nanhai
	$(BIN)/gridctl users demo --password $(DEMO_PASSWORD)
	$(BIN)/gridctl demo activity

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

clean-db:
	-$(BIN)/gridctl db stop
	rm -rf .data
