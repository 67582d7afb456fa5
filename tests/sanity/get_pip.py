"""A stand-in for ansible-test's get-pip bootstrap script, whose download site
(ci-files.testing.ansible.com) is not reachable from every machine: pip from ensurepip, this
machine's pip settings (CA, local indexes) copied into the virtualenv, then the requested pip
version and packages."""

import ensurepip
import os
import shutil
import subprocess
import sys

ensurepip.bootstrap()
CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", os.path.expanduser("~/.config/pip/pip.conf"))
for conf in CONFIGS:
    if os.path.exists(conf):
        shutil.copy(conf, os.path.join(sys.prefix, "pip.conf"))
        break
os.environ.setdefault("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
