"""TLS on every link: what a client without TLS, or without the CA, gets; replication over TLS."""

from __future__ import annotations

import json
import re
import socket
import ssl
import urllib.request
import uuid

import pytest
import redis
from cryptography import x509

from conftest import current_primary, group, secret
from shared.helpers import (
    ACL_USERS,
    SENTINEL_USERS,
    TLS_CA,
    platforms,
    recap,
    redis_client,
    run_playbook,
    wait_for,
)

REDIS = group("redis")
APP = group("cache_app")[0]
# (port, whose password, user): each Redis, each Sentinel.
SERVICES = [(6379, ACL_USERS["admin"], "admin"), (26379, SENTINEL_USERS["admin"], "admin")]


def test_scenario_runs_with_tls():
    assert TLS_CA, "MOLECULE_REDIS_TLS_CA is not set: these checks would test plaintext"


@pytest.mark.parametrize("host", REDIS)
def test_only_tls_ports_listen(hosts, address, host):
    """port 0: no plaintext listener; Redis and Sentinel on their usual ports, TLS only."""
    listening = {s.split(":")[-1] for s in hosts[host].socket.get_listening_sockets()}
    assert {"6379", "26379"} <= listening
    admin = redis_client(address[host], 6379, secret(ACL_USERS["admin"]), "admin")
    assert admin.config_get("port") == {"port": "0"}
    assert admin.config_get("tls-port") == {"tls-port": "6379"}


@pytest.mark.parametrize(("port", "password", "user"), SERVICES, ids=["redis", "sentinel"])
def test_plaintext_client_to_a_tls_port_fails(address, port, password, user):
    plain = redis_client(address[REDIS[0]], port, secret(password), user, tls=False)
    with pytest.raises(redis.ConnectionError):
        plain.ping()


@pytest.mark.parametrize(("port", "password", "user"), SERVICES, ids=["redis", "sentinel"])
def test_client_without_the_ca_fails(address, port, password, user):
    """The system's CAs did not sign the hosts' certificates: verification fails."""
    no_ca = redis_client(address[REDIS[0]], port, secret(password), user, ca=None)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        no_ca.ping()


@pytest.mark.parametrize(("port", "password", "user"), SERVICES, ids=["redis", "sentinel"])
def test_client_with_the_ca_checks_the_host_name(address, port, password, user):
    """The certificate names the host's addresses; any other name is refused."""
    host = REDIS[0]
    assert redis_client(address[host], port, secret(password), user).ping()
    context = ssl.create_default_context(cafile=TLS_CA)
    with (
        socket.create_connection((address[host], port), timeout=3) as sock,
        pytest.raises(ssl.SSLCertVerificationError, match="mismatch"),
    ):
        context.wrap_socket(sock, server_hostname="redis.example.com")


def test_replicas_links_are_up_over_tls(connect, sentinel, address):
    """The primary has no plaintext port, so an up link is a TLS link; a key crosses it."""
    primary = current_primary(sentinel, address)
    replicas = [h for h in REDIS if h != primary]
    assert connect(primary).info("replication")["connected_slaves"] == len(replicas)
    key = f"tls:{uuid.uuid4()}"
    connect(primary).set(key, "over tls", ex=60)
    for replica in replicas:
        client = connect(replica)
        assert client.info("replication")["master_link_status"] == "up", replica
        assert wait_for(lambda c=client: c.get(key) == "over tls", timeout=1.0), replica


def test_app_talks_tls_to_redis_and_sentinel(address, connect, sentinel):
    key = f"k{uuid.uuid4().hex[:12]}"
    url = f"http://{address[APP]}:5000/data/{key}"

    def get() -> tuple[str, str]:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)["source"], response.headers["X-Cache"]

    assert get() == ("database (slow)", "MISS")
    assert get() == ("cache", "HIT")
    primary = current_primary(sentinel, address)
    assert connect(primary).get("cache:" + key) == key.upper()

    def health() -> tuple[int, str]:
        with urllib.request.urlopen(f"http://{address[APP]}:5000/healthz", timeout=10) as response:
            return response.status, json.load(response)["local_cache"]

    # "live": the local copy's listener hears of changes, over TLS too.
    assert wait_for(lambda: health() == (200, "live"), timeout=3.0), health()


@pytest.mark.parametrize("host", REDIS)
def test_keys_are_private_and_the_ca_key_stays_on_the_controller(hosts, host):
    platform = platforms()[host]
    key = hosts[host].file(platform["tls_key"])
    assert (key.user, key.group, key.mode) == ("root", platform["group"], 0o640)
    assert hosts[host].run("find / -xdev -name ca.key").stdout == ""


def test_check_mode_on_the_converged_cluster_changes_nothing():
    """Certificates are kept while valid: --check --diff shows no change and no failure. It runs
    after the scenario's failover, rolling restarts, rotation and Sentinel changes: each left
    nothing for site.yml to do (files, users, runtime settings, Sentinel's lines)."""
    run = run_playbook("site.yml", "--check", "--diff")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.findall(r"changed=(\d+)", recap(run.stdout)) == ["0"] * 4, recap(run.stdout)


def _served_serial(address: str, port: int) -> int:
    """Serial number of the certificate a server presents."""
    context = ssl.create_default_context(cafile=TLS_CA)
    with (
        socket.create_connection((address, port), timeout=3) as sock,
        context.wrap_socket(sock, server_hostname=address) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def test_renewed_certificates_are_served_and_the_cluster_stays_whole(address, connect):
    """Renewal (here forced: renew when under 400 days left) restarts Redis and Sentinel one host
    at a time; each then presents its new certificate."""
    before = {(h, p): _served_serial(address[h], p) for h in REDIS for p in (6379, 26379)}
    # The Redis and Sentinel hosts: the app host holds only the CA, which stays.
    run = run_playbook("site.yml", "--limit", "redis", "-e", "redis_tls_cert_renew_before=+400d")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    after = {(h, p): _served_serial(address[h], p) for h in REDIS for p in (6379, 26379)}
    assert all(after[k] != before[k] for k in before), (before, after)

    def whole() -> bool:
        infos = [connect(h).info("replication") for h in REDIS]
        replicas = [i for i in infos if i["role"] == "slave"]
        return len(replicas) == 2 and all(i["master_link_status"] == "up" for i in replicas)

    assert wait_for(whole, timeout=60), [connect(h).info("replication") for h in REDIS]
