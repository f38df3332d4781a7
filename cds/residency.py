"""Data residency: where this site's patient data may be sent (``CDS_ALLOWED_DESTINATIONS``), checked in one place.

Every sender calls :func:`check` right before it connects (the outbox's REST hooks, C-STORE, STOW-RS, MLLP), and
:class:`~cds.settings.Settings` refuses at load a configured destination outside the list
(:func:`refused_configured`). Unset, nothing is restricted (the configured destinations work as they always did);
set, a destination must match one of its entries:

* ``10.0.0.0/8``, ``fd00::/8``, ``10.0.0.5``, ``::1``: an address range (CIDR) or one address. It matches a
  destination written as an IP address inside it (an IPv4-mapped IPv6 address counts as its IPv4 address); a host
  *name* is never resolved to be matched against a range, so DNS cannot move data elsewhere.
* ``pacs.hospital.cn``: that host name exactly (case and a trailing dot aside), on any port and, for HTTP, any path.
* ``*.hospital.cn``: any host name under that domain at a label boundary (``a.hospital.cn``, ``a.b.hospital.cn``),
  not ``hospital.cn`` itself, and never ``hospital.cn.evil.net``.
* ``https://vna.hospital.cn/dicom-web``: an HTTP(S) URL prefix: the same scheme, host and port (default 443/80),
  and a path equal to the prefix's or below it at a ``/`` (``/dicom-web/studies``, not ``/dicom-webx``).

Loopback is not implicit: a listener on this machine may forward elsewhere, so list ``127.0.0.1`` or ``::1`` when
one of the destinations is local. A URL with user information (``https://a@b/``), a backslash or a ``.``/``..``
path segment is never allowed: clients disagree on what it addresses.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cds.errors import ForbiddenError

if TYPE_CHECKING:
    from cds.settings import Settings

__all__ = ["REASON", "AllowedDestinations", "DestinationNotAllowedError", "check", "configured", "redacted",
           "refused_configured"]

REASON = "destination_not_allowed"
_LABEL = r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)"
_HOST_NAME = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationNotAllowedError(ForbiddenError):
    """A destination outside ``CDS_ALLOWED_DESTINATIONS``: nothing was sent to it (HTTP 403 where a request asked)."""

    default_code = REASON


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: str
    port: int
    path: str


def _ip(host: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _host(text: str) -> str:
    """A host as compared: lower case, no brackets, no trailing dot."""
    return text.strip().lower().removeprefix("[").removesuffix("]").removesuffix(".")


def _url(text: str) -> _Url | None:
    """The parts of an HTTP(S) URL, or ``None`` for one whose address is ambiguous or not HTTP."""
    if "\\" in text or any(c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    path = parts.path or "/"
    if any(segment in (".", "..") or "%2e" in segment.lower() for segment in path.split("/")):
        return None
    return _Url(scheme, _host(parts.hostname), port or _DEFAULT_PORTS[scheme], path)


def _same_host(rule: str, host: str) -> bool:
    """Whether host ``host`` is the rule's host (addresses compared as addresses)."""
    rule_ip, host_ip = _ip(rule), _ip(host)
    return rule_ip == host_ip if rule_ip is not None or host_ip is not None else rule == host


@dataclass(frozen=True)
class AllowedDestinations:
    """A parsed allow-list: address ranges, host names, wildcard domains and URL prefixes."""

    networks: tuple[IpNetwork, ...] = ()
    names: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()  # ".hospital.cn" for "*.hospital.cn"
    prefixes: tuple[_Url, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowedDestinations:
        """Parse the entries; a ``ValueError`` names the first that is none of the four forms."""
        return _parse(tuple(entries))

    def permits_host(self, host: str) -> bool:
        """Whether a DICOM/HL7 peer (or a URL's host) at ``host`` is allowed."""
        host = _host(host)
        address = _ip(host)
        if address is not None:
            return any(address.version == net.version and address in net for net in self.networks)
        return bool(host) and (host in self.names or any(host.endswith(d) for d in self.domains))

    def permits(self, destination: str) -> bool:
        """Whether ``destination`` is allowed: an ``http(s)://`` URL, else a host."""
        if "://" not in destination:
            return self.permits_host(destination)
        url = _url(destination)
        if url is None:
            return False
        if self.permits_host(url.host):
            return True
        return any(p.scheme == url.scheme and p.port == url.port and _same_host(p.host, url.host)
                   and (url.path == p.path or url.path.startswith(p.path.rstrip("/") + "/"))
                   for p in self.prefixes)  # fmt: skip


@functools.lru_cache(maxsize=16)
def _parse(entries: tuple[str, ...]) -> AllowedDestinations:
    networks: list[IpNetwork] = []
    names: set[str] = set()
    domains: list[str] = []
    prefixes: list[_Url] = []
    for entry in entries:
        text = entry.strip()
        if "://" in text:
            url = _url(text)
            if url is None:
                raise ValueError(f"allowed destination {entry[:100]!r}: a URL prefix is http(s)://host[:port][/path], "
                                 "without user information")  # fmt: skip
            prefixes.append(url)
            continue
        try:
            networks.append(ipaddress.ip_network(_host(text)))
            continue
        except ValueError as exc:
            if "/" in text:
                raise ValueError(f"allowed destination {entry[:100]!r}: not an address range ({exc})") from None
        host = _host(text)
        if not _HOST_NAME.match(host):
            raise ValueError(f"allowed destination {entry[:100]!r}: expected an address range (10.0.0.0/8), an "
                             "address, a host name, *.domain or an http(s):// URL prefix")  # fmt: skip
        if host.startswith("*."):
            domains.append(host[1:])
        else:
            names.add(host)
    return AllowedDestinations(tuple(networks), frozenset(names), tuple(domains), tuple(prefixes))


def redacted(destination: str) -> str:
    """A destination as recorded: a URL without query, fragment or user information."""
    if "://" not in destination:
        return destination[:200]
    parts = urlsplit(destination)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:200]


def check(settings: Settings, destination: str, *, name: str = "") -> None:
    """Raise :class:`DestinationNotAllowedError` unless ``destination`` (URL or host) may receive this site's data.

    Called by every sender right before it connects; nothing is restricted while ``CDS_ALLOWED_DESTINATIONS`` is
    unset.
    """
    if settings.allowed_destinations is None:
        return
    if not AllowedDestinations.parse(settings.allowed_destinations).permits(destination):
        label = f"{name} ({redacted(destination)})" if name else redacted(destination)
        raise DestinationNotAllowedError(f"{label} is outside CDS_ALLOWED_DESTINATIONS; nothing was sent")


def _without_port(address: str) -> str:
    """``host`` of ``host:port`` (``[v6]:port`` too); a URL as it is."""
    if "://" in address:
        return address
    if address.startswith("[") and "]" in address:
        return _host(address.split("]", 1)[0])
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def configured(settings: Settings) -> list[tuple[str, str]]:
    """Every destination the settings send patient data to: ``(setting and name, URL or host)``."""
    found = [("CDS_ALERT_WEBHOOKS", url) for url in settings.alert_webhooks]
    for dicom in settings.dicom_destinations:
        found.append((f"CDS_DICOM_DESTINATIONS {dicom.name!r}", dicom.url or dicom.host or ""))
    found.extend((f"CDS_HL7_DESTINATIONS {hl7.name!r}", hl7.host) for hl7 in settings.hl7_destinations)
    if settings.backend.value == "triton":  # the images and records themselves go to the inference server
        found.append(("CDS_TRITON_URL", _without_port(settings.triton_url)))
    return found


def refused_configured(settings: Settings, allowed: Sequence[str]) -> list[str]:
    """The configured destinations (``setting 'name' (address)``) that ``allowed`` does not permit."""
    rules = AllowedDestinations.parse(allowed)
    return [f"{label} ({redacted(address)})" for label, address in configured(settings) if not rules.permits(address)]
