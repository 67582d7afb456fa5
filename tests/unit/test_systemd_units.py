"""The units' state read from one `systemctl show`: what the roles start, and the app's start."""

import pytest

from ansible_collections.redis_cache.stack.plugins.filter.systemd import (
    systemd_pending,
    systemd_show_query,
    systemd_units,
)

UNITS = ["redis-server.service", "redis-server@slave.service", "nosuch.service"]
# As systemd 252 (Debian 12) prints it for the query below: a running instance, one whose new
# drop-in systemd has not read yet, and a unit that does not exist.
OUTPUT = """\
ExecMainStartTimestamp=Sun 2026-11-29 17:05:20.300993 UTC
LoadState=loaded
ActiveState=active
UnitFileState=enabled
NeedDaemonReload=no

ExecMainStartTimestamp=Sun 2026-11-29 17:05:21.000001 UTC
LoadState=loaded
ActiveState=active
UnitFileState=enabled
NeedDaemonReload=yes

ExecMainStartTimestamp=
LoadState=not-found
ActiveState=inactive
UnitFileState=
NeedDaemonReload=no
"""


def test_the_query_asks_for_every_unit_in_order():
    argv = systemd_show_query(UNITS)
    assert argv[:2] == ["systemctl", "show"]
    assert argv[-4:] == ["--", *UNITS]
    assert "--timestamp=us+utc" in argv


def test_each_unit_gets_its_own_block():
    units = systemd_units(OUTPUT, UNITS)
    assert list(units) == UNITS
    assert units["redis-server.service"]["ExecMainStartTimestamp"] == (
        "Sun 2026-11-29 17:05:20.300993 UTC"
    )
    assert units["nosuch.service"]["LoadState"] == "not-found"
    # Its lines (stdout_lines) read the same.
    assert systemd_units(OUTPUT.splitlines(), UNITS) == units
    # A property systemctl leaves out (a socket has no main process) reads as empty.
    assert (
        systemd_units("ActiveState=active\n", ["app.socket"])["app.socket"][
            "ExecMainStartTimestamp"
        ]
        == ""
    )


def test_only_units_with_work_left_are_pending():
    # Running and enabled: nothing to do. A drop-in systemd has not read, or a unit that is not
    # there (or stopped, or disabled): the systemd_service module is called for it.
    assert systemd_pending(systemd_units(OUTPUT, UNITS)) == UNITS[1:]
    stopped = OUTPUT.replace("ActiveState=active", "ActiveState=inactive", 1)
    assert systemd_pending(systemd_units(stopped, UNITS))[0] == UNITS[0]
    disabled = OUTPUT.replace("UnitFileState=enabled", "UnitFileState=disabled", 1)
    assert systemd_pending(systemd_units(disabled, UNITS))[0] == UNITS[0]


def test_output_for_other_units_is_refused():
    with pytest.raises(ValueError, match="blocks for units"):
        systemd_units(OUTPUT, UNITS[:2])
