"""The TLS profiles and the reloading certificate, against real handshakes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paitient_common.tls import ReloadingCertificate, client_context, server_context
from paitient_localcluster.simulated.volumes import write_atomically
from paitient_operator.certificates import x509

NAMES = ["m.ns.svc", "m.ns.svc.cluster.local"]
NOW = datetime.now(UTC)
CA = x509.new_authority("test CA", timedelta(days=1), NOW)
OTHER_CA = x509.new_authority("someone else's CA", timedelta(days=1), NOW)


def _files(directory: Path, pair: x509.KeyPair) -> tuple[Path, Path]:
    """``pair`` in a kubelet-style Secret volume (``..data`` swapped atomically)."""
    write_atomically(
        directory, {"tls.crt": pair.cert_pem.encode(), "tls.key": pair.key_pem.encode()}
    )
    return directory / "tls.crt", directory / "tls.key"


@asynccontextmanager
async def serving(context: ssl.SSLContext) -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _connect(
    port: int, context: ssl.SSLContext, name: str = NAMES[0]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=name)


def _serial(writer: asyncio.StreamWriter) -> int:
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return x509.KeyPair(ssl.DER_cert_to_PEM_cert(der), "").cert.serial_number


def test_a_default_client_gets_tls_13_and_a_tls_12_client_an_aead_suite(tmp_path: Path) -> None:
    leaf = x509.issue(CA, NAMES, timedelta(hours=1), NOW)

    async def scenario() -> tuple[str, str, str]:
        async with serving(server_context(*_files(tmp_path, leaf))) as port:
            _, modern = await _connect(port, client_context(CA.cert_pem))
            tls12 = client_context(CA.cert_pem)
            tls12.maximum_version = ssl.TLSVersion.TLSv1_2
            _, older = await _connect(port, tls12)
            versions = (
                modern.get_extra_info("ssl_object").version(),
                older.get_extra_info("ssl_object").version(),
                older.get_extra_info("ssl_object").cipher()[0],
            )
            modern.close()
            older.close()
            return versions

    modern, older, cipher = asyncio.run(scenario())
    assert (modern, older) == ("TLSv1.3", "TLSv1.2")
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)


def test_a_client_offering_only_old_suites_or_versions_is_refused(tmp_path: Path) -> None:
    leaf = x509.issue(CA, NAMES, timedelta(hours=1), NOW)
    context = server_context(*_files(tmp_path, leaf))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2

    async def attempt(client: ssl.SSLContext) -> None:
        async with serving(context) as port:
            _, writer = await _connect(port, client)
            writer.close()

    cbc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cbc.load_verify_locations(cadata=CA.cert_pem)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA")  # CBC with SHA-1 MAC: not offered by the server
    with pytest.raises((ssl.SSLError, ConnectionError)):
        asyncio.run(attempt(cbc))


def test_the_client_trusts_only_its_bundle_and_checks_the_name(tmp_path: Path) -> None:
    leaf = x509.issue(CA, NAMES, timedelta(hours=1), NOW)

    async def attempt(client: ssl.SSLContext, name: str) -> None:
        async with serving(server_context(*_files(tmp_path, leaf))) as port:
            _, writer = await _connect(port, client, name)
            writer.close()

    asyncio.run(attempt(client_context(CA.cert_pem), NAMES[1]))  # the other Service name
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        asyncio.run(attempt(client_context(OTHER_CA.cert_pem), NAMES[0]))
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        asyncio.run(attempt(client_context(CA.cert_pem), "other.ns.svc"))
    with pytest.raises(ssl.SSLError, match="no PEM certificate"):
        client_context("")


def test_a_renewed_certificate_serves_new_handshakes_and_open_connections_carry_on(
    tmp_path: Path,
) -> None:
    first = x509.issue(CA, NAMES, timedelta(hours=1), NOW)
    second = x509.issue(CA, NAMES, timedelta(hours=2), NOW)
    reloading = ReloadingCertificate(*_files(tmp_path / "tls", first))
    client = client_context(CA.cert_pem)

    async def scenario() -> tuple[int, int, bytes, bool]:
        async with serving(reloading.context) as port:
            reader, open_one = await _connect(port, client)
            before = _serial(open_one)
            assert reloading.check() is False  # nothing changed yet
            _files(tmp_path / "tls", second)  # the kubelet's ..data swap
            assert reloading.check() is True
            open_one.write(b"still here\n")
            echoed = await reader.readline()
            _, new_one = await _connect(port, client)
            after = _serial(new_one)
            open_one.close()
            new_one.close()
            return before, after, echoed, reloading.check()

    before, after, echoed, again = asyncio.run(scenario())
    assert before == first.cert.serial_number
    assert after == second.cert.serial_number
    assert echoed == b"still here\n" and again is False
    assert reloading.reloads == 1


def test_a_pair_that_does_not_load_keeps_the_current_certificate(tmp_path: Path) -> None:
    first = x509.issue(CA, NAMES, timedelta(hours=1), NOW)
    other = x509.issue(CA, NAMES, timedelta(hours=1), NOW)
    reloading = ReloadingCertificate(*_files(tmp_path, first))
    # A certificate with the wrong key: load_cert_chain refuses the pair.
    write_atomically(
        tmp_path, {"tls.crt": other.cert_pem.encode(), "tls.key": first.key_pem.encode()}
    )
    assert reloading.check() is False and reloading.reloads == 0

    async def served_serial() -> int:
        async with serving(reloading.context) as port:
            _, writer = await _connect(port, client_context(CA.cert_pem))
            serial = _serial(writer)
            writer.close()
            return serial

    assert asyncio.run(served_serial()) == first.cert.serial_number
    write_atomically(
        tmp_path, {"tls.crt": other.cert_pem.encode(), "tls.key": other.key_pem.encode()}
    )
    assert reloading.check() is True
    assert asyncio.run(served_serial()) == other.cert.serial_number
