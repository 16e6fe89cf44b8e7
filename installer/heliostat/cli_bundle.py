"""`heliostat bundle build|verify|inspect|load`: the air-gapped bundle."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from heliostat import __version__

EXIT_FAILURE = 1

output_option = click.option("--output", "output_format", type=click.Choice(["text", "json"]),
                             default="text", show_default=True, help="Output format.")
key_option = click.option("--key", "public_key", type=click.Path(dir_okay=False, path_type=Path),
                          help="ed25519 public key (PEM or OpenSSH) the bundle must be "
                               "signed with.")
bundle_argument = click.argument("bundle_file", metavar="FILE",
                                 type=click.Path(dir_okay=False, path_type=Path))


def reports_bundle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from heliostat.bundle.layout import BundleError
        from heliostat.oci_registry import RegistryError

        try:
            return command(*args, **kwargs)
        except (BundleError, RegistryError) as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_FAILURE)
        except OSError as error:  # e.g. an output directory that is full or not writable
            where = f" {error.filename}" if error.filename else ""
            click.echo(f"error:{where}: {error.strerror or error}", err=True)
            sys.exit(EXIT_FAILURE)

    return wrapper


def _engine() -> Any:
    import docker
    import docker.errors

    from heliostat.bundle.layout import BundleError

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as error:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise BundleError(f"cannot reach the Docker engine at {where} ({error}); is dockerd "
                          "running, and may this user use its socket?") from None
    return client


def _say(message: str) -> None:
    click.echo(message, err=True)


def _emit(result: dict[str, Any], output_format: str, text: str) -> None:
    click.echo(json.dumps(result, indent=2) if output_format == "json" else text)


@click.group()
def bundle() -> None:
    """Build, check and load the air-gapped bundle (installer + every image)."""


@bundle.command()
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(f"dist/heliostat-{__version__}.bundle"), show_default=True)
@click.option("--installer", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("dist/heliostat.pyz"), show_default=True,
              help="The zipapp to carry.")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path),
              help="ed25519 private key (PEM or OpenSSH, unencrypted) to sign with.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
              / "heliostat" / "bundle-parts", show_default=True,
              help="Where compressed layers are kept between builds.")
@click.option("--compression-level", type=click.IntRange(1, 22), default=19,
              show_default=True, help="zstd level.")
@output_option
@reports_bundle_errors
def build(out: Path, installer: Path, sign_key: Path | None, cache_dir: Path,
          compression_level: int, output_format: str) -> None:
    """Pack the installer and every image of the platform from the local engine."""
    from heliostat.bundle.engine_export import PartsCache
    from heliostat.bundle.writer import build_bundle

    result = build_bundle(_engine(), out, installer, PartsCache(cache_dir), sign_key,
                          compression_level, _say)
    _emit(result, output_format,
          f"bundle {result['file']}: {len(result['images'])} images, {result['layers']} layers, "
          f"{result['bytes'] / 1e6:.1f} MB{', signed' if result['signed'] else ''} "
          f"({result['seconds']}s)")


@bundle.command()
@bundle_argument
@key_option
@click.option("--version", "pinned_version", help="Refuse a bundle of another version.")
@click.option("-f", "--file", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also check the bundle has every image this platform.yaml needs.")
@output_option
@reports_bundle_errors
def verify(bundle_file: Path, public_key: Path | None, pinned_version: str | None,
           config_file: Path | None, output_format: str) -> None:
    """Check every byte of a bundle (and its signature, with --key)."""
    from heliostat.bundle.completeness import check_complete
    from heliostat.bundle.reader import verify as verify_bundle

    result = verify_bundle(bundle_file, public_key, pinned_version)
    if config_file is not None:
        check_complete(bundle_file, config_file)
    _emit(result, output_format,
          f"{bundle_file}: valid — heliostat {result['version']}, {result['images']} images, "
          f"{result['members']} members, signature: {result['signature']}; "
          f"{result['bytes'] / 1e6:.1f} MB at {result['mb_per_second']} MB/s")


@bundle.command()
@bundle_argument
@output_option
@reports_bundle_errors
def inspect(bundle_file: Path, output_format: str) -> None:
    """List a bundle's images, sizes and SBOM summary (verify checks the bytes)."""
    from heliostat.bundle.inspection import inspect_bundle

    result = inspect_bundle(bundle_file)
    lines = [f"{bundle_file}: heliostat {result['version']}, "
             f"{result['bytes'] / 1e6:.1f} MB, {'signed' if result['signed'] else 'unsigned'}",
             f"{'IMAGE':<18} {'SIZE':>9} {'STORED':>9}  SBOM"]
    for image in result["images"]:
        summary = ", ".join(f"{n} {k}" for k, n in sorted(image["sbom"].items()))
        lines.append(f"{image['name']:<18} {image['size'] / 1e6:>7.1f}MB "
                     f"{image['stored_bytes_new'] / 1e6:>7.1f}MB  {summary}")
    _emit(result, output_format, "\n".join(lines))


@bundle.command()
@bundle_argument
@key_option
@output_option
@reports_bundle_errors
def load(bundle_file: Path, public_key: Path | None, output_format: str) -> None:
    """Load the bundle's images into the local Docker engine (no network needed)."""
    from heliostat.bundle.loader import load_into_engine

    result = load_into_engine(bundle_file, _engine(), public_key, _progress_printer())
    _emit(result, output_format,
          f"loaded {len(result['loaded'])} image(s), {len(result['already_present'])} already "
          f"present ({result['seconds']}s)")


@bundle.command()
@bundle_argument
@click.argument("registry")
@key_option
@output_option
@reports_bundle_errors
def push(bundle_file: Path, registry: str, public_key: Path | None, output_format: str) -> None:
    """Push every image of the bundle to REGISTRY (`host[:port][/prefix]`, as
    `images.registry`), straight from the file: no Docker engine needed."""
    from heliostat.bundle.reader import BundleReader
    from heliostat.bundle.registry_push import push_images

    with BundleReader(bundle_file, public_key) as reader:
        names = [image.name for image in reader.manifest.images]
    result = push_images(bundle_file, registry, names,
                         lambda name, what: _say(f"  {name:<18} {what}"), public_key)
    _emit(result, output_format,
          f"pushed {len(result['pushed'])} image(s) to {registry} "
          f"({result['bytes_sent'] / 1e6:.1f} MB sent), {len(result['already_present'])} "
          f"already there ({result['seconds']}s)")


def _progress_printer() -> Callable[[str, int, int], None]:
    """One line per image as it starts and as it completes (a redrawn bar on a TTY)."""
    tty = sys.stderr.isatty()
    finished: set[str] = set()

    def show(name: str, done: int, total: int) -> None:
        if name in finished:
            return
        if done >= total:
            finished.add(name)
            click.echo(f"\r  {name:<18} {total / 1e6:8.1f} MB  loaded", err=True)
        elif tty:
            width = 30
            filled = int(width * done / total) if total else width
            click.echo(f"\r  {name:<18} [{'#' * filled}{'.' * (width - filled)}] "
                       f"{done / 1e6:.0f}/{total / 1e6:.0f} MB", err=True, nl=False)

    return show
