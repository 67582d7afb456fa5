"""playbooks/verify.yml's probe (playbooks/files/cache_probe.py), run as verify.yml runs it on an
app host: against the app over HTTP, with the app's environment file and password files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

PROBE = Path(__file__).resolve().parents[2] / "playbooks" / "files" / "cache_probe.py"


def test_the_probe_reports_the_seeds_claims(app, redis_server, password_file, tmp_path):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "cache-app.env").write_text(
            f'CACHE_APP_REDIS_URL="redis://127.0.0.1:{redis_server.port}/0"\n'
        )
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        (credentials / "redis-password").write_text(password_file.read_text())
        run = subprocess.run(
            [
                sys.executable,
                str(PROBE),
                f"--url=http://127.0.0.1:{server.server_port}",
                "--key=probed",
                f"--env-file={tmp_path / 'cache-app.env'}",
                f"--credentials={credentials}",
            ],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stderr
    probe = json.loads(run.stdout)
    assert probe["cold"]["status"] == 200
    assert probe["cold"]["body"] == {
        "key": "probed",
        "value": "PROBED",
        "source": "database (slow)",
    }
    assert probe["warm"]["body"]["source"] == "cache"
    assert probe["warm_sources"] == ["cache"]
    assert 0 < probe["ttl"] <= probe["configured_ttl"] == 60
