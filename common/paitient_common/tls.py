"""TLS as every PaiTIENT server and client sets it up: one server profile, one client profile,
and a certificate that is reloaded from its files without a restart.

Server profile: TLS 1.2 or 1.3 only (OpenSSL picks 1.3 when the client offers it), and for 1.2
only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305); no compression, no
renegotiation, HTTP/1.1 by ALPN. TLS 1.3's suites are OpenSSL's fixed set, all AEAD.

Client profile: trusts exactly the CA bundle it is given (never the system store), checks the
host name, TLS 1.2 or newer.

Reload: ``load_cert_chain`` on a live ``SSLContext`` changes the certificate of every handshake
that follows; connections already open keep theirs, so a renewal drops no request. The files are
watched by polling their identity (inode, size, mtime after following symlinks): the kubelet
replaces a Secret volume's content by swapping the ``..data`` symlink, which changes every file's
inode at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography import x509

log = logging.getLogger("paitient.tls")

# TLS 1.2 suites: forward secrecy and authenticated encryption only.
TLS12_CIPHERS: Final = "ECDHE+AESGCM:ECDHE+CHACHA20"
RELOAD_INTERVAL: Final = 1.0


def server_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A server context holding the certificate chain and key of the two PEM files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def client_context(ca_bundle_pem: str) -> ssl.SSLContext:
    """A client context that trusts only the CAs in ``ca_bundle_pem`` and checks host names.

    Raises ``ssl.SSLError`` when the bundle holds no usable certificate."""
    if "-----BEGIN CERTIFICATE-----" not in ca_bundle_pem:
        raise ssl.SSLError("the CA bundle holds no PEM certificate")
    # With cadata given, the system's default CAs are not loaded.
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_bundle_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _not_after(cert_pem: bytes) -> datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def _identity(path: Path) -> tuple[int, int, int, int]:
    stat = path.stat()  # follows symlinks: the kubelet's ..data swap changes the inode
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass
class ReloadingCertificate:
    """A server ``SSLContext`` whose certificate follows two PEM files.

    ``check()`` reloads when either file changed since the last load; a pair that does not load
    (half written, key and certificate mismatched) leaves the previous certificate in place and
    is tried again at the next check. ``run()`` checks every ``interval`` seconds."""

    cert_file: Path
    key_file: Path
    interval: float = RELOAD_INTERVAL
    on_reload: Callable[[], None] | None = None
    context: ssl.SSLContext = field(init=False)
    reloads: int = field(default=0, init=False)
    # When the certificate being served expires (its first in the chain): exported as a metric.
    not_after: datetime = field(init=False)
    _loaded: tuple[tuple[int, ...], tuple[int, ...]] = field(init=False)
    _failed: tuple[tuple[int, ...], tuple[int, ...]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.cert_file, self.key_file = Path(self.cert_file), Path(self.key_file)
        loaded = self._identities()
        cert_file, key_file = self._resolved()
        self.context = server_context(cert_file, key_file)
        self.not_after = _not_after(Path(cert_file).read_bytes())
        self._loaded = loaded

    def _identities(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return _identity(self.cert_file), _identity(self.key_file)

    def _resolved(self) -> tuple[str, str]:
        # Both files through the same resolved ..data directory, so a swap between the two
        # reads cannot pair the new certificate with the old key.
        return os.path.realpath(self.cert_file), os.path.realpath(self.key_file)

    def _load(self, cert_file: str, key_file: str) -> None:
        # A pair refused half-way (certificate taken, key refused) would leave the live context
        # with a certificate and no key to match. So the pair is copied where nothing else
        # writes, tried on a scratch context, and only then loaded into the live one.
        with tempfile.TemporaryDirectory(prefix="paitient-tls-") as scratch:
            cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
            cert.write_bytes(Path(cert_file).read_bytes())
            key.touch(mode=0o600)
            key.write_bytes(Path(key_file).read_bytes())
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
            self.context.load_cert_chain(cert, key)
            self.not_after = _not_after(cert.read_bytes())

    def check(self) -> bool:
        """Reload if the files changed; True when a new certificate was loaded."""
        try:
            seen = self._identities()
        except OSError:
            return False  # mid-swap, or the volume is being rewritten: look again next time
        if seen == self._loaded:
            return False
        try:
            self._load(*self._resolved())
        except (OSError, ssl.SSLError) as exc:
            if seen != self._failed:  # say it once per version of the files
                log.warning("certificate in %s not loaded (%s); keeping the current one",
                            self.cert_file, type(exc).__name__)  # fmt: skip
            self._failed = seen
            return False
        self._loaded, self._failed = seen, None
        self.reloads += 1
        log.info("reloaded the TLS certificate from %s", self.cert_file)
        if self.on_reload is not None:
            self.on_reload()
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()
