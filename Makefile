# Two commands do everything on a fresh machine (they create or refresh .venv themselves):
#   make reproduce   - the whole reproduction on the embedded synthetic data (demo profile)
#   make test        - the test suite, notebooks included (smoke profile)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= demo

.PHONY: reproduce test notebooks bench gpu-check student clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
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
	$(PY) -m jupytext --sync notebooks/[0-9][0-9]_*.py

bench: $(VENV)/.installed
	$(PY) -m depthkit bench

# On a machine with an NVIDIA GPU: the CUDA path end to end (report profile at full DIW size, capped
# steps) and fit's step at the report's size (200x200, batch 16), with data wait and host syncs.
gpu-check: $(VENV)/.installed
	$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: no CUDA device')"
	$(PY) -m depthkit rehearse --device cuda --steps 20
	$(PY) -m depthkit bench --size 200 --batch 16 --steps 20 --workers 2

# Student copies of the notebooks in student/ (git-ignored): every solution between nbgrader's
# ### BEGIN SOLUTION / ### END SOLUTION markers becomes a stub, check cells stay, outputs are cleared.
student: $(VENV)/.installed
	$(PY) -m depthkit student --out student

clean:
	rm -rf $(VENV) runs data/cache data/synthetic
