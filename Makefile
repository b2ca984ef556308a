# Two commands do all the set-up on a fresh machine:
#   make book   build the book into _build/html (from the notebooks' stored outputs)
#   make test   unit tests + every notebook under book/ executed by nbval (quick profile)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test venv clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: $(STAMP)
	HINTLEARN_PROFILE=quick $(BIN)/python -m pytest

clean:
	rm -rf _build _build_learner
