"""Filters that turn the firewall role's settings into nftables set elements.

`firewall_address_errors` and `firewall_port_errors` list the mistakes argument specs cannot
express, so that the play stops before any host changes. `firewall_networks` splits addresses and
networks by family and merges overlapping ones (nftables refuses overlapping intervals in a set).
`firewall_peer_addresses` reads the peers' default addresses from their gathered facts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FAMILIES = {4: "ipv4", 6: "ipv6"}
DEFAULT_ADDRESS_FACTS = ("default_ipv4", "default_ipv6")


def _network(source: Any) -> Network:
    """An address or a network (CIDR) as a network; ValueError for anything else."""
    text = str(source).strip()
    if "%" in text:
        raise ValueError(f"{text} has a scope")
    return ipaddress.ip_network(text, strict=True)


def _address_error(source: Any) -> str | None:
    text = str(source).strip()
    if "%" in text:
        return "has a zone (%...), which a rule set cannot match"
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    else:
        return None
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return "is not an IPv4/IPv6 address or network (CIDR)"
    return f"has host bits set; the network is {loose}"


def firewall_address_errors(sources: Any, name: str = "firewall_allowed_sources") -> list[str]:
    """What is wrong with a list of addresses and networks, one message per bad entry."""
    if not isinstance(sources, list):
        return [f"{name}: must be a list of addresses or networks, not {sources!r}"]
    return [
        f"{name}: {source!r} {error}"
        for source in sources
        if (error := _address_error(source)) is not None
    ]


def firewall_port_errors(ports: Any, name: str = "firewall_ports") -> list[str]:
    """What is wrong with a list of TCP ports, one message per bad entry."""
    if not isinstance(ports, list):
        return [f"{name}: must be a list of TCP ports, not {ports!r}"]
    errors = []
    for port in ports:
        number = port if isinstance(port, int) and not isinstance(port, bool) else None
        if isinstance(port, str) and port.strip().isdigit():
            number = int(port)
        if number is None or not 1 <= number <= 65535:
            errors.append(f"{name}: {port!r} is not a TCP port (1-65535)")
    return errors


def _element(network: Network) -> str:
    """A set element: a single address without its /32 or /128, a network with its prefix."""
    single = network.prefixlen == network.max_prefixlen
    return str(network.network_address) if single else str(network)


def firewall_networks(sources: Iterable[Any]) -> dict[str, list[str]]:
    """Addresses and networks by family (ipv4, ipv6), sorted, as nft writes them.

    An entry inside another one is dropped (nftables refuses overlapping intervals in a set);
    neighbours are kept apart, so that every host's address stays visible in the rule set.
    """
    by_family: dict[int, set[Network]] = {4: set(), 6: set()}
    for source in sources:
        network = _network(source)
        by_family[network.version].add(network)
    return {
        FAMILIES[version]: [
            _element(network)
            for network in sorted(networks)
            if not any(other != network and network.subnet_of(other) for other in networks)
        ]
        for version, networks in by_family.items()
    }


def _facts(hostvars: Mapping[str, Any], host: str) -> Mapping[str, Any]:
    return hostvars[host].get("ansible_facts") or {}


def firewall_peers_without_facts(peers: Iterable[str], hostvars: Mapping[str, Any]) -> list[str]:
    """Peers whose network facts were not gathered in this run (left out by --limit)."""
    return [host for host in peers if "default_ipv4" not in _facts(hostvars, host)]


def firewall_peer_addresses(peers: Iterable[str], hostvars: Mapping[str, Any]) -> list[str]:
    """Every peer's default IPv4 and IPv6 address, where it has one."""
    addresses = []
    for host in peers:
        facts = _facts(hostvars, host)
        for key in DEFAULT_ADDRESS_FACTS:
            address = (facts.get(key) or {}).get("address")
            if address:
                addresses.append(address)
    return addresses


def firewall_peers_without_address(peers: Iterable[str], hostvars: Mapping[str, Any]) -> list[str]:
    """Peers with neither a default IPv4 nor a default IPv6 address in their facts."""
    return [host for host in peers if not firewall_peer_addresses([host], hostvars)]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "firewall_address_errors": firewall_address_errors,
            "firewall_port_errors": firewall_port_errors,
            "firewall_networks": firewall_networks,
            "firewall_peers_without_facts": firewall_peers_without_facts,
            "firewall_peer_addresses": firewall_peer_addresses,
            "firewall_peers_without_address": firewall_peers_without_address,
        }
