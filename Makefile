# MedLab: `make course` runs every lab and writes build/report.md; `make test` runs every test.
PYTHON  ?= python3
PROFILE ?= default
# two test processes, one thread each, where there are two cores or more: small networks use two
# cores better as two runs than as one run with two threads
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -ge 2 ] && echo 2 || echo 1)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.medlab-installed
PIP     := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: help install course test test-fast sweep lab strip student grading site constraints clean

help:
	@echo "make course   execute every lab into build/ and write build/report.md (PROFILE=smoke|default|full)"
	@echo "make test     unit tests and every lab executed and replayed (WORKERS=N test processes; default 2 on 2 or more cores)"
	@echo "make lab      open JupyterLab on notebooks/"
	@echo "make student  write student copies (each worked solution replaced by a stub) into build/student/"
	@echo "make grading  write an nbgrader course into build/grading/ (GRADING_PROFILE=smoke|default|full)"
	@echo "make site     a static website of the executed labs (after make course) in build/site/"
	@echo "make test-fast  the same tests with the labs in the smoke profile (for quick iteration)"
	@echo "make sweep    every lab under seeds 0-4, other CPU kernels and one thread (build/sweep.md; about 2 hours on 2 cores)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name medlab --display-name "Python (MedLab)" >/dev/null
	@touch $(STAMP)

install: $(STAMP)

course: $(STAMP)
	$(BIN)/python -m medlab.course run --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

test-fast: $(STAMP)
	MEDLAB_PROFILE=smoke $(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

sweep: $(STAMP)
	$(BIN)/python -m medlab.course sweep

# jupyter/ holds the course's JupyterLab settings: no first-run notices, the course's kernel
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(BIN)/jupyter lab notebooks/

student: $(STAMP)
	$(BIN)/python -m medlab.course student

site: $(STAMP)
	$(BIN)/python -m medlab.course site

grading: $(STAMP)
	$(BIN)/python -m medlab.course grading $(if $(GRADING_PROFILE),--profile $(GRADING_PROFILE))

strip: $(STAMP)
	$(BIN)/python -m medlab.course strip notebooks/*.ipynb

constraints: $(STAMP)
	@{ head -n 2 constraints.txt; $(PIP) freeze --exclude-editable | grep -v '^medlab'; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt

clean:
	rm -rf build
