# heritage-ld: two commands do all the set-up (see README "Quick start").
#   make publish   create .venv, install, publish the bundled sample into output/
#   make test      install the test extras (and Morph-KGC, a benchmark baseline) and run the whole test suite
#   make bench     benchmark harness at N=100000 articles (make bench N=10000 for another size)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Morph-KGC, a baseline of the benchmarks, in its own venv: it pins pyoxigraph<0.4 and rdflib<7.3
MORPH := $(VENV)/morph-kgc/bin/python

.PHONY: publish test install clean bench bench-setup

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

publish: $(BIN)/.installed
	$(BIN)/heritage-ld publish --project .
	@echo "Linked data written to $(CURDIR)/output/ (validation report: output/validation-report.txt)"

# the benchmark smoke tests compare against Morph-KGC too, so the test run installs it (its own venv)
test: $(BIN)/.installed-test $(MORPH)
	$(BIN)/python -m pytest -q

N ?= 100000

$(MORPH):
	$(PYTHON) -m venv $(VENV)/morph-kgc
	$(MORPH) -m pip install --quiet 'morph-kgc==2.10.0'

$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench-setup: $(BIN)/.installed-bench $(MORPH)

bench: bench-setup
	$(BIN)/python benchmarks/run.py -n $(N)

clean:
	rm -rf $(VENV) .pytest_cache
