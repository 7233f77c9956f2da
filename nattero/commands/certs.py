"""``nattero certs``: the installation's own CA and the certificates it issues (MQTT over
TLS, HTTPS), made with the ``cryptography`` package (``provisioning.certs``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nattero.commands.output import JsonOption, print_record, verb_group

__all__ = ["certs_app"]

certs_app = verb_group("Certificates: the site CA, server (broker, API) and client (device) "
                       "certificates.")

DirOption = Annotated[Path, typer.Option(
    "--dir", help="the CA's folder (keep it private: it holds the CA's key)")]


@certs_app.command("ca")
def ca(folder: DirOption,
       name: Annotated[str, typer.Option(help="whose CA: the installation or site")] = "Nattero",
       as_json: JsonOption = False) -> None:
    """Make a new certificate authority in --dir (refuses to replace one)."""
    from provisioning.certs import CertificateAuthority

    made = CertificateAuthority.create(folder, name)
    print_record({"ca": str(made.ca_file), "key": str(folder / "ca.key")}, as_json)


@certs_app.command("server")
def server(folder: DirOption,
           host: Annotated[list[str], typer.Option(
               "--host", help="a DNS name or IP address clients use (repeat for more)")],
           name: Annotated[str, typer.Option(help="file name, without .pem")] = "server",
           as_json: JsonOption = False) -> None:
    """Issue a server certificate (Mosquitto's, or uvicorn's for HTTPS)."""
    from provisioning.certs import CertificateAuthority

    issued = CertificateAuthority.open(folder).issue_server(name, host)
    print_record({"cert": str(issued.cert), "key": str(issued.key), "ca": str(issued.ca)},
                 as_json)


@certs_app.command("client")
def client(folder: DirOption,
           identity: Annotated[str, typer.Argument(
               help="the client's broker username, e.g. solsikken.hall-3 or nattero-gateway")],
           name: Annotated[str | None, typer.Option(
               help="file name, without .pem (default: the identity)")] = None,
           as_json: JsonOption = False) -> None:
    """Issue a client certificate for a device, bridge or the gateway (for a broker that
    requires client certificates)."""
    from provisioning.certs import CertificateAuthority

    issued = CertificateAuthority.open(folder).issue_client(name or identity, identity)
    print_record({"cert": str(issued.cert), "key": str(issued.key), "ca": str(issued.ca)},
                 as_json)
