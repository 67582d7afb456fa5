"""Password rotation of every ACL user under a client loop: no failed request, the previous
passwords refused afterwards, and site.yml agreeing with the result. Runs after test_rolling.py."""

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
from helpers import ACL_USERS, recap, redis_client, run_playbook, wait_for

REDIS = group("redis")
SECRETS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets")


@pytest.fixture(scope="module")
def rotated(address, connect):
    """Rotate all four users' passwords at once, the way the README tells an operator to."""
    previous = {user: (SECRETS / name).read_text().strip() for user, name in ACL_USERS.items()}
    run_ids = {h: connect(h).info("server")["run_id"] for h in REDIS}
    new = {user: secrets.token_hex(16) for user in ACL_USERS}
    # The vault's part: the previous passwords in a root-only vars file, the new ones in place.
    previous_file = SECRETS.parent / "rotation.yml"
    previous_file.touch(mode=0o600)
    previous_file.write_text(
        "redis_rotation_previous_passwords:\n"
        + "".join(f"  {user}: {password}\n" for user, password in previous.items())
    )
    for user, name in ACL_USERS.items():
        (SECRETS / name).write_text(new[user] + "\n")
    app = address[group("cache_app")[0]]
    with ClientLoop(f"http://{app}:5000") as loop:
        run = run_playbook("playbooks/rotate_passwords.yml", "-e", f"@{previous_file}")
    previous_file.unlink()
    return {"run": run, "loop": loop, "previous": previous, "new": new, "run_ids": run_ids}


def test_rotation_playbook_succeeds(rotated):
    run = rotated["run"]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_no_request_failed_during_the_rotation(rotated):
    statuses = [status for _, status, _, _ in rotated["loop"].results]
    # Each ACL LOAD closes the app's connections; how many answers then came from the slow store:
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


def test_site_yml_after_the_rotation_changes_nothing(rotated, playbook):
    run = playbook("site.yml")
    assert run.returncode == 0, run.stdout[-4000:]
    assert re.findall(r"changed=(\d+)", recap(run.stdout)) == ["0"] * 4, recap(run.stdout)
