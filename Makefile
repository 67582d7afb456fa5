# Entry points. `make demo` runs the main job end to end, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

DEBIAN_PACKAGES := python3-venv python3-redis podman runc debootstrap aardvark-dns redis-server redis-tools jq curl wrk
LAB := -i inventory/lab

.PHONY: help system-packages bootstrap image lab demo verify lab-down lint unit molecule test bench bench-failover

help:
	@echo "make demo      bootstrap, build the image, start the lab, run site.yml, verify, report"
	@echo "make test      lint, unit tests and every molecule scenario"
	@echo "make lab-down  remove the lab's containers (secrets stay in .lab/)"
	@echo "make bench     warm/cold benchmark against the lab (README, Benchmark)"
	@echo "make bench-failover  cluster converge times and failover window (README, Failover)"

bootstrap: $(VENV)/.installed

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: requirements.txt | system-packages
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

image: bootstrap
	lab/build-image.sh

lab: image
	ansible-playbook $(LAB) playbooks/lab_up.yml

demo: lab
	ansible-playbook $(LAB) site.yml
	ansible-playbook $(LAB) playbooks/verify.yml

verify: bootstrap
	ansible-playbook $(LAB) playbooks/verify.yml

lab-down: bootstrap
	ansible-playbook $(LAB) playbooks/lab_down.yml

lint: bootstrap
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .

unit: bootstrap
	pytest -q tests/unit
	cd app && pytest -q

molecule: image
	molecule test --all

test: lint unit molecule

bench: lab
	ansible-playbook $(LAB) site.yml
	python benchmarks/compare.py

# On molecule's cluster scenario, which it creates and leaves running (molecule destroy -s cluster).
bench-failover: image
	python benchmarks/failover.py
