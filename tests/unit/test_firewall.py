"""The firewall role's input checks and the nftables set elements it writes."""

from ansible_collections.redis_cache.stack.plugins.filter.firewall import (
    firewall_address_errors,
    firewall_networks,
    firewall_peer_addresses,
    firewall_peers_without_facts,
    firewall_port_errors,
)


def test_addresses_and_networks_are_checked_one_message_each():
    errors = firewall_address_errors(
        ["10.0.0.1", "10.0.0.0/24", "10.0.0.1/24", "db.example", "::1"]
    )
    assert len(errors) == 2
    assert "10.0.0.1/24" in errors[0]
    assert "10.0.0.0/24" in errors[0]  # names the network meant
    assert "db.example" in errors[1]


def test_ports_outside_the_tcp_range_are_refused():
    assert firewall_port_errors([6379, 26379, 5000]) == []
    assert len(firewall_port_errors([0, 70000, "x"])) == 3


def test_elements_by_family_without_overlaps():
    elements = firewall_networks(["10.0.0.5", "10.0.0.0/24", "10.1.0.1", "fd00::1"])
    assert elements["ipv4"] == ["10.0.0.0/24", "10.1.0.1"]  # 10.0.0.5 is inside 10.0.0.0/24
    assert elements["ipv6"] == ["fd00::1"]


def test_peers_addresses_from_facts_and_those_to_gather():
    hostvars = {
        "a": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.1"}, "default_ipv6": {}}},
        "b": {},
    }
    assert firewall_peers_without_facts(["a", "b"], hostvars) == ["b"]
    assert firewall_peer_addresses(["a"], hostvars) == ["10.0.0.1"]
