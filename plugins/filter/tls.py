"""TLS filters: redis_tls_names, the subjectAltName entries of the certificates the roles make;
redis_tls_info, what the role compares of a certificate or signing request;
redis_tls_changes, why the TLS files a host has are not the ones the role would make;
redis_tls_due, whether a certificate is due for renewal."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

try:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:  # reported by redis_tls_info, the one filter that reads certificates
    x509 = None


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


def _key_id(value: bytes | None) -> str | None:
    return ":".join(f"{byte:02x}" for byte in value) if value else None


def _general_name(name: Any) -> str:
    """A subjectAltName entry as community.crypto writes it ("DNS:", "IP:", "email:", "URI:"...);
    any other kind by its class, so a certificate naming one never passes for the wanted one."""
    for kind, prefix in (
        (x509.DNSName, "DNS"),
        (x509.IPAddress, "IP"),
        (x509.RFC822Name, "email"),
        (x509.UniformResourceIdentifier, "URI"),
    ):
        if isinstance(name, kind):
            return f"{prefix}:{name.value}"
    if isinstance(name, x509.RegisteredID):
        return f"RID:{name.value.dotted_string}"
    if isinstance(name, x509.DirectoryName):
        return f"dirName:{name.value.rfc4514_string()}"
    return f"{type(name).__name__}:{name.value!r}"


def redis_tls_info(pem: str) -> dict[str, Any] | None:
    """The fields redis_tls_changes compares, of a certificate or a signing request (PEM), named
    and written as community.crypto's x509_certificate_info and openssl_csr_info filters give
    them: public_key (PEM), subject_alt_name ("DNS:name", "IP:address"), and for a certificate
    not_after (ASN.1 time), subject_key_identifier and authority_key_identifier ("ab:cd:..").
    None for what is neither (a damaged file is made again). Read here with cryptography, as
    those filters do: loading that collection's filters costs a run more than the reading."""
    if x509 is None:
        raise ImportError("redis_tls_info needs the Python package cryptography on the controller")
    data = str(pem).encode()
    try:
        if b"CERTIFICATE REQUEST" in data:
            item: x509.Certificate | x509.CertificateSigningRequest = x509.load_pem_x509_csr(data)
        else:
            item = x509.load_pem_x509_certificate(data)
    except ValueError:
        return None
    extensions = item.extensions
    try:
        names = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = []
    info: dict[str, Any] = {
        "public_key": item.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        "subject_alt_name": [_general_name(name) for name in names],
    }
    if isinstance(item, x509.Certificate):
        # not_valid_after_utc since cryptography 42; before, a naive UTC time.
        end = getattr(item, "not_valid_after_utc", None) or item.not_valid_after
        info["not_after"] = end.strftime(ASN1_FORMAT)
        for field, kind, attribute in (
            ("subject_key_identifier", x509.SubjectKeyIdentifier, "digest"),
            ("authority_key_identifier", x509.AuthorityKeyIdentifier, "key_identifier"),
        ):
            try:
                info[field] = _key_id(
                    getattr(extensions.get_extension_for_class(kind).value, attribute)
                )
            except x509.ExtensionNotFound:
                info[field] = None
    return info


# community.crypto's relative times: "+30d", "+4w", "+1d12h", ...; "+2592000" counts seconds.
RELATIVE_RE = re.compile(r"^\+(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
ASN1_FORMAT = "%Y%m%d%H%M%SZ"


def redis_tls_due(not_after: str | None, renew_before: str, now: datetime | None = None) -> bool:
    """True when a certificate valid until `not_after` (ASN.1 time, as x509_certificate_info says)
    has less time left than `renew_before` (a relative time, "+30d"; or an ASN.1 time)."""
    now = now or datetime.now(UTC)
    try:
        end = datetime.strptime(str(not_after), ASN1_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return True
    match = RELATIVE_RE.match(str(renew_before).strip())
    if match and any(match.groups()):
        weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        margin = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        return end <= now + margin
    try:
        moment = datetime.strptime(str(renew_before).strip(), ASN1_FORMAT)
    except ValueError:
        return True  # the module that renews says what is wrong with it
    return end <= moment.replace(tzinfo=UTC)


def redis_tls_changes(
    found: Sequence[Mapping[str, Any]],
    wanted: Sequence[Mapping[str, Any]],
    cert: Mapping[str, Any] | None,
    csr: Mapping[str, Any] | None,
    ca: Mapping[str, Any] | None,
    names: Sequence[str],
    renew_before: str,
    now: datetime | None = None,
) -> list[str]:
    """Why the TLS files a host has differ from those the role makes; empty when none do.

    `found`: ansible.builtin.find's files (with checksums). `wanted`: each file's path, mode,
    owner, group and, where known, checksum (sha1); `newer_than` names a file it must not be
    newer than (a key or request made after its certificate). `cert` and `ca`: the host's
    certificate and the CA's, and `csr` the host's signing request, as redis_tls_info reads
    them; None where there is none. The certificate must be signed by this CA's key (its
    authority key identifier), for the request's key (made from the host's). `names`: the
    subjectAltName entries wanted. `renew_before`: how long before its end a certificate is
    replaced (redis_tls_cert_renew_before).
    """
    have = {str(item["path"]): item for item in found}
    changes = []
    for want in wanted:
        path = str(want["path"])
        item = have.get(path)
        if item is None:
            changes.append(f"{path}: missing")
            continue
        for field, key in (("mode", "mode"), ("owner", "pw_name"), ("group", "gr_name")):
            if str(item.get(key)) != str(want[field]):
                changes.append(f"{path}: {field} {item.get(key)}, not {want[field]}")
        if want.get("checksum") and item.get("checksum") != want["checksum"]:
            changes.append(f"{path}: another content")
        older = have.get(str(want.get("newer_than", "")))
        if older is not None and item["mtime"] > older["mtime"]:
            changes.append(f"{path}: newer than {older['path']}")
    if cert is None or csr is None or ca is None:
        return [*changes, "no certificate, signing request or CA to compare"]
    if redis_tls_due(cert.get("not_after"), renew_before, now):
        changes.append("the certificate is due for renewal")
    if not ca.get("subject_key_identifier") or (
        cert.get("authority_key_identifier") != ca.get("subject_key_identifier")
    ):
        changes.append("the certificate is not from this CA")
    if cert.get("public_key") != csr.get("public_key"):
        changes.append("the certificate is not for this host's key")
    if sorted(cert.get("subject_alt_name") or []) != sorted(names):
        changes.append("the certificate names other hosts or addresses")
    return changes


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "redis_tls_names": redis_tls_names,
            "redis_tls_info": redis_tls_info,
            "redis_tls_changes": redis_tls_changes,
            "redis_tls_due": redis_tls_due,
        }
