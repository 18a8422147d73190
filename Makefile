# nba: one target per habit. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data
DEMO_CUSTOMERS ?= 5000
DEMO_DAYS ?= 90
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint format typecheck bench clean

help: ## Show this help.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install nba with its dev tools.

demo: $(STAMP) ## Run the product end to end on embedded defaults.
	$(BIN)/nba simulate --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --seed 7 --out $(DATA)/retailer
	$(BIN)/nba validate $(DATA)/retailer
	$(BIN)/nba features build --data $(DATA)/retailer --out $(DATA)/profiles.parquet
	$(BIN)/nba actions reach --profiles $(DATA)/profiles.parquet
	$(BIN)/nba features materialise --data $(DATA)/retailer --data-dir $(DATA)
	$(BIN)/nba features show --data $(DATA)/retailer --profiles $(DATA)/profiles.parquet --data-dir $(DATA)
	$(BIN)/nba train all --data $(DATA)/retailer --data-dir $(DATA) --promote
	$(BIN)/nba recommend --customers C000001,C000002 --k 10 --data-dir $(DATA)
	$(BIN)/nba decide --audience $(DATA)/profiles.parquet --out $(DATA)/decisions.parquet
	$(BIN)/nba decide-examples --data $(DATA)/retailer
	$(BIN)/nba api-demo --data-dir $(DATA)
	$(BIN)/nba archive compact $(DATA)/archive
	$(BIN)/nba experiments simulate --customers 1000 --days 30 --trigger-every-hours 12 --out $(DATA)/experiment
	$(BIN)/nba experiments report simulated_ab --results $(DATA)/experiment --data-dir $(DATA)
	$(BIN)/nba experiments ope --simulate --customers 1000 --days 3 --history-days 30 --no-closed-loop

test: $(STAMP) ## Run the test suite (unit, integration against real Redis/MLflow, doctests).
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP) ## Check style (ruff) and types (mypy).
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy nba features simulator training serving experiments cli

format: $(STAMP) ## Format the code with ruff.
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## Run the benchmarks (see BENCHMARKS.md for recorded results).
	$(BIN)/python benchmarks/bench_simulator.py

clean: ## Remove the venv, caches and generated data.
	rm -rf $(VENV) $(DATA) .pytest_cache .ruff_cache .mypy_cache .hypothesis
