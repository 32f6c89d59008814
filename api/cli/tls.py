"""``sitewatch tls make``: a local certificate authority and a server certificate, for a trial
of the field pages over HTTPS on an office network without a domain (phones give a page their
position only over HTTPS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.session import err, reported_errors
from api.services import certificates
from layers.db.settings import Settings

tls_app = typer.Typer(help="HTTPS for a trial without a domain: a local certificate "
                           "authority and server certificates.", no_args_is_help=True)

# How to make a phone trust ca.pem, Chinese first (menu names of stock Android and iOS).
PHONE_STEPS = """\
把 {ca} 发到每部手机上（邮件附件、隔空投送或数据线；iPhone 上在微信里打开的文件装不上），然后：
  Android：设置 → 安全 → 加密与凭据 → 安装证书 → CA 证书，选中 ca.pem
           （各品牌菜单名略有不同，可在设置里搜索“CA 证书”）。
  iOS：    用“文件”或“邮件”打开 ca.pem → 设置 → 已下载描述文件 → 安装；
           再到 设置 → 通用 → 关于本机 → 证书信任设置，打开 sitewatch local CA 的“完全信任”。
  核对指纹 SHA-256：{fingerprint}
Send {ca} to each phone (mail attachment, AirDrop or cable; on an iPhone a file opened
inside WeChat does not install), then:
  Android: Settings → Security → Encryption & credentials → Install a certificate →
           CA certificate, pick ca.pem (menu names vary by maker: search "CA certificate").
  iOS:     open ca.pem from Files or Mail → Settings → Profile Downloaded → Install; then
           Settings → General → About → Certificate Trust Settings: turn on full trust for
           sitewatch local CA.
  Check the SHA-256 fingerprint shown on the phone against the one above."""


@tls_app.command("make")
def tls_make(
    host: Annotated[list[str] | None, typer.Option(
        "--host", help="A host name the phones use (repeat for several).")] = None,
    ip: Annotated[list[str] | None, typer.Option(
        "--ip", help="An IP address the phones use (repeat for several).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the files (default: SITEWATCH_DATA_DIR/tls).")] = None,
) -> None:
    """Make a server certificate for the given names and addresses, signed by a local
    certificate authority (made the first time, then reused so phones keep trusting it), and
    print how to serve it and how phones trust the authority."""
    # Absolute, so that the serve command printed below works from any folder.
    folder = (out or Settings().data_dir / "tls").absolute()
    with reported_errors():
        issued = certificates.make(folder, host or [], ip or [])
    if issued.ca_reused:
        err.print(f"reused the certificate authority in {folder}: phones that trust it need "
                  "nothing new")
    else:
        err.print(f"new certificate authority: {issued.ca_cert} (its key {issued.ca_key} "
                  "signs for any name: keep it private, never copy it to a phone)")
    err.print(f"server certificate {issued.cert} and key {issued.key}, valid until "
              f"{issued.not_after:%Y-%m-%d}")
    first = host[0] if host else (ip or [""])[0]
    shown = f"[{first}]" if ":" in first else first
    print("\n服务 / serve:\n"
          f"  SITEWATCH_PUBLIC_URL=https://{shown}:8443 sitewatch serve --host 0.0.0.0 "
          f"--port 8443 --tls-cert {issued.cert} --tls-key {issued.key}\n")
    print("手机信任证书 / make the phones trust the authority:")
    print(PHONE_STEPS.format(ca=issued.ca_cert, fingerprint=issued.ca_fingerprint))
