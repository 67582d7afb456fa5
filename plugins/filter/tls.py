"""The redis_tls_names filter: subjectAltName entries for the certificates the roles make."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any


def redis_tls_names(names: Sequence[Any]) -> list[str]:
    """subjectAltName entries for a certificate: "IP:" for addresses, "DNS:" for names."""
    entries: list[str] = []
    for name in names:
        if not name:
            continue
        text = str(name).strip().lstrip("-")
        try:
            entry = f"IP:{ipaddress.ip_address(text)}"
        except ValueError:
            entry = f"DNS:{text}"
        if entry not in entries:
            entries.append(entry)
    return entries


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"redis_tls_names": redis_tls_names}
