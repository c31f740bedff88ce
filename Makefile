# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv and install everything.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Fonts and dictionary for the synthetic word generator (libfribidi0: OpenType features via Pillow's Raqm),
# Tesseract for the benchmark comparison.
DEBS   := wamerican fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-noto-core fonts-urw-base35 \
          fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine fonts-ebgaramond \
          fonts-roboto-unhinted fonts-open-sans fonts-lato fonts-texgyre fonts-junicode fonts-cardo fonts-vollkorn \
          fonts-fanwood fonts-goudybookletter fonts-oldstandard fonts-sil-charis libfribidi0 tesseract-ocr
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint system-deps install clean bench

$(STAMP): setup.py pyproject.toml
	$(MAKE) system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[tf,dask,dev]'
	touch $(STAMP)

install: $(STAMP)

# Installs the Debian packages only when one is missing (no network needed on a prepared machine).
system-deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/ocr demo --workdir demo_out

test: $(STAMP)
	$(VENV)/bin/ruff check ocr_core pipelines tests bench setup.py
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) bench/build_dataset.py
	$(PY) bench/train_throughput.py
	$(PY) bench/predict_throughput.py

clean:
	rm -rf $(VENV) demo_out build *.egg-info
