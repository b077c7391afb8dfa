# heritage-ld: two commands do all the set-up (see README "Quick start").
#   make publish   create .venv, install, publish the bundled sample into output/
#   make test      install the test extras and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: publish test install clean

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

test: $(BIN)/.installed-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
