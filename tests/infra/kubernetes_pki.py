"""The per-session certificates of the test bed's Kubernetes control plane: one CA, the API
server's serving certificate, a client certificate per component, and the service-account
signing key. Client identities follow Kubernetes' own conventions (CN = user, O = groups), so
RBAC sees the same users as on a kubeadm cluster."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=2)


@dataclass(frozen=True)
class KeyPair:
    certificate: Path
    key: Path


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    return x509.Name([*parts, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.chmod(0o600)


class ClusterPki:
    """Writes everything into `directory` on construction; paths are attributes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self._not_before = now - datetime.timedelta(minutes=5)
        self._ca = (
            x509.CertificateBuilder()
            .subject_name(_name("heliostat-testbed-ca"))
            .issuer_name(_name("heliostat-testbed-ca"))
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca = directory / "ca.crt"
        self.ca.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))
        self.apiserver = self._issue(
            "apiserver", "kube-apiserver", server_names=(
                "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local"),
            server_ips=("127.0.0.1", "10.96.0.1"))
        self.admin = self._issue("admin", "kubernetes-admin", groups=("system:masters",))
        self.controller_manager = self._issue(
            "controller-manager", "system:kube-controller-manager")
        self.scheduler = self._issue("scheduler", "system:kube-scheduler")
        self.kwok = self._issue("kwok", "kwok-controller", groups=("system:masters",))
        self.service_account_key = directory / "service-account.key"
        self.service_account_public_key = directory / "service-account.pub"
        signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(signing, self.service_account_key)
        self.service_account_public_key.write_bytes(signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def issue_client(self, name: str, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        """A client certificate for another identity (e.g. a user with limited RBAC)."""
        return self._issue(name, user, groups=groups)

    def _issue(
        self,
        name: str,
        common_name: str,
        groups: tuple[str, ...] = (),
        server_names: tuple[str, ...] = (),
        server_ips: tuple[str, ...] = (),
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, groups))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._ca.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in server_names]
                + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]),
                critical=False)
        certificate = builder.sign(self._ca_key, hashes.SHA256())
        pair = KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        pair.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair
