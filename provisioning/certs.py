"""An installation's own certificate authority: the broker's and the API's server
certificates and, optionally, a client certificate per device, bridge or gateway.

Everything is made with the ``cryptography`` package; keys are ECDSA P-256 (every MQTT
stack in use, Mosquitto, paho, ESP-IDF's mbedTLS, Zigbee2MQTT's Node, speaks it) and
written with mode 0600. A folder holds one CA::

    folder/ca.pem   ca.key                 the CA (10 years); ca.pem goes to every client
    folder/<name>.pem  <name>.key          issued certificates (server: 2 years, client: 2 years)

A municipality with its own PKI does not need this: give Mosquitto and the clients that
CA's files instead (``docs/operations.md``, *TLS*).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.errors import ProvisioningError

__all__ = ["CA_DAYS", "LEAF_DAYS", "CertificateAuthority", "Issued"]

CA_DAYS = 3650
LEAF_DAYS = 730
ORGANISATION = "Nattero"


@dataclass(frozen=True, slots=True)
class Issued:
    """The files of an issued certificate."""

    cert: Path
    key: Path
    ca: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _file_name(name: str) -> str:
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise ProvisioningError(f"'{name}' cannot be a certificate's file name; use letters, "
                                "digits, '-', '_' and '.'")
    return name


class CertificateAuthority:
    """The CA kept in ``folder``: ``create`` makes it once, ``open`` reads it."""

    def __init__(self, folder: Path, cert: x509.Certificate,
                 key: ec.EllipticCurvePrivateKey) -> None:
        self.folder = folder
        self.cert = cert
        self._key = key

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @classmethod
    def open(cls, folder: Path) -> CertificateAuthority:
        try:
            cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
            key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
        except FileNotFoundError as err:
            raise ProvisioningError(f"no certificate authority in {folder}; make one with "
                                    f"`nattero certs ca --dir {folder}`") from err
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ProvisioningError(f"{folder / 'ca.key'} is not an EC key made by Nattero; "
                                    "use a folder of its own for Nattero's CA")
        return cls(folder, cert, key)

    @classmethod
    def create(cls, folder: Path, name: str) -> CertificateAuthority:
        """A new CA named ``name`` (the installation or site); refuses to replace one, as
        every certificate it issued would stop working."""
        if (folder / "ca.key").exists():
            raise ProvisioningError(f"{folder} already holds a certificate authority; keep "
                                    "it (its clients trust it) or choose another folder")
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(folder / "ca.key", _key_pem(key), 0o600)
        _write(folder / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cls(folder, cert, key)

    @classmethod
    def open_or_create(cls, folder: Path, name: str) -> CertificateAuthority:
        if (folder / "ca.key").exists():
            return cls.open(folder)
        return cls.create(folder, name)

    def issue_server(self, file_name: str, hosts: list[str], *,
                     days: int = LEAF_DAYS) -> Issued:
        """A server certificate (the broker's, the API's) for ``hosts``: DNS names and IP
        addresses, the first also its common name."""
        if not hosts:
            raise ProvisioningError("a server certificate needs at least one host name or "
                                    "IP address that clients connect to (--host)")
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._issue(file_name, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, names, days)

    def issue_client(self, file_name: str, identity: str, *,
                     days: int = LEAF_DAYS) -> Issued:
        """A client certificate whose common name is ``identity`` (the device's broker
        username, e.g. ``solsikken.hall-3``)."""
        return self._issue(file_name, identity, ExtendedKeyUsageOID.CLIENT_AUTH, [], days)

    def _issue(self, file_name: str, common_name: str, usage: x509.ObjectIdentifier,
               names: list[x509.GeneralName], days: int) -> Issued:
        base = _file_name(file_name)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=days), self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, key_cert_sign=False,
                crl_sign=False, content_commitment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_path, key_path = self.folder / f"{base}.pem", self.folder / f"{base}.key"
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return Issued(cert=cert_path, key=key_path, ca=self.ca_file)
