# The two commands a fresh machine needs:  `make workbook`  and  `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU wheel of torch; GPU users take environment.yml instead.
TORCH  ?= torch==2.13.0

.PHONY: setup workbook test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# Runs every notebook with papermill on the embedded synthetic default; executed copies go to outputs/notebooks/.
workbook: setup
	$(PY) -m endolib.workbook

# Unit tests, then every committed notebook executed under nbval.
test: setup
	OMP_NUM_THREADS=2 $(PY) -m pytest tests --nbval-lax notebooks -p no:cacheprovider

clean:
	rm -rf $(VENV) outputs/notebooks data
