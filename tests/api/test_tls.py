"""HTTPS of its own for a trial: ``sitewatch tls make`` makes a local authority and a server
certificate that a TLS client verifies (and reuses the authority), and ``sitewatch serve
--tls-cert --tls-key`` serves HTTPS only, refusing a half or unusable pair before it starts."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import ssl
import stat
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner, Result

from api.cli.main import app
from layers.db.settings import Settings

runner = CliRunner()
Serving = Callable[..., contextlib.AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]]
# Long enough for a whole run of the command; a serve that ignored a bad TLS option would
# instead start serving and block until this ends the test.
NO_SERVER = pytest.mark.timeout(60)


def _make(out: Path, *args: str) -> Result:
    return runner.invoke(app, ["tls", "make", "--out", str(out), *args])


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _verified(folder: Path, subject: verification.Subject) -> list[x509.Certificate]:
    """The chain from folder's server certificate to its authority, as a TLS client checks
    it for ``subject`` (raises VerificationError when it does not hold)."""
    store = verification.Store([_cert(folder / "ca.pem")])
    verifier = (verification.PolicyBuilder().store(store).time(datetime.now(UTC))
                .build_server_verifier(subject))
    return verifier.verify(_cert(folder / "server.pem"), [])


def test_tls_make_writes_a_chain_a_client_verifies_for_each_name(tmp_path: Path) -> None:
    result = _make(tmp_path, "--host", "Sitewatch.LAN", "--host", "localhost",
                   "--ip", "192.168.1.20", "--ip", "fd00::20")
    assert result.exit_code == 0, result.output
    for subject in (x509.DNSName("sitewatch.lan"), x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("192.168.1.20")),
                    x509.IPAddress(ipaddress.ip_address("fd00::20"))):
        chain = _verified(tmp_path, subject)
        assert chain[-1] == _cert(tmp_path / "ca.pem")
    with pytest.raises(verification.VerificationError):
        _verified(tmp_path, x509.DNSName("other.lan"))

    server, ca = _cert(tmp_path / "server.pem"), _cert(tmp_path / "ca.pem")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["sitewatch.lan", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.168.1.20"), ipaddress.ip_address("fd00::20")]
    # iOS refuses server certificates valid for longer than 825 days.
    assert server.not_valid_after_utc - server.not_valid_before_utc <= timedelta(days=825)
    assert server.not_valid_before_utc <= datetime.now(UTC)
    assert server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_tls_make_prints_the_serve_command_and_the_phone_steps_chinese_first(
        tmp_path: Path) -> None:
    result = _make(tmp_path, "--host", "sitewatch.lan")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert (f"sitewatch serve --host 0.0.0.0 --port 8443 --tls-cert {tmp_path / 'server.pem'}"
            f" --tls-key {tmp_path / 'server-key.pem'}") in out
    assert "SITEWATCH_PUBLIC_URL=https://sitewatch.lan:8443" in out
    android_zh = out.index("设置 → 安全 → 加密与凭据 → 安装证书 → CA 证书")
    ios_zh = out.index("设置 → 通用 → 关于本机 → 证书信任设置")
    android_en = out.index("Settings → Security → Encryption & credentials")
    ios_en = out.index("Certificate Trust Settings")
    assert max(android_zh, ios_zh) < min(android_en, ios_en)
    # The fingerprint printed is the authority's, for checking on the phone.
    fingerprint = _cert(tmp_path / "ca.pem").fingerprint(hashes.SHA256())
    assert fingerprint.hex(":").upper() in out


def test_a_second_run_reuses_the_authority_so_phones_keep_trusting(tmp_path: Path) -> None:
    assert _make(tmp_path, "--host", "sitewatch.lan").exit_code == 0
    ca, ca_key = (tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca-key.pem").read_bytes()
    first_server = (tmp_path / "server.pem").read_bytes()

    again = _make(tmp_path, "--ip", "10.1.2.3")
    assert again.exit_code == 0, again.output
    assert "reused the certificate authority" in again.output
    assert (tmp_path / "ca.pem").read_bytes() == ca
    assert (tmp_path / "ca-key.pem").read_bytes() == ca_key
    assert (tmp_path / "server.pem").read_bytes() != first_server
    _verified(tmp_path, x509.IPAddress(ipaddress.ip_address("10.1.2.3")))


def test_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    # A key file left from before with a wider mode is narrowed too.
    (tmp_path / "server-key.pem").write_text("old")
    (tmp_path / "server-key.pem").chmod(0o644)
    assert _make(tmp_path, "--host", "sitewatch.lan").exit_code == 0
    for name in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "ca.pem").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one --host or --ip"),
        (["--host", "my laptop"], "is not a host name"),
        (["--host", "-bad.lan"], "is not a host name"),
        (["--ip", "192.168.1.300"], "is not an IP address"),
    ],
)
def test_tls_make_refuses_bad_names_in_one_line(tmp_path: Path, args: list[str],
                                                message: str) -> None:
    result = _make(tmp_path / "tls", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "tls" / "ca-key.pem").exists()


def test_half_an_authority_is_refused_not_replaced(tmp_path: Path) -> None:
    assert _make(tmp_path, "--host", "sitewatch.lan").exit_code == 0
    ca = (tmp_path / "ca.pem").read_bytes()
    (tmp_path / "ca-key.pem").unlink()
    result = _make(tmp_path, "--host", "sitewatch.lan")
    assert result.exit_code == 1
    assert "ca-key.pem is missing" in result.output
    assert (tmp_path / "ca.pem").read_bytes() == ca


@NO_SERVER
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--tls-cert", "server.pem"], {}, "--tls-cert needs --tls-key too"),
        (["--tls-key", "server-key.pem"], {}, "--tls-key needs --tls-cert too"),
        ([], {"SITEWATCH_TLS_CERT": "server.pem"}, "--tls-cert needs --tls-key too"),
    ],
)
def test_serve_with_half_a_pair_is_a_usage_error(tmp_path: Path, args: list[str],
                                                 env: dict[str, str], message: str) -> None:
    result = runner.invoke(app, ["serve", "--no-worker", "--port", "1", *args],
                           env={"SITEWATCH_TLS_CERT": "", "SITEWATCH_TLS_KEY": "", **env})
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@NO_SERVER
def test_serve_refuses_a_pair_it_cannot_use_before_serving(tmp_path: Path) -> None:
    assert _make(tmp_path, "--host", "sitewatch.lan").exit_code == 0
    cases = {("server.pem", "ca-key.pem"): "does not belong to the certificate",
             ("server.pem", "missing.pem"): "missing.pem: no such file",
             ("server-key.pem", "server-key.pem"): "not a PEM certificate"}
    for (cert, key), message in cases.items():
        result = runner.invoke(app, ["serve", "--no-worker", "--port", "1",
                                     "--tls-cert", str(tmp_path / cert),
                                     "--tls-key", str(tmp_path / key)])
        assert result.exit_code == 1, (cert, key)
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert "Traceback" not in result.output


def test_links_name_https_when_serve_speaks_it(dsn: str, tmp_path: Path) -> None:
    assert Settings(host="0.0.0.0", port=8443, public_url="",  # noqa: S104 -- a bind address serve may be given, compared here
                    tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"
                    ).site_url == "https://127.0.0.1:8443"
    assert Settings(host="::1", port=8443, public_url="", tls_cert=None, tls_key=None
                    ).site_url == "http://[::1]:8443"
    result = runner.invoke(app, ["token", "create", "--role", "admin", "--name", "管理员",
                                 "--link"],
                           env={"DATABASE_URL": dsn, "SITEWATCH_PUBLIC_URL": "",
                                "SITEWATCH_HOST": "127.0.0.1", "SITEWATCH_PORT": "8443",
                                "SITEWATCH_TLS_CERT": str(tmp_path / "c.pem"),
                                "SITEWATCH_TLS_KEY": str(tmp_path / "k.pem")})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-2].startswith("https://127.0.0.1:8443/report#")


def _log_line(log: Path, pattern: str, seconds: float = 20.0) -> str:
    """The first line of ``log`` matching ``pattern``, waiting for it to be written."""
    deadline = time.monotonic() + seconds
    while True:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found or time.monotonic() > deadline:
            assert found, log.read_text(errors="replace")
            return found.group(0)
        time.sleep(0.2)


@pytest.mark.slow
def test_serve_answers_https_verified_by_the_local_authority_and_refuses_plain_http(
        dsn: str, tmp_path: Path, serving: Serving) -> None:
    tls = tmp_path / "tls"
    assert _make(tls, "--host", "localhost", "--ip", "127.0.0.1").exit_code == 0
    env = {"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(tmp_path), "SITEWATCH_PUBLIC_URL": "",
           "SITEWATCH_TLS_CERT": "", "SITEWATCH_TLS_KEY": ""}
    # With its worker child, which must name the same https address in its links.
    args = ["api.cli.main", "serve", "--announce", "--host", "127.0.0.1",
            "--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server-key.pem")]
    with serving(args, env, tmp_path, ca=tls / "ca.pem") as (base, _):
        assert base.startswith("https://")
        trusted = ssl.create_default_context(cafile=tls / "ca.pem")
        answer = httpx.get(f"{base}/health", verify=trusted)
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
        # Trusted because of the local authority, not because anything is accepted.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/health")
        with pytest.raises(httpx.TransportError):
            httpx.get(base.replace("https://", "http://") + "/health", timeout=5)
        log = tmp_path / "server.log"
        assert f"Map:         {base}/maps/overview" in log.read_text()
        _log_line(log, re.escape(f"links in notifications point at {base}"))
