"""The cache-aside app as deployed: a hardened service answering the seed's contract."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from testinfra.utils.ansible_runner import AnsibleRunner

from shared.helpers import wait_for

testinfra_hosts = [
    f"podman://{name}"
    for name in AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("cache_app")
]
TTL = 3  # host_vars/molecule-redis1.yml
UNIT = "cache-app.service"


@pytest.fixture(scope="module")
def get(address):
    def _get(path: str) -> tuple[int, dict, dict]:
        try:
            with urllib.request.urlopen(f"http://{address}:5000{path}", timeout=10) as response:
                return response.status, dict(response.headers), json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.load(error)

    return _get


def test_unit_enabled_active_and_not_root(host, journal):
    service = host.service(UNIT)
    assert service.is_enabled, journal(UNIT)
    assert service.is_running, journal(UNIT)
    props = service.systemd_properties
    assert props["User"] == "cache-app"
    pid = props["MainPID"]
    uid = host.file(f"/proc/{pid}/status").content_string.split("Uid:")[1].split()[0]
    assert uid != "0"
    assert host.user("cache-app").shell == "/usr/sbin/nologin"


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("Restart", "on-failure"),
    ],
)
def test_unit_hardening(host, prop, value):
    assert host.service(UNIT).systemd_properties[prop] == value


def test_settings_and_secret_files_are_private(host):
    env = host.file("/etc/cache-app/cache-app.env")
    assert (env.user, env.group, env.mode) == ("root", "cache-app", 0o640)
    secret = host.file("/etc/cache-app/redis-password")
    assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)


def test_password_reaches_the_app_as_a_credential_only(host):
    """Not in the environment file, the unit's properties, or any process's command line."""
    password = host.file("/etc/cache-app/redis-password").content_string.strip()
    assert password not in host.file("/etc/cache-app/cache-app.env").content_string
    assert password not in host.run("systemctl show cache-app.service").stdout
    assert password not in host.run("ps -eo args").stdout
    assert "%d/redis-password" in host.run("systemctl cat cache-app.service").stdout
    pid = host.service(UNIT).systemd_properties["MainPID"]
    environ = host.file(f"/proc/{pid}/environ").content_string
    assert password not in environ
    credential = "/run/credentials/cache-app.service/redis-password"
    assert f"CACHE_APP_REDIS_PASSWORD_FILE={credential}" in environ


def test_app_unit_exposure_stays_at_or_below_1_0(host):
    """systemd-analyze security's score for the unit (0 best, 10 worst); printed for the report."""
    out = host.run("systemd-analyze security --no-pager cache-app.service").stdout
    score = float(re.search(r"Overall exposure level for cache-app.service: ([\d.]+)", out)[1])
    print(f"systemd-analyze security cache-app.service: {score}")
    assert score <= 1.0, out[-2000:]


def test_first_request_cold_second_from_cache_with_ttl(get, connect):
    key = f"k{uuid.uuid4().hex[:12]}"
    status, headers, body = get(f"/data/{key}")
    assert status == 200
    assert body == {"key": key, "value": key.upper(), "source": "database (slow)"}
    status, headers, body = get(f"/data/{key}")
    assert body["source"] == "cache"
    assert headers["X-Cache"] == "HIT"
    assert 0 < connect(6379).ttl(key) <= TTL
    # Written on the primary, replicated to the seed's replica on 6380.
    replica = connect(6380)
    assert wait_for(lambda: replica.get(key) == key.upper(), timeout=1.0)


def test_expiry_then_cold_again(get, connect):
    key = f"k{uuid.uuid4().hex[:12]}"
    get(f"/data/{key}")
    time.sleep(TTL + 0.5)
    assert connect(6379).ttl(key) == -2
    assert get(f"/data/{key}")[2]["source"] == "database (slow)"


def test_bad_input_is_a_json_4xx(get):
    assert get("/data/" + "x" * 200)[0] == 400
    assert get("/nothing-here")[0] == 404


def test_health(get):
    status, _, body = get("/healthz")
    assert (status, body) == (200, {"status": "ok", "local_cache": "live"})


def test_warm_hits_skip_redis_and_every_worker_hears_of_a_change(get, connect):
    """Each worker's local copy, as deployed: the app ACL user may track, the hits stay local."""
    key = f"k{uuid.uuid4().hex[:12]}"
    primary = connect(6379)

    def gets() -> int:
        return primary.info("commandstats")["cmdstat_get"]["calls"]

    assert get(f"/data/{key}")[2]["source"] == "database (slow)"
    before = gets()
    # New connections each time, spread over the workers: each asks Redis once, to fill its copy.
    for _ in range(30):
        assert get(f"/data/{key}")[2]["source"] == "cache"
    assert gets() - before <= 2  # cache_app_workers

    primary.set(key, "CHANGED", ex=60)
    assert wait_for(lambda: get(f"/data/{key}")[2]["value"] == "CHANGED", timeout=1.0)
    assert {get(f"/data/{key}")[2]["value"] for _ in range(10)} == {"CHANGED"}
    primary.delete(key)
    assert wait_for(lambda: get(f"/data/{key}")[2]["source"] == "database (slow)", timeout=3.0)


def test_metrics_are_refused_off_the_allowed_networks(get):
    # The controller reaches the app over the podman bridge; only loopback is allowed by default.
    status, headers, body = get("/metrics")
    assert status == 403
    assert headers["Content-Type"].startswith("application/json"), headers
    assert body["status"] == 403


def test_metrics_add_up_across_gunicorn_workers(host, get):
    def hits() -> float:
        # From the app host itself: /metrics answers loopback only (the role's default).
        body = host.check_output(
            "python3 -c 'import urllib.request as u; "
            'print(u.urlopen("http://127.0.0.1:5000/metrics").read().decode())\''
        )
        line = next(x for x in body.splitlines() if x.startswith("cache_app_cache_hits_total "))
        return float(line.split()[1])

    key = f"k{uuid.uuid4().hex[:12]}"
    get(f"/data/{key}")
    # Each worker adds its hits to the shared metrics twice a second (and when it answers the
    # scrape): earlier tests' hits are all in after a second.
    time.sleep(1.0)
    before = hits()
    # New connections each time: gunicorn spreads them over its two workers.
    for _ in range(20):
        assert get(f"/data/{key}")[2]["source"] == "cache"
    assert wait_for(lambda: hits() - before == 20, timeout=2.0)
    time.sleep(1.0)
    assert hits() - before == 20  # and not one more


def test_restart_behind_systemds_sockets_fails_no_request(host, address):
    """A restart (new code, settings, a rotated password) while clients keep asking: all 200s."""
    socket_unit = host.service("cache-app.socket")
    assert socket_unit.is_enabled
    assert socket_unit.is_running
    before = host.service(UNIT).systemd_properties["MainPID"]
    results: list[int | str] = []
    stop = threading.Event()

    # /healthz: fast (a PING to Redis), so many requests span the restart.
    url = f"http://{address}:5000/healthz"

    def ask() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=15) as response:
                    results.append(response.status)
            except (urllib.error.HTTPError, OSError) as error:
                results.append(repr(error))

    clients = [threading.Thread(target=ask) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(1)
    assert host.run("systemctl restart cache-app.service").rc == 0
    time.sleep(2)
    stop.set()
    for client in clients:
        client.join(30)
    assert host.service(UNIT).systemd_properties["MainPID"] != before, "the app did not restart"
    assert len(results) > 50, results
    assert set(results) == {200}, [r for r in results if r != 200]


def test_the_demo_verification_passes(playbook):
    """playbooks/verify.yml, which `make demo` ends with: the seed's part 4, each claim asserted."""
    run = playbook("playbooks/verify.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = run.stdout.replace('\\"', '"')  # the report's quotes, whatever the callback
    assert '-> "database (slow)" in' in report
    assert '-> "cache" in' in report


@pytest.mark.parametrize(
    ("prop", "shown"),
    [
        ("ProcSubset", [{"pid"}]),
        ("PrivateMounts", [{"yes"}]),
        # systemd 252 shows the errno's number; later versions may show its name.
        ("SystemCallErrorNumber", [{"1"}, {"EPERM"}]),
        ("IPAddressDeny", [{"0.0.0.0/0", "::/0"}]),
    ],
)
def test_unit_hardening_beyond_the_basics(host, prop, shown):
    value = host.service(UNIT).systemd_properties.get(prop, "")
    assert set(value.split()) in shown, value


def test_app_may_connect_to_loopback_and_the_redis_host_only(host):
    """IPAddressAllow: loopback and the inventory's Redis host (this one) as this host resolves
    its name; the app answering (tests above) shows it still reaches Redis."""
    allowed = set(host.service(UNIT).systemd_properties.get("IPAddressAllow", "").split())
    assert {"127.0.0.0/8", "::1/128"} <= allowed, allowed
    lookup = host.check_output(f"getent ahosts {host.backend.name}")
    resolved = {line.split()[0] for line in lookup.splitlines()}
    # Loopback addresses are in 127.0.0.0/8 and ::1/128 already.
    own = {f"{a}/128" if ":" in a else f"{a}/32" for a in resolved - {"::1"} if a[:4] != "127."}
    assert own, lookup
    assert own <= allowed, (own, allowed)
