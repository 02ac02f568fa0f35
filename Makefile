# AfterSales — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
SEED   ?= 1
ADDR   ?= 127.0.0.1:8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/aftersales_bench

.PHONY: run test test-pg lint bench demo messages venv clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

## make run: install (once), migrate, load the demo data (once), serve on http://$(ADDR)
run: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py migrate --noinput -v0
	DEBUG=1 $(BIN)/python manage.py demo --seed $(SEED) --if-empty
	@echo "售后服务管理系统 AfterSales: open http://$(ADDR)/  (API: http://$(ADDR)/api/docs, admin: http://$(ADDR)/admin/)"
	DEBUG=1 $(BIN)/python manage.py serve $(ADDR)

## make test: lint, migrations in step with models, the whole suite (PostgreSQL when DATABASE_URL says so)
test: $(STAMP) lint
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=aftersales.settings_test
	$(BIN)/pytest

## make test-pg: the suite on the local PostgreSQL, as CI runs it
test-pg: $(STAMP)
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

## make bench: the speed figures of bench/*.py, on PostgreSQL ($(PG_URL))
bench: $(STAMP)
	@for b in bench/[a-z]*.py; do echo "== $$b"; DATABASE_URL=$(PG_URL) $(BIN)/python $$b || exit 1; done

demo: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py migrate --noinput -v0
	DEBUG=1 $(BIN)/python manage.py demo --seed $(SEED) --reset

## make messages: refresh the one English catalogue (aftersales/locale) after changing user-facing strings
messages: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py makemessages -l en --no-obsolete --ignore=.venv --ignore=var --ignore=bench --ignore=node_modules
	DEBUG=1 $(BIN)/python manage.py compilemessages -l en --ignore=.venv

clean:
	rm -rf $(VENV) var
