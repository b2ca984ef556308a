# Two commands do all the set-up on a fresh machine:
#   make book   build the book into _build/html (from the notebooks' stored outputs)
#   make test   unit tests + every notebook under book/ and course/ executed by nbval (quick profile),
#               and every page of a fresh build checked in headless Chromium
# On a Linux laptop, `make book TORCH=cpu` installs PyTorch's CPU-only wheels instead.
# For authors: refresh a chapter's stored outputs (laptop profile, fresh kernel, recorded):
#   make chapter NB=book/03_fitnets.ipynb      (NB may list several; chapters in order)
#   make stale-chapters                        which chapters' stored runs predate the package
# For a course (see book/instructor.md):
#   make learner-book   the book with every solution hidden, into _build_learner/_build/html
#   make assignments    `otter assign` on every master of course/assignments/, into _build_course/
#   make grade SUBMISSIONS=<folder>   every submission graded into <folder>/gradebook.csv
PYTHON ?= python3
# TORCH=cpu: PyTorch's CPU-only wheels instead of PyPI's CUDA build (on Linux about 5.5 GB
# of the venv, never used on a CPU). The default stays PyPI's build.
TORCH  ?= default
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MASTERS := $(wildcard course/assignments/*/*.ipynb)

.PHONY: book test venv learner-book assignments grade clean chapter stale-chapters linkcheck

ifeq ($(TORCH),cpu)
TORCH_INDEX := --extra-index-url https://download.pytorch.org/whl/cpu
else ifeq ($(TORCH),default)
TORCH_INDEX :=
else
$(error TORCH=$(TORCH) is not a choice: use TORCH=cpu (PyTorch's CPU-only wheels) or leave it out)
endif

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install $(TORCH_INDEX) -c constraints.txt -e ".[book,test,course,edge,browser]"
	touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# Every external link of the book (needs the network; the publish workflow runs it).
linkcheck: $(STAMP)
	$(BIN)/jupyter-book build . --builder linkcheck

# tools/chromium.py first: the browser checks' Chromium, installed when none is found
# (Playwright's own download, else Debian's through apt-get as root, else a clear error).
test: $(STAMP)
	$(BIN)/python tools/chromium.py
	HINTLEARN_PROFILE=quick $(BIN)/python -m pytest

chapter: $(STAMP)
	@test -n "$(NB)" || { echo "say which: make chapter NB=book/03_fitnets.ipynb"; exit 2; }
	$(BIN)/python tools/chapters.py execute $(NB)

stale-chapters: $(STAMP)
	$(BIN)/python tools/chapters.py stale

learner-book: $(STAMP)
	rm -rf _build_learner
	$(BIN)/jupyter-book build . -W -n --keep-going --config _config_learner.yml --path-output _build_learner
	@echo "The learner book (no solutions) is at file://$(CURDIR)/_build_learner/_build/html/index.html"

assignments: $(STAMP)
	rm -rf _build_course
	set -e; for master in $(MASTERS); do \
		$(BIN)/otter assign "$$master" "_build_course/$$(basename "$$master" .ipynb)"; \
	done
	@echo "Learner copies: _build_course/<name>/student/<name>.ipynb"
	@echo "Solutions and autograder zips: _build_course/<name>/autograder/"

# Every submission under SUBMISSIONS through its assignment's autograder (make assignments
# first): gradebook.csv and summary.csv in that folder.
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "say where: make grade SUBMISSIONS=<folder of submissions>"; exit 2; }
	$(BIN)/python tools/grade.py $(SUBMISSIONS)

clean:
	rm -rf _build _build_learner _build_course
