"""TLS and mTLS settings reach the Temporal client: a real client against the stack's dev server
behind a TLS terminator whose CA, server and client certificates are made here.

The CLI in .venv (temporal 1.9.1) has no TLS flags on `server start-dev`, so the TLS end is an
asyncio proxy (ALPN h2, optional client-certificate check) in front of the plaintext dev server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from charters.settings import Settings
from charters.temporal_client import connect, connect_options

Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, key: Key, issuer: tuple[str, Key] | None, usage: x509.ObjectIdentifier | None
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("temporal.test")]), critical=False
            )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: Key | None = None) -> Path:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path.with_suffix(".pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for `temporal.test` and a client certificate, as PEM files."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("charters test CA", ca_key, None, None)
    _write(d / "ca", ca)
    _write(
        d / "server",
        _cert(
            "temporal.test",
            server_key,
            ("charters test CA", ca_key),
            ExtendedKeyUsageOID.SERVER_AUTH,
        ),
        server_key,
    )
    _write(
        d / "client",
        _cert(
            "charters-worker",
            client_key,
            ("charters test CA", ca_key),
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
        client_key,
    )
    return d


@contextlib.asynccontextmanager
async def tls_terminator(pki: Path, upstream: str, require_client_cert: bool) -> AsyncIterator[int]:
    host, port = upstream.rsplit(":", 1)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.set_alpn_protocols(["h2"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki / "ca.pem")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def secured(settings: Settings, port: int, **update: object) -> Settings:
    return settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{port}",
            "temporal_tls_server_name": "temporal.test",
            **update,
        }
    )


async def reachable(settings: Settings) -> bool:
    try:
        client = await asyncio.wait_for(connect(settings), 20)
        await client.count_workflows()
    except Exception:  # noqa: BLE001 - any failure to connect or call is "not reachable"
        return False
    return True


async def test_tls_with_the_private_ca_reaches_the_cluster(settings: Settings, pki: Path) -> None:
    async with tls_terminator(pki, settings.temporal_address, require_client_cert=False) as port:
        assert await reachable(secured(settings, port, temporal_tls_ca_file=pki / "ca.pem"))
        # Without the CA (system roots) the self-signed chain is refused; plaintext is refused.
        assert not await reachable(secured(settings, port, temporal_tls=True))
        assert not await reachable(secured(settings, port, temporal_tls_server_name=None))


async def test_mtls_needs_the_client_certificate(settings: Settings, pki: Path) -> None:
    async with tls_terminator(pki, settings.temporal_address, require_client_cert=True) as port:
        ca_only = secured(settings, port, temporal_tls_ca_file=pki / "ca.pem")
        assert not await reachable(ca_only)
        with_cert = ca_only.model_copy(
            update={
                "temporal_tls_cert_file": pki / "client.pem",
                "temporal_tls_key_file": pki / "client.key",
            }
        )
        assert await reachable(with_cert)


def test_api_key_turns_tls_on_and_is_sent(settings: Settings) -> None:
    cloud = settings.model_copy(update={"temporal_api_key": SecretStr("tmprl-api-key")})
    options = connect_options(cloud)
    assert options["api_key"] == "tmprl-api-key"
    assert options["tls"] is not False
    assert connect_options(settings)["tls"] is False  # the local dev server: plaintext


def test_half_an_mtls_pair_is_refused(settings: Settings, pki: Path) -> None:
    half = settings.model_copy(update={"temporal_tls_cert_file": pki / "client.pem"})
    with pytest.raises(RuntimeError, match="KEY_FILE"):
        connect_options(half)
