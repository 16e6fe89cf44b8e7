"""The `heliostat` command line.

Commands import what they need when they run, so that `heliostat --help` stays fast.
Bad input exits 2 with `file:line: key: message` lines; a failure exits 1.
"""

from __future__ import annotations

import functools
import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from heliostat import __version__

PROFILES = ("compose", "kubernetes", "marathon")
EXIT_FAILURE, EXIT_INVALID = 1, 2
GC_THRESHOLD = 100_000  # allocations between two young-generation collections (700 by default)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn heliostat's own exceptions into messages and exit codes, never tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from heliostat.model import CatalogError
        from heliostat.problems import InvalidInput

        try:
            return command(*args, **kwargs)
        except InvalidInput as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            sys.exit(EXIT_INVALID)
        except CatalogError as exc:
            click.echo(f"error: {exc}\n(this is a bug in heliostat's module catalog or "
                       "profiles, not in your configuration)", err=True)
            sys.exit(EXIT_FAILURE)

    return wrapper


config_option = click.option(
    "-f", "--file", "config_file", type=click.Path(dir_okay=False, path_type=Path),
    help="platform.yaml to use ('-' reads standard input). Default: the embedded default.")
output_option = click.option(
    "--output", "output_format", type=click.Choice(["text", "json"]), default="text",
    show_default=True, help="Output format.")


def _load(config_file: Path | None) -> Any:
    from heliostat.config import config_from_document, load_config
    from heliostat.problems import InvalidInput
    from heliostat.yaml_source import MAX_FILE_BYTES, load_yaml_text

    if config_file is not None and str(config_file) == "-":
        raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)  # never more, whatever is piped
        if len(raw) > MAX_FILE_BYTES:
            raise InvalidInput.single("<stdin>", f"is larger than {MAX_FILE_BYTES // 1024} "
                                                 "KiB: not a platform description")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput.single("<stdin>", f"is not UTF-8 text ({exc.reason})") from None
        return config_from_document(load_yaml_text(text, "<stdin>"))
    return load_config(config_file)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="heliostat")
def cli() -> None:
    """Install and run a self-hosted data platform from one platform.yaml."""


@cli.command()
@config_option
@output_option
@reports_errors
def validate(config_file: Path | None, output_format: str) -> None:
    """Check platform.yaml against its schema and the module catalog."""
    from heliostat.model import build_model

    config = _load(config_file)
    model = build_model(config)
    summary = {"valid": True, "file": config.document.file, "name": config.name,
               "profile": config.profile, "modules": config.enabled_modules(),
               "services": [s.name for s in model.services]}
    if output_format == "json":
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"{summary['file']}: valid — platform {config.name!r} on {config.profile}, "
                   f"modules: {', '.join(summary['modules'])}; "
                   f"{len(summary['services'])} services")


@cli.command()
@config_option
@click.option("--profile", type=click.Choice(PROFILES),
              help="Target to render for. Default: the file's `profile`.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory to write the manifests to.")
@click.option("--bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Kubernetes: pin the images to this bundle's digests in `images.registry`, "
                   "as `install --bundle` does.")
@output_option
@reports_errors
def render(config_file: Path | None, profile: str | None, output_dir: Path,
           bundle: Path | None, output_format: str) -> None:
    """Write the target's manifests for platform.yaml, without touching the target."""
    from heliostat.model import build_model, pin_images
    from heliostat.render import render_manifests, write_manifests

    config = _load(config_file)
    if profile:
        config = config.with_profile(profile)
    model = build_model(config)
    if bundle is not None and config.profile == "kubernetes":
        model = pin_images(model, _bundle_digests(bundle, model))
    manifests = render_manifests(model)
    try:
        paths = write_manifests(manifests, output_dir)
    except OSError as exc:
        click.echo(f"error: cannot write to {output_dir}: {exc.strerror}", err=True)
        sys.exit(EXIT_FAILURE)
    if output_format == "json":
        click.echo(json.dumps({"profile": config.profile, "files": [str(p) for p in paths]},
                              indent=2))
    else:
        click.echo(f"rendered {len(paths)} file(s) for {config.profile} into {output_dir}")


def _bundle_digests(bundle: Path, model: Any) -> dict[str, str]:
    from heliostat.bundle import BundleError
    from heliostat.bundle.registry_push import platform_digests

    try:
        return platform_digests(bundle, model)
    except BundleError as exc:
        click.echo(f"error: {bundle}: {exc}", err=True)
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.option("--markdown", is_flag=True, help="Print the reference as Markdown instead.")
def schema(markdown: bool) -> None:
    """Print the JSON Schema of platform.yaml (all modules included)."""
    from heliostat.schema import markdown_reference, platform_schema

    click.echo(markdown_reference() if markdown else json.dumps(platform_schema(), indent=2),
               nl=not markdown)


@cli.command()
@output_option
def version(output_format: str) -> None:
    """Print heliostat's version and the components it carries (each one is loaded)."""
    import platform
    from importlib import import_module, metadata

    # Importing proves the compiled ones (SSH crypto, libyaml, rpds) load on this host.
    modules = {"click": "click", "PyYAML": "yaml", "jsonschema": "jsonschema",
               "Jinja2": "jinja2", "paramiko": "paramiko", "cryptography": "cryptography",
               "PyNaCl": "nacl.bindings", "bcrypt": "bcrypt", "rpds-py": "rpds",
               "zstandard": "zstandard", "docker": "docker"}
    components = {}
    for distribution, module in modules.items():
        import_module(module)
        components[distribution] = metadata.version(distribution)
    info = {"heliostat": __version__,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "components": components}
    if output_format == "json":
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(f"heliostat {__version__} (Python {info['python']})")
        for name, value in components.items():
            click.echo(f"  {name} {value}")


def _register_groups() -> None:
    from heliostat.cli_apply import register
    from heliostat.cli_bundle import bundle

    cli.add_command(bundle)
    register(cli)


_register_groups()


def main() -> None:
    # A command is short-lived and allocates most of what it keeps while it starts (the
    # target's client library, the parsed config and catalog): collecting cycles less
    # often, and not at all on the way out, saves a tenth of a second or more of every
    # command. Reference counting frees memory as ever.
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        cli(prog_name="heliostat")
    finally:
        gc.freeze()
