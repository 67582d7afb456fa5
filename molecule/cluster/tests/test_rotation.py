"""Password rotation of every ACL user, Redis's and Sentinel's, under a client loop: no failed
request, the previous passwords refused afterwards, and site.yml agreeing with the result. Runs
after test_rolling.py."""

from __future__ import annotations

import os
import re
import secrets
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from conftest import ClientLoop, current_primary, group
from shared.helpers import ACL_USERS, SENTINEL_USERS, leaks, redis_client, run_playbook, wait_for

REDIS = group("redis")
SENTINELS = group("redis_sentinel")
SECRETS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets")


def test_a_rotation_that_misses_a_user_in_force_is_refused_before_any_change(connect):
    """New passwords for app and replication, app's previous one not listed and a wrong one for
    replication: the rotation stops before any change, naming each user; nobody is locked out."""
    files = {user: SECRETS / ACL_USERS[user] for user in ("app", "replication")}
    current = {user: path.read_text() for user, path in files.items()}
    acl_before = {h: sorted(connect(h).acl_list()) for h in REDIS}
    previous_file = SECRETS.parent / "rotation.yml"
    previous_file.touch(mode=0o600)
    previous_file.write_text(
        "redis_rotation_previous_passwords:\n  replication: not-the-one-in-force-0123\n"
    )
    for path in files.values():
        path.write_text(secrets.token_hex(16) + "\n")
    try:
        run = run_playbook("playbooks/rotate_passwords.yml", "-e", f"@{previous_file}")
    finally:
        for user, path in files.items():
            path.write_text(current[user])
        previous_file.unlink()
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert re.search(r"app: \S+ refuses its new password", output), output[-3000:]
    assert "redis_rotation_previous_passwords.replication: neither it nor the" in output
    assert {h: sorted(connect(h).acl_list()) for h in REDIS} == acl_before
    assert connect(REDIS[0], user="app").ping()


@pytest.fixture(scope="module")
def rotated(address, connect, sentinel):
    """Rotate all four Redis users' and all three Sentinel users' passwords at once, the way the
    README tells an operator to."""
    previous = {user: (SECRETS / name).read_text().strip() for user, name in ACL_USERS.items()}
    sentinel_previous = {u: (SECRETS / n).read_text().strip() for u, n in SENTINEL_USERS.items()}
    run_ids = {h: connect(h).info("server")["run_id"] for h in REDIS}
    sentinel_run_ids = {h: sentinel(h).info("server")["run_id"] for h in SENTINELS}
    new = {user: secrets.token_hex(16) for user in ACL_USERS}
    sentinel_new = {user: secrets.token_hex(16) for user in SENTINEL_USERS}
    # The vault's part: the previous passwords in a root-only vars file, the new ones in place.
    previous_file = SECRETS.parent / "rotation.yml"
    previous_file.touch(mode=0o600)
    previous_file.write_text(
        "redis_rotation_previous_passwords:\n"
        + "".join(f"  {user}: {password}\n" for user, password in previous.items())
        + "redis_sentinel_rotation_previous_passwords:\n"
        + "".join(f"  {user}: {password}\n" for user, password in sentinel_previous.items())
    )
    for user, name in ACL_USERS.items():
        (SECRETS / name).write_text(new[user] + "\n")
    for user, name in SENTINEL_USERS.items():
        (SECRETS / name).write_text(sentinel_new[user] + "\n")
    app = address[group("cache_app")[0]]
    with ClientLoop(f"http://{app}:5000") as loop:
        run = run_playbook("playbooks/rotate_passwords.yml", "-vvv", "-e", f"@{previous_file}")
    previous_file.unlink()
    return {
        "run": run,
        "loop": loop,
        "previous": previous,
        "new": new,
        "run_ids": run_ids,
        "sentinel_previous": sentinel_previous,
        "sentinel_new": sentinel_new,
        "sentinel_run_ids": sentinel_run_ids,
    }


def test_rotation_playbook_succeeds(rotated):
    run = rotated["run"]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_the_rotation_log_at_vvv_holds_no_secret(rotated):
    output = rotated["run"].stdout + rotated["run"].stderr
    secrets_now = [
        *rotated["previous"].values(),
        *rotated["new"].values(),
        *rotated["sentinel_previous"].values(),
        *rotated["sentinel_new"].values(),
    ]
    assert leaks(output, secrets_now) == []


def test_no_request_failed_during_the_rotation(rotated):
    statuses = [status for _, status, _, _ in rotated["loop"].results]
    # Removing the previous passwords closes the app's connections; how many answers then came
    # from the slow store:
    bypassed = sum(x_cache == "BYPASS" for _, _, x_cache, _ in rotated["loop"].results)
    print(f"{len(statuses)} answers during the rotation, {bypassed} bypassed the cache")
    assert len(statuses) > 20, "the client loop made too few requests"
    assert set(statuses) == {200}, [r for r in rotated["loop"].results if r[1] != 200]


@pytest.mark.parametrize("host", REDIS)
@pytest.mark.parametrize("user", list(ACL_USERS))
def test_previous_password_is_refused_and_the_new_one_works(rotated, address, host, user):
    old = redis_client(address[host], 6379, rotated["previous"][user], user)
    with pytest.raises(redis.AuthenticationError):
        old.ping()
    assert redis_client(address[host], 6379, rotated["new"][user], user).ping()


def test_no_redis_restarted(rotated, connect):
    """Replicas and Sentinels took their new passwords at runtime."""
    assert {h: connect(h).info("server")["run_id"] for h in REDIS} == rotated["run_ids"]


@pytest.mark.parametrize("host", SENTINELS)
@pytest.mark.parametrize("user", list(SENTINEL_USERS))
def test_previous_sentinel_password_is_refused_and_the_new_one_works(rotated, address, host, user):
    old = redis_client(address[host], 26379, rotated["sentinel_previous"][user], user)
    with pytest.raises(redis.AuthenticationError):
        old.ping()
    password = rotated["sentinel_new"][user]
    # AUTH: a command every user may send (the app's may not even PING).
    assert redis_client(address[host], 26379, password, user).execute_command(
        "AUTH", user, password
    )


def test_no_sentinel_restarted(rotated, sentinel):
    """Sentinels took their users' new passwords and their links' at runtime."""
    assert {h: sentinel(h).info("server")["run_id"] for h in SENTINELS} == rotated[
        "sentinel_run_ids"
    ]


def test_sentinels_log_in_to_each_other_with_the_new_peer_password(rotated, sentinel):
    """Each Sentinel holds the new peer password for its links; cut every link, and past
    down-after-milliseconds (3 s) each has logged in again with it: no Sentinel is s_down."""
    for host in SENTINELS:
        reply = sentinel(host).execute_command("SENTINEL", "CONFIG", "GET", "sentinel-pass")
        assert reply[1] == rotated["sentinel_new"]["peer"], host
    for host in SENTINELS:
        sentinel(host).client_kill_filter(user="peer")
    time.sleep(4)
    for host in SENTINELS:
        watcher = sentinel(host)
        assert watcher.execute_command("SENTINEL", "CKQUORUM", "cache").startswith("OK")
        down = [s["ip"] for s in watcher.sentinel_sentinels("cache") if s["is_sdown"]]
        assert down == [], (host, down)


def test_replication_and_sentinel_work_with_the_new_passwords(rotated, connect, sentinel, address):
    primary = current_primary(sentinel, address)
    replicas = [h for h in REDIS if h != primary]
    key = f"rotated:{secrets.token_hex(6)}"
    connect(primary).set(key, "after rotation", ex=60)
    for replica in replicas:
        client = connect(replica)
        assert wait_for(lambda c=client: c.get(key) == "after rotation", timeout=5), replica
    # Past down-after-milliseconds (3 s): a Sentinel still sending the old auth-pass would get no
    # valid PING reply and flag the instances s_down.
    time.sleep(4)
    for host in REDIS:
        watcher = sentinel(host)
        assert watcher.execute_command("SENTINEL", "CKQUORUM", "cache").startswith("OK")
        states = [watcher.sentinel_master("cache"), *watcher.sentinel_slaves("cache")]
        down = [s["ip"] for s in states if s["is_sdown"] or s["is_disconnected"]]
        assert down == [], (host, down)


def test_app_caches_with_its_new_password(rotated, address):
    """After the rotation a key is a miss, then a hit: the app logs in with its new password."""
    url = f"http://{address[group('cache_app')[0]]}:5000/data/rotated{secrets.token_hex(4)}"
    seen = []
    for _ in range(2):
        with urllib.request.urlopen(url, timeout=10) as response:
            seen.append(response.headers["X-Cache"])
    assert seen == ["MISS", "HIT"]
