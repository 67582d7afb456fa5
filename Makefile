# Entry points. `make demo` runs the main job end to end, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Mitogen's strategy for every play make runs (docs/speed.md): each host keeps one Python that runs
# the modules, instead of a new interpreter per task. ANSIBLE_STRATEGY=linear runs Ansible's own.
export ANSIBLE_STRATEGY_PLUGINS := $(VENV)/mitogen-strategy
export ANSIBLE_STRATEGY ?= mitogen_linear

DEBIAN_PACKAGES := python3-venv python3-redis podman runc debootstrap aardvark-dns redis-server redis-tools jq curl wrk
LAB := -i inventory/lab

# The lab's platform: Debian release and server (docs/platforms.md). The last one given is kept
# in .lab/platform, so later commands (make verify, make bench) stay on the lab that runs.
PLATFORMS := debian13-redis debian13-valkey debian12-redis debian12-valkey
PLATFORM ?= $(or $(shell cat .lab/platform 2>/dev/null),debian13-redis)
LAB_RELEASE := $(patsubst debian%,%,$(word 1,$(subst -, ,$(PLATFORM))))
export LAB_SERVER := $(word 2,$(subst -, ,$(PLATFORM)))
export LAB_IMAGE := localhost/redis-lab-debian$(LAB_RELEASE):latest

FORCE:

.PHONY: FORCE help system-packages bootstrap platform image images lab demo verify lab-down lint unit collection \
	molecule test bench bench-failover

help:
	@echo "make demo      bootstrap, build the image, start the lab, run site.yml, verify, report"
	@echo "               PLATFORM=debian13-redis (default), debian13-valkey, debian12-redis, debian12-valkey"
	@echo "make test      lint, unit tests, the collection built and installed, every molecule scenario"
	@echo "make lab-down  remove the lab's containers (secrets stay in .lab/)"
	@echo "make bench     warm/cold benchmark against the lab (README, Benchmark)"
	@echo "make bench-failover  cluster converge times and failover window (docs/sentinel.md)"

bootstrap: $(VENV)/.installed $(VENV)/mitogen-strategy $(VENV)/collections/.linked

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Debian's Python (python3-venv above), not another python3 earlier on the PATH: Debian builds it
# with profile-guided optimisation, and Ansible's controller runs about a tenth faster on it
# (docs/speed.md). A venv made from another Python is made again (.venv/.python, checked on every
# call, changes only then), and its packages installed again.
PYTHON := /usr/bin/python3
$(VENV)/.python: FORCE | system-packages
	@if grep -qx 'executable = $(realpath $(PYTHON))' $(VENV)/pyvenv.cfg 2>/dev/null; then \
	  test -e $@ || touch $@; \
	else \
	  echo "Making $(VENV) from $(PYTHON)"; rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && touch $@; \
	fi

$(VENV)/.installed: requirements.txt $(VENV)/.python
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

# A fixed path to the strategy plugins of the pinned mitogen package (ANSIBLE_STRATEGY_PLUGINS).
$(VENV)/mitogen-strategy: | $(VENV)/.installed
	folder=$$($(VENV)/bin/python -c \
	  'import ansible_mitogen.plugins.strategy as s; print(s.__path__[0])') && \
	  test -d "$$folder" && ln -sfnT "$$folder" $@

# The collections the playbooks and molecule's driver use (galaxy.yml's dependencies, and
# containers.podman), linked from the pinned ansible package into a path of their own
# (ansible.cfg's collections_path), so that Ansible need not scan that package's 185 others
# (collections_scan_sys_path = false): Mitogen lists every installed collection for each call of a
# collection's module (docs/speed.md).
DEPENDENCY_COLLECTIONS := ansible/posix community/crypto community/general containers/podman
$(VENV)/collections/.linked: $(VENV)/.installed
	packages=$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	for c in $(DEPENDENCY_COLLECTIONS); do \
	  test -f "$$packages/ansible_collections/$$c/MANIFEST.json" && \
	  install -d $(VENV)/collections/ansible_collections/$${c%/*} && \
	  ln -sfnT "$$packages/ansible_collections/$$c" $(VENV)/collections/ansible_collections/$$c || exit 1; \
	done
	touch $@

platform:
	@case " $(PLATFORMS) " in *" $(PLATFORM) "*) ;; \
	  *) echo "PLATFORM=$(PLATFORM) is not one of: $(PLATFORMS)" >&2; exit 2 ;; esac

# The lab's image; molecule's scenarios use both releases'.
image: bootstrap platform
	lab/build-image.sh $(LAB_RELEASE)

images: bootstrap
	lab/build-image.sh 12
	lab/build-image.sh 13

lab: image
	install -d -m 0700 .lab && echo $(PLATFORM) > .lab/platform
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

# The unit tests start Ansible once per check, on the controller only: Mitogen's start-up
# would cost each of them about half a second and save nothing.
unit: export ANSIBLE_STRATEGY := linear
unit: bootstrap collection
	pytest -q tests/unit
	cd app && pytest -q
	tests/sanity/run.sh $(COLLECTION_TARBALL)

# The collection as users get it: built into a tarball, installed into an empty collections path
# (its dependencies are the pinned `ansible` package's, linked into .venv/collections). Molecule's scenarios converge from
# this install, by the roles' and plugins' fully qualified names (.config/molecule/config.yml).
COLLECTION_TARBALL = build/redis_cache-stack-$(shell sed -n 's/^version: *//p' galaxy.yml).tar.gz

collection: bootstrap
	rm -rf build/collections
	ansible-galaxy collection build --force --output-path build .
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build/collections ansible-galaxy collection install --force \
	  --no-deps -p build/collections $(COLLECTION_TARBALL)

molecule: images collection
	molecule test --all

test: lint unit molecule

bench: lab
	ansible-playbook $(LAB) site.yml
	python benchmarks/compare.py

# On molecule's cluster scenario, which it creates and leaves running (molecule destroy -s cluster).
bench-failover: images
	PYTHONPATH=molecule python benchmarks/failover.py
