"""A client of the OCI distribution API (a Docker registry, Harbor, Nexus, Zot...): what
pushing the bundle's images needs and no more — whether a blob or manifest is there,
uploading a blob (or mounting it from another repository of the same registry), putting
a manifest.

Plain HTTP is used for a registry on this machine (localhost, 127.0.0.0/8), as Docker
does; HTTPS with the system's certificate authorities everywhere else. Anonymous access
only so far: a registry that asks for credentials is reported as such.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import IO

TIMEOUT = 30  # seconds per request; a blob upload streams within it chunk by chunk
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


class RegistryError(Exception):
    """The registry cannot be reached, or refused a request; the message says which."""


def registry_host(registry: str) -> str:
    """`host[:port]` of `images.registry` (which may carry a path prefix after it)."""
    return registry.split("/", 1)[0]


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


class Registry:
    def __init__(self, host: str, timeout: float = TIMEOUT) -> None:
        self.host = host
        scheme = "http" if _is_loopback(host) else "https"
        self.base = f"{scheme}://{host}"
        self.timeout = timeout

    # -- requests --------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | IO[bytes] | None = None,
                 headers: dict[str, str] | None = None,
                 ok: Iterable[int] = (200,)) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        request = urllib.request.Request(url, data=body, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                status, answer_headers, data = answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, data = error.code, dict(error.headers), error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryError(f"the registry {self.host} cannot be reached at {self.base}: "
                                f"{reason}") from None
        if status == 401:
            raise RegistryError(f"the registry {self.host} asks for credentials "
                                f"({method} {urllib.parse.urlsplit(url).path}); heliostat "
                                "pushes anonymously so far: allow anonymous pushes to the "
                                "heliostat/ repositories, or push the images with another "
                                "client")
        if status not in ok:
            raise RegistryError(f"the registry {self.host} answered {status} to {method} "
                                f"{urllib.parse.urlsplit(url).path}: {_message(data)}")
        return status, answer_headers, data

    def ping(self) -> str:
        """The API version the registry says it speaks (`registry/2.0`)."""
        _, headers, _ = self._request("GET", "/v2/")
        return headers.get("Docker-Distribution-API-Version", "registry/2.0")

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest of a manifest by tag or digest, or None when it is not there."""
        status, headers, _ = self._request(
            "HEAD", f"/v2/{repository}/manifests/{reference}",
            headers={"Accept": OCI_MANIFEST}, ok=(200, 404))
        return headers.get("Docker-Content-Digest") if status == 200 else None

    def has_blob(self, repository: str, digest: str) -> bool:
        status, _, _ = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", ok=(200, 404))
        return status == 200

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Link a blob another repository of this registry holds; False when the registry
        would rather have it uploaded (it then opened an upload, which is abandoned)."""
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        status, _, _ = self._request("POST", f"/v2/{repository}/blobs/uploads/?{query}",
                                     headers={"Content-Length": "0"}, ok=(201, 202))
        return status == 201

    def upload_blob(self, repository: str, digest: str, size: int, data: IO[bytes]) -> None:
        """One monolithic upload of `size` bytes read from `data`; the registry checks the
        digest before it keeps the blob."""
        _, headers, _ = self._request("POST", f"/v2/{repository}/blobs/uploads/",
                                      headers={"Content-Length": "0"}, ok=(202,))
        location = urllib.parse.urljoin(self.base + "/", headers["Location"])
        separator = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}",
                      body=data, ok=(201,),
                      headers={"Content-Type": "application/octet-stream",
                               "Content-Length": str(size)})

    def put_manifest(self, repository: str, tag: str, manifest: bytes) -> str:
        """Store `manifest` under `tag`; the digest the registry gives it."""
        _, headers, _ = self._request("PUT", f"/v2/{repository}/manifests/{tag}",
                                      body=manifest, ok=(201,),
                                      headers={"Content-Type": OCI_MANIFEST})
        return headers.get("Docker-Content-Digest", "")


def _message(data: bytes) -> str:
    """The registry's own error text (`{"errors": [{"code", "message"}]}`), else its body."""
    try:
        errors = json.loads(data)["errors"]
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, KeyError, TypeError):
        return data[:200].decode("utf-8", "replace") or "no detail"
