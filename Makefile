# Two commands do everything on a fresh machine (they create or refresh .venv themselves):
#   make reproduce   - the whole reproduction on the embedded synthetic data (demo profile)
#   make test        - the test suite, notebooks included (smoke profile)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= demo

.PHONY: reproduce test notebooks seeds bench gpu-check student site clean

$(VENV)/.installed: requirements.txt requirements-grading.txt requirements-site.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-grading.txt -r requirements-site.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

reproduce: $(VENV)/.installed
	$(PY) -m depthkit reproduce --profile $(PROFILE)

test: $(VENV)/.installed
	DEPTHKIT_PROFILE=smoke MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

# Sync each jupytext pair (notebooks/NN_name.py <-> .ipynb), re-run every notebook under the demo
# profile and save its outputs in place (for GitHub readers), then sync again so the .py is not older.
notebooks: $(VENV)/.installed
	$(PY) -m jupytext --sync notebooks/[0-9][0-9]_*.py
	DEPTHKIT_PROFILE=demo $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=3600 notebooks/[0-9][0-9]_*.ipynb
	$(PY) -m depthkit.course.widget_state notebooks/[0-9][0-9]_*.ipynb  # widgets saved, not the pictures drawn into them
	$(PY) -m jupytext --sync notebooks/[0-9][0-9]_*.py

# The seed-to-seed spread of the demo reproduction (figures/seed_spread.json, committed): LR-ASPP over 5 training
# seeds, U-Net++ over 3; seed 0 reuses make reproduce's runs. Measured cost: docs/performance.md.
seeds: $(VENV)/.installed
	$(PY) -m depthkit.tools.seeds --profile $(PROFILE)

bench: $(VENV)/.installed
	$(PY) -m depthkit bench

# For the day a GPU is lent (<= 10 min on one GPU): CPU-vs-GPU parity of a step, host syncs per step,
# bench at the report's size, rehearsal at 74,441 DIW images; one table, PASS/FAIL per target.
# Without a GPU it runs too and marks the GPU rows "no GPU" (add GPUCHECK=--quick for seconds).
gpu-check: $(VENV)/.installed
	$(PY) -m depthkit.tools.gpucheck $(GPUCHECK)

# Student copies of the notebooks in student/ (git-ignored): nbgrader's own release of each notebook (its
# generate_assignment, run in a temporary course folder): solutions become stubs, hidden tests and the
# written answers' key are removed, outputs are cleared. docs/teaching.md: the whole nbgrader flow.
student: $(VENV)/.installed
	$(PY) -m depthkit student --out student

# The course as a website (Jupyter Book 1) in site/_build/html/ (git-ignored): nbgrader's release of every notebook
# with the committed demo outputs (nothing executed), docs/teaching.md, docs/performance.md and a landing page
# (book/). The first run fetches MathJax, RequireJS and the widget renderer from the npm registry into site/_vendor/;
# the pages load them from the site. Built with warnings as errors, then checked (links, other hosts, the key).
site: $(VENV)/.installed
	$(PY) -m depthkit.course.site

clean:
	rm -rf $(VENV) runs data/cache data/synthetic
