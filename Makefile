# The two set-up commands are `make demo` and `make test`; each builds .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install test lint demo bench reliability audit clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check anomaly_vae pipelines serving tests
	$(VENV)/bin/ruff format --check anomaly_vae pipelines serving tests
	$(VENV)/bin/mypy anomaly_vae serving

demo: install
	$(PY) -m pipelines.demo

bench: install
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(PY) -m pipelines.cli benchmark adbench --data-dir ../shared/data/adbench --output docs/results
	$(PY) -m pipelines.cli benchmark adbench --data-dir ../shared/data/adbench --output docs/results --subsample 300
	$(PY) -m pipelines.cli benchmark speed > docs/results/speed.md
	$(PY) -m pipelines.cli benchmark mnist --data ../shared/data/mnist/mnist_5k.npz --output docs/results
	$(PY) -m pipelines.cli benchmark calibration

# Long reliability runs, not in CI (docs/reliability.md): load, overload, SIGTERM under load, 20 killed
# batch jobs, and OpenAPI fuzzing with 1,000 examples per operation.
reliability: install
	$(PY) -m pytest -q -s -m reliability tests/reliability
	RELIABILITY_FUZZ_EXAMPLES=1000 $(PY) -m pytest -q tests/serving/test_fuzz.py

# Known vulnerabilities in the pinned set; waivers (one ID and reason a line) in audit-waivers.txt.
# --strict: a package that could not be checked fails the audit instead of passing silently.
audit: install
	$(PY) -m pip install --quiet -c constraints.txt -e '.[reliability]'
	$(VENV)/bin/pip-audit -r constraints.txt --no-deps --disable-pip --strict --progress-spinner off \
		$$(grep -v '^#' audit-waivers.txt | cut -d' ' -f1 | sed 's/^/--ignore-vuln /')

clean:
	rm -rf $(VENV) demo_output .pytest_cache .mypy_cache .ruff_cache
