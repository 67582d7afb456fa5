"""The instance plan and the checks that stop a play before any host changes."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from ansible_collections.redis_cache.stack.plugins.filter.acl import redis_acl_errors
from ansible_collections.redis_cache.stack.plugins.filter.files import (
    file_mtimes,
    file_mtimes_query,
)
from ansible_collections.redis_cache.stack.plugins.filter.instance_errors import (
    redis_instance_errors,
)
from ansible_collections.redis_cache.stack.plugins.filter.instance_plan import redis_instance_plan
from ansible_collections.redis_cache.stack.plugins.filter.packages import dpkg_missing
from ansible_collections.redis_cache.stack.plugins.filter.passwords import redis_password_errors
from ansible_collections.redis_cache.stack.plugins.filter.tls import (
    redis_tls_changes,
    redis_tls_due,
    redis_tls_info,
    redis_tls_names,
)

SEED = [
    {"name": "main", "port": 6379, "role": "primary"},
    {"name": "slave", "port": 6380, "role": "replica", "primary_instance": "main"},
]
BIND = ["127.0.0.1", "-::1"]
PLATFORMS = Path(__file__).resolve().parents[2] / "roles" / "redis" / "vars" / "platforms"


def names(server):
    """The server's names, as tasks/platform.yml loads them into redis_platform."""
    return yaml.safe_load((PLATFORMS / f"{server}.yml").read_text())["_redis_server_names"]


REDIS = names("redis")


def hostvars(**hosts):
    return {
        name: {"redis_instances": inst, "ansible_host": f"{name}.example"}
        for name, inst in hosts.items()
    }


def test_seed_layout_maps_to_debian_units_and_paths():
    plan = redis_instance_plan(SEED, "h1", hostvars(h1=SEED), "h1", BIND, REDIS)
    main, slave = plan
    assert (main["unit"], main["conf"], main["dir"]) == (
        "redis-server",
        "/etc/redis/redis.conf",
        "/var/lib/redis",
    )
    assert (slave["unit"], slave["conf"]) == ("redis-server@slave", "/etc/redis/redis-slave.conf")
    # Under ReadWritePaths=/var/lib/redis, unlike the seed's /var/lib/redis-slave.
    assert slave["dir"] == "/var/lib/redis/slave"
    assert slave["pidfile"] == "/run/redis-slave/redis-server.pid"
    # What a restart decision compares with the process's start: its file and its unit's drop-in.
    assert main["start_files"] == [
        "/etc/redis/redis.conf",
        "/etc/systemd/system/redis-server.service.d/ansible-owned-config.conf",
    ]
    assert slave["start_files"][1] == (
        "/etc/systemd/system/redis-server@.service.d/ansible-owned-config.conf"
    )
    assert main["replicaof"] is None
    assert slave["replicaof"] == {"host": "127.0.0.1", "port": 6379}


def test_seed_layout_on_valkey_maps_to_the_valkey_packages_units_and_paths():
    # As Debian's valkey-server.service and valkey-server@.service read and write them.
    main, slave = redis_instance_plan(SEED, "h1", hostvars(h1=SEED), "h1", BIND, names("valkey"))
    assert (main["unit"], main["conf"], main["dir"], main["pidfile"], main["logfile"]) == (
        "valkey-server",
        "/etc/valkey/valkey.conf",
        "/var/lib/valkey",
        "/run/valkey/valkey-server.pid",
        "/var/log/valkey/valkey-server.log",
    )
    assert (slave["unit"], slave["conf"], slave["dir"], slave["pidfile"]) == (
        "valkey-server@slave",
        "/etc/valkey/valkey-slave.conf",
        "/var/lib/valkey/slave",
        "/run/valkey-slave/valkey-server.pid",
    )
    assert slave["dropin"] == (
        "/etc/systemd/system/valkey-server@.service.d/ansible-owned-config.conf"
    )


def test_replica_on_another_host_uses_the_primary_inventory_address():
    replica = [{"name": "main", "port": 6379, "role": "replica"}]
    hv = hostvars(p=[{"name": "main", "port": 7000, "role": "primary"}], r=replica)
    (plan,) = redis_instance_plan(replica, "r", hv, "p", BIND, REDIS)
    assert plan["replicaof"] == {"host": "p.example", "port": 7000}
    hv["p"]["redis_address"] = "10.0.0.5"
    (plan,) = redis_instance_plan(replica, "r", hv, "p", BIND, REDIS)
    assert plan["replicaof"]["host"] == "10.0.0.5"


def test_client_host_prefers_loopback_and_strips_optional_marker():
    (plan,) = redis_instance_plan(SEED[:1], "h1", hostvars(h1=SEED), "h1", ["-10.1.1.1"], REDIS)
    assert plan["client_host"] == "10.1.1.1"
    (plan,) = redis_instance_plan(SEED[:1], "h1", hostvars(h1=SEED), "h1", BIND, REDIS)
    assert plan["client_host"] == "127.0.0.1"


def test_seed_layout_is_valid():
    assert redis_instance_errors(SEED, "h1", hostvars(h1=SEED), "h1") == []


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        ([], "at least one instance"),
        (
            [{"name": "main", "port": 6379}, {"name": "b", "port": 6379}],
            "redis_instances[b].port: 6379 is already used by instance 'main'",
        ),
        ([{"name": "main", "port": 6379}, {"name": "main", "port": 6380}], "defined twice"),
        ([{"name": "main", "port": 70000}], "redis_instances[main].port: 70000 is outside"),
        ([{"name": "main", "port": "abc"}], "is not a port number"),
        ([{"name": "main", "port": 6379, "role": "master"}], "role: 'master' is not one of"),
        ([{"name": "Bad Name", "port": 6379}], "use lower-case letters"),
        (
            [{"name": "main", "port": 6379, "role": "replica"}],
            "redis_instances[main]: a replica cannot replicate from itself",
        ),
        (
            [
                {"name": "main", "port": 6379},
                {"name": "r", "port": 6380, "role": "replica", "primary_instance": "x"},
            ],
            "host 'h1' has no instance named 'x'",
        ),
        (
            [{"name": "r", "port": 6380, "role": "replica", "primary_host": "nowhere"}],
            "primary_host: 'nowhere' is not a host of the inventory",
        ),
    ],
)
def test_bad_instances_are_named_in_one_clear_line(instances, expected):
    errors = redis_instance_errors(instances, "h1", hostvars(h1=instances), "h1")
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (None, "required"),
        ("", "required"),
        ("short", "at least 16"),
        ("Test1234", "at least 16"),
        ("Xk9vQ2mLp7rT4wZa", None),
        ("has space inside it", "whitespace"),
        ('quote"quote"quote"', "quotes"),
    ],
)
def test_password_rules(password, expected):
    errors = redis_password_errors(password, "redis_password", ["Test1234", "foobaredfoobared"])
    if expected is None:
        assert errors == []
    else:
        assert len(errors) == 1
        assert expected in errors[0]
        assert "redis_password" in errors[0]
        if password:
            assert password not in errors[0]


def test_weak_password_refused_even_when_long():
    for password in ("Test1234Test1234", "test1234TEST1234test1234"):
        errors = redis_password_errors(password, "redis_password", ["Test1234"])
        assert errors == ["redis_password: is a known weak password"]
    assert redis_password_errors("Test1234Test1234x", "redis_password", ["Test1234"]) == []


def test_same_host_replica_reaches_its_source_on_the_source_addresses():
    instances = [
        {"name": "main", "port": 6379, "bind": ["10.1.1.1"]},
        {"name": "r", "port": 6380, "role": "replica"},
    ]
    plan = redis_instance_plan(instances, "h1", hostvars(h1=instances), "h1", BIND, REDIS)
    assert plan[1]["replicaof"] == {"host": "10.1.1.1", "port": 6379}


ACL = {
    "admin": "~* &* +@all",
    "replication": "+psync +replconf +ping",
    "sentinel": "&__sentinel__:hello +multi +slaveof +config|rewrite +client|kill",
    "app": "~cache:* %R~ro:* +get +set +evalsha -@dangerous",
}
ACL_PASSWORDS = {name: f"{name}-0123456789abcdef" for name in ACL}


def test_acl_rules_of_the_defaults_are_accepted():
    assert redis_acl_errors(ACL, ACL_PASSWORDS, "admin", "replication", []) == []


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"app": "+get >sneaky"}, "redis_acl_rules.app: '>...': password rules are not allowed"),
        ({"app": "+get nopass"}, "redis_acl_rules.app: 'nopass': password rules are not allowed"),
        (
            {"app": "+get +set\nuser evil on"},
            "redis_acl_rules.app: word 3 of 5 is not an ACL rule the role can validate",
        ),
        ({"app": "+GET"}, "redis_acl_rules.app: word 1 of 1 is not an ACL rule"),
        ({"default": "on"}, "redis_acl_rules: 'default' is always off"),
        ({"bad name": "+get"}, "redis_acl_rules: 'bad name' is not a valid user name"),
    ],
)
def test_acl_rules_the_role_cannot_validate_are_refused(rules, message):
    errors = redis_acl_errors(ACL | rules, ACL_PASSWORDS, "admin", "replication", [])
    assert any(error.startswith(message) for error in errors), errors


def test_an_unknown_word_is_named_by_position_never_echoed():
    # A password pasted without its ">" must not land in the log.
    errors = redis_acl_errors(
        ACL | {"app": "+get S3cretPastedWithoutMarker"}, ACL_PASSWORDS, "admin", "replication", []
    )
    assert errors == ["redis_acl_rules.app: word 2 of 2 is not an ACL rule the role can validate"]
    assert "S3cret" not in " ".join(errors)


def test_acl_users_need_admin_replication_and_strong_passwords():
    errors = redis_acl_errors(
        {"app": "+get"}, {"app": "Test1234Test1234"}, "admin", "replication", ["Test1234"]
    )
    assert "redis_acl_rules: user 'admin' is missing (Ansible and replicas use it)" in errors
    assert "redis_acl_rules: user 'replication' is missing (Ansible and replicas use it)" in errors
    assert "redis_acl_passwords.app: is a known weak password" in errors
    missing = redis_acl_errors(ACL, {}, "admin", "replication", [])
    assert "redis_acl_passwords.sentinel: required (keep it in a vault; see README)" in missing


def test_known_weak_passwords_are_refused_without_any_list_from_the_inventory():
    assert redis_password_errors("Test1234Test1234", "redis_password") == [
        "redis_password: is a known weak password"
    ]
    assert redis_password_errors("FOOBAREDfoobared", "redis_password", []) == [
        "redis_password: is a known weak password"
    ]


def test_tls_names_tell_addresses_from_names_and_drop_repeats():
    names = ["redis1", "10.0.10.11", "", None, "-::1", "::1", "redis1", "localhost", "127.0.0.1"]
    assert redis_tls_names(names) == [
        "DNS:redis1",
        "IP:10.0.10.11",
        "IP:::1",
        "DNS:localhost",
        "IP:127.0.0.1",
    ]


def test_dpkg_missing_counts_only_installed_packages():
    lines = ["redis-server installed", "redis-tools config-files", "python3-redis installed"]
    wanted = ["redis-server", "redis-tools", "python3-redis", "redis-sentinel"]
    assert dpkg_missing(lines, wanted) == ["redis-tools", "redis-sentinel"]
    assert dpkg_missing(lines, ["redis-server", "python3-redis"]) == []


NOW = datetime(2026, 11, 29, tzinfo=UTC)
CA = {"subject": {"commonName": "Redis cache CA"}, "subject_key_identifier": "AA:01"}
CSR = {"public_key": "host-key"}
NAMES = ["DNS:redis1", "IP:10.0.0.11"]


def _tls_files(**changed):
    files = {
        "/etc/redis/tls/ca.crt": {"mode": "0644", "checksum": "ca-sha1", "mtime": 1.0},
        "/etc/redis/tls/redis.crt": {"mode": "0644", "mtime": 3.0},
        "/etc/redis/tls/redis.key": {"mode": "0640", "mtime": 2.0},
        "/etc/redis/tls/redis.csr": {"mode": "0644", "mtime": 2.0},
    }
    found = [
        {"path": path, "pw_name": "root", "gr_name": "redis", **item, **changed.get(path, {})}
        for path, item in files.items()
    ]
    wanted = [
        {"path": "/etc/redis/tls/ca.crt", "mode": "0644", "checksum": "ca-sha1"},
        {"path": "/etc/redis/tls/redis.crt", "mode": "0644"},
        {
            "path": "/etc/redis/tls/redis.key",
            "mode": "0640",
            "newer_than": "/etc/redis/tls/redis.crt",
        },
        {
            "path": "/etc/redis/tls/redis.csr",
            "mode": "0644",
            "newer_than": "/etc/redis/tls/redis.crt",
        },
    ]
    return found, [{**item, "owner": "root", "group": "redis"} for item in wanted]


def _cert(not_after="20271129000000Z", **fields):
    return {
        "issuer": CA["subject"],
        "authority_key_identifier": CA["subject_key_identifier"],
        "public_key": CSR["public_key"],
        "subject_alt_name": list(reversed(NAMES)),
        "not_after": not_after,
        **fields,
    }


def test_tls_files_in_place_need_no_change():
    found, wanted = _tls_files()
    assert redis_tls_changes(found, wanted, _cert(), CSR, CA, NAMES, "+30d", NOW) == []


@pytest.mark.parametrize(
    ("changed", "cert", "reason"),
    [
        ({"/etc/redis/tls/redis.key": {"mode": "0644"}}, _cert(), "mode 0644, not 0640"),
        ({"/etc/redis/tls/ca.crt": {"checksum": "other"}}, _cert(), "another content"),
        ({"/etc/redis/tls/redis.key": {"mtime": 4.0}}, _cert(), "newer than"),
        ({"/etc/redis/tls/redis.key": {"gr_name": "root"}}, _cert(), "group root, not redis"),
        ({}, _cert(not_after="20261215000000Z"), "due for renewal"),
        # Another CA of the same name (made again on the controller): another key.
        ({}, _cert(authority_key_identifier="BB:02"), "not from this CA"),
        ({}, _cert(public_key="another-key"), "not for this host's key"),
        ({"/etc/redis/tls/redis.csr": {"mtime": 4.0}}, _cert(), "newer than"),
        ({}, _cert(subject_alt_name=["DNS:redis1"]), "other hosts or addresses"),
        ({}, None, "no certificate"),
    ],
)
def test_tls_files_that_differ_say_why(changed, cert, reason):
    found, wanted = _tls_files(**changed)
    changes = redis_tls_changes(found, wanted, cert, CSR, CA, NAMES, "+30d", NOW)
    assert any(reason in change for change in changes), changes


def test_a_missing_tls_file_is_a_change():
    found, wanted = _tls_files()
    changes = redis_tls_changes(found[:3], wanted, _cert(), CSR, CA, NAMES, "+4w2d", NOW)
    assert changes == ["/etc/redis/tls/redis.csr: missing"]


def test_a_certificate_is_due_within_its_renewal_margin():
    assert redis_tls_due("20261215000000Z", "+30d", NOW)
    assert not redis_tls_due("20271129000000Z", "+30d", NOW)
    assert redis_tls_due("20271129000000Z", "+400d", NOW)
    assert not redis_tls_due("20261215000000Z", "+1w", NOW)


def test_file_mtimes_reads_what_its_query_prints(tmp_path):
    there = tmp_path / "there"
    there.write_text("x")
    paths = [str(there), str(tmp_path / "missing")]
    run = subprocess.run(file_mtimes_query(paths), capture_output=True, text=True, check=False)
    assert run.returncode == 1
    mtimes = file_mtimes(run.stdout.splitlines(), paths)
    assert mtimes == {str(there): pytest.approx(there.stat().st_mtime), paths[1]: 0.0}


def _pki(names):
    """A CA, and a host certificate it signed for a request with these subjectAltNames."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, host_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ca = (
        x509.CertificateBuilder(
            name("ca"), name("ca"), ca_key.public_key(), 1, start, datetime(2036, 1, 1, tzinfo=UTC)
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    csr = (
        x509.CertificateSigningRequestBuilder(name("redis1"))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(host_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder(
            name("redis1"),
            name("ca"),
            host_key.public_key(),
            2,
            start,
            datetime(2027, 11, 29, tzinfo=UTC),
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return [item.public_bytes(Encoding.PEM).decode() for item in (ca, csr, cert)]


def test_tls_info_reads_what_the_changes_compare():
    from ipaddress import ip_address

    from cryptography import x509

    names = [x509.DNSName("redis1"), x509.IPAddress(ip_address("::1"))]
    ca, csr, cert = (redis_tls_info(pem) for pem in _pki(names))
    assert cert["not_after"] == "20271129000000Z"
    assert cert["subject_alt_name"] == ["DNS:redis1", "IP:::1"] == csr["subject_alt_name"]
    assert cert["authority_key_identifier"] == ca["subject_key_identifier"]
    assert cert["public_key"] == csr["public_key"] != ca["public_key"]
    found, wanted = _tls_files()
    wanted_names = redis_tls_names(["redis1", "::1"])
    assert redis_tls_changes(found, wanted, cert, csr, ca, wanted_names, "+30d", NOW) == []
    # Signed by another CA of the same name: another key.
    other_ca = redis_tls_info(_pki(names)[0])
    changes = redis_tls_changes(found, wanted, cert, csr, other_ca, wanted_names, "+30d", NOW)
    assert any("not from this CA" in change for change in changes), changes
    # A certificate naming more than the wanted names (another kind of name too) is made again.
    extra = [redis_tls_info(pem) for pem in _pki([*names, x509.RFC822Name("ops@example.com")])]
    assert "email:ops@example.com" in extra[2]["subject_alt_name"]
    changes = redis_tls_changes(
        found, wanted, extra[2], extra[1], extra[0], wanted_names, "+30d", NOW
    )
    assert any("other hosts or addresses" in change for change in changes), changes
    # A damaged file reads as none, and is made again.
    assert (
        redis_tls_info("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n") is None
    )
