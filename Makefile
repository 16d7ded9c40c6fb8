# styler: the two commands every user and CI need.
#   make test   install into .venv, then run the whole test suite
#   make demo   install into .venv, then stylize sample photos with the bundled models
#   make lint   ruff (style, imports, likely bugs) and mypy (types) over the code
# The install is the full one (`.[train,test,lint]`: torch, the tests and the linters); `pip install styler` alone is
# the apply-only install without torch (tests/packaging checks it in a fresh venv).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-output

.PHONY: install browser test lint demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,test,lint,web,video,openvino]'
	touch $(STAMP)

# The real-browser test drives Debian's Chromium: install it when missing (root + apt-get; else that test skips).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: tests/web/test_browser.py will be skipped"

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check styler tests scripts hubconf.py
	$(VENV)/bin/mypy

demo: install
	$(PY) -m pip install --quiet -c constraints.txt -e '.[demo]'
	$(PY) scripts/demo.py --out $(DEMO_OUT) $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
