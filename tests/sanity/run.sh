#!/usr/bin/env bash
# ansible-test sanity (validate-modules, compile, import) on the collection as it is built: the
# tarball `make collection` built (the first argument), unpacked under
# ansible_collections/redis_cache/stack, as ansible-test requires. Each
# test runs in a virtualenv of its own (--venv); their pip comes from tests/sanity/get_pip.py,
# since ansible-test's bootstrap download site is not reachable from every machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(realpath "${1:?usage: tests/sanity/run.sh <collection tarball>}")
# The pip version ansible-test bootstraps in each virtualenv (its bootstrap file is named after it).
pip_version=$(python3 - <<'PY'
import importlib.util, pathlib, re
spec = importlib.util.find_spec("ansible_test")
text = (pathlib.Path(spec.origin).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
cache=~/.ansible/test/cache
mkdir -p "$cache"
cp "$root/tests/sanity/get_pip.py" "$cache/get_pip_${pip_version//./_}.py"
target="$work/ansible_collections/redis_cache/stack"
mkdir -p "$target"
tar -C "$target" -xzf "$tarball"
cd "$target"
ansible-test sanity --venv --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --test validate-modules --test compile --test import plugins/
