"""heliostat's Compose apply against `docker compose` on the same compose file. Prints JSON.

    PYTHONPATH=installer:. <venv>/bin/python bench/compose/run.py [--rounds 3] [--work DIR]

A small platform (the core module with its own postgres and redis: postgres-0, redis-0,
registry-0 and the gateway; no Commander, Pilot, clickstream or monitoring) is rendered
with `heliostat render --profile compose` (and once more for the upgrade), which writes
exactly the compose.yaml `heliostat install` applies (the run checks this against the
ledger). Both tools then work on that one file, in alternating rounds (which side goes
first alternates too), each round from nothing: `heliostat uninstall --purge --yes` and
`docker compose down -v` between them. Images are the local `heliostat/*:0.1.0`
(`make images`); nothing is pulled.

Each figure is the wall time of one command, median / min / max over the rounds, and
`ratio` = heliostat's median / the reference's median (below 1: heliostat is faster):

- cold_install: `heliostat install` until every health gate passed, against
  `docker compose up -d --wait` until Docker reports every service healthy.
- cold_install_until_docker_healthy: `heliostat install`, then until Docker itself reports
  every container healthy (heliostat runs each health check itself once a second, Docker
  first runs it one interval, 10 s, after the start: this is the like-for-like figure).
- reapply_unchanged: `heliostat upgrade` with the same platform.yaml (must answer
  "unchanged" and touch no container), against `docker compose up -d --wait` again.
- diff_unchanged / diff_one_change: `heliostat diff` (no change; one change) against
  `docker compose --dry-run up -d`, which also compares the file with what runs;
  `reference_parse_only` is `docker compose config -q` (parses, compares nothing).
  Compose 2.32's dry run of the change plans the gateway's recreate and then exits 1
  (it cannot copy `configs: content` into a container it did not make); the checks
  record its exit code and what it printed.
- upgrade_one_service (and _until_docker_healthy): the gateway moved to another image
  reference (`images.services.gateway`, a local tag of the same image; heliostat's core
  module has no per-service environment setting to change), `heliostat upgrade` against
  `docker compose up -d --wait` on the re-rendered file. Only the gateway must change.
- cleanup: `heliostat uninstall --purge --yes` against `docker compose down -v`.
- render_no_engine: `heliostat render` against `docker compose config -q`: the part of a
  diff that needs no engine (config, model and templates; Compose's parse of the file).
- cli_startup: `heliostat --version` against `docker compose version`: the fixed cost of
  a Python CLI, in every figure above.

Secrets: heliostat generates them into its state directory and the rendered file names
them as `secrets.<name>.file` there. The run installs once with heliostat (a warm-up,
not counted), keeps the per-user copies heliostat mounts into the containers (0600,
owned by the image's user: the images never run as root, and a root-owned 0600 file,
what `secrets/<name>` is, cannot be read by them under plain Compose), purges, and
before each Compose round puts those files at the paths the rendered file names.

Needs Docker Compose v2 (`up --wait`, `--dry-run`): `make testbed` builds it from the Go
module proxy into /usr/local/lib/docker/cli-plugins (tests/infra/steps/docker-compose.sh).
Debian's `apt-get install docker-compose` is Compose v1 (1.29), which has neither flag.
No test depends on it. Everything is named `bench-compose-<pid>-<start>`, never a
test's `hst-…`; leftovers of a killed run are removed by the next one.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from heliostat import __version__
from tests.infra.compose_platforms import PLATFORM_LABEL, free_port, remove_platform
from tests.infra.run_dir import process_token, token_alive

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "bench-compose-"
UPGRADED_IMAGE = "heliostat/gateway"  # tagged <name> for the one-service upgrade
HEALTH_DEADLINE = 300.0


class BenchError(RuntimeError):
    pass


def timed(command: list[str], env: dict[str, str] | None = None,
          cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=900)
    return time.monotonic() - started, done


def must(done: subprocess.CompletedProcess[str], *codes: int) -> subprocess.CompletedProcess[str]:
    if done.returncode not in (codes or (0,)):
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        raise BenchError(f"{' '.join(done.args)} exited {done.returncode}:\n{tail}")
    return done


def summary(samples: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(samples), 3), "min_s": round(min(samples), 3),
            "max_s": round(max(samples), 3), "samples_s": [round(s, 3) for s in samples]}


class Platform:
    """The platform's config files, rendered compose files and the commands on both sides."""

    def __init__(self, work: Path, name: str, client: docker.DockerClient) -> None:
        self.work, self.name, self.client = work, name, client
        self.state_dir = work / "state"
        self.port = free_port()
        self.upgraded_ref = f"{UPGRADED_IMAGE}:{name}"
        self.dry_run = True  # whether `docker compose --dry-run` exists
        self.config = self._write("platform.yaml", "")
        self.upgraded = self._write("upgraded.yaml",
                                    f', services: {{gateway: "{self.upgraded_ref}"}}')
        self.env = {**os.environ, "PYTHONPATH": str(ROOT / "installer")}
        self.compose_env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        self.compose_files = {"base": self.render(self.config, "rendered"),
                              "upgraded": self.render(self.upgraded, "rendered-upgraded")}

    def _write(self, file: str, images: str) -> Path:
        path = self.work / file
        path.write_text(textwrap.dedent(f"""\
            apiVersion: heliostat/v1
            name: {self.name}
            profile: compose
            target: {{compose: {{state_dir: {self.state_dir}}}}}
            gateway: {{http_port: {self.port}}}
            images: {{registry: ""{images}}}
            modules:
              clickstream: {{enabled: false}}
              pilot: {{enabled: false}}
              commander: {{enabled: false}}
              monitoring: {{enabled: false}}
            stores:
              postgres: {{mode: internal}}
              redis: {{mode: internal}}
              kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
            """))
        return path

    # heliostat
    def heliostat(self, *args: str, config: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "heliostat", *args, "-f", str(config or self.config),
                "--state-dir", str(self.state_dir)]

    def render(self, config: Path, directory: str) -> Path:
        out = self.work / directory
        must(subprocess.run([sys.executable, "-m", "heliostat", "render", "-f", str(config),
                             "--profile", "compose", "-o", str(out)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "installer")},
                            cwd=ROOT))
        return out / "compose.yaml"

    def run_heliostat(self, *args: str, config: Path | None = None,
                      codes: tuple[int, ...] = (0,)) -> tuple[float, Any]:
        seconds, done = timed(self.heliostat(*args, config=config), env=self.env)
        must(done, *codes)
        with contextlib.suppress(json.JSONDecodeError):
            return seconds, json.loads(done.stdout)
        return seconds, done

    # docker compose
    def compose(self, *args: str, file: str = "base") -> list[str]:
        return ["docker", "compose", "-f", str(self.compose_files[file]), *args]

    def run_compose(self, *args: str, file: str = "base",
                    codes: tuple[int, ...] = (0,)) -> tuple[float, Any]:
        seconds, done = timed(self.compose(*args, file=file), env=self.compose_env,
                              cwd=self.work)
        return seconds, must(done, *codes)

    def compose_secrets(self) -> dict[str, Path]:
        document = yaml.safe_load(self.compose_files["base"].read_text())
        return {name: Path(spec["file"]) for name, spec in (document.get("secrets") or {}).items()}

    # the engine
    def containers(self) -> dict[str, dict[str, Any]]:
        found = self.client.api.containers(all=True,
                                           filters={"label": f"{PLATFORM_LABEL}={self.name}"})
        return {c["Names"][0].lstrip("/"): self.client.api.inspect_container(c["Id"])
                for c in found}

    def ids(self) -> dict[str, str]:
        return {name: attrs["Id"] for name, attrs in self.containers().items()}

    def docker_healthy(self, started: float, expected: int) -> float:
        """Seconds from `started` until Docker reports `expected` containers, all healthy."""
        while time.monotonic() - started < HEALTH_DEADLINE:
            found = self.containers()
            states = [(a["State"].get("Health") or {}).get("Status") for a in found.values()]
            if len(found) == expected and all(s == "healthy" for s in states):
                return time.monotonic() - started
            time.sleep(0.2)
        raise BenchError(f"Docker did not report {expected} healthy containers in time")

    def remove_everything(self) -> None:
        remove_platform(self.client, self.name)
        shutil.rmtree(self.state_dir / self.name, ignore_errors=True)


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(name for name, cid in after.items() if before.get(name) != cid)


def heliostat_round(p: Platform, expected: int, checks: dict[str, Any]) -> dict[str, float]:
    t: dict[str, float] = {}
    started = time.monotonic()
    seconds, out = p.run_heliostat("install", "--output", "json")
    t["cold_install"] = seconds
    if out["status"] != "deployed" or out["plan"]["summary"].get("create") != expected:
        raise BenchError(f"heliostat install: {out['status']} {out['plan']['summary']}")
    t["cold_install_until_docker_healthy"] = p.docker_healthy(started, expected)
    ledger = json.loads((p.state_dir / p.name / "revision-000001.json").read_text())
    checks["heliostat_applied_the_rendered_file"] = (
        ledger["manifests"] == {"compose.yaml": p.compose_files["base"].read_text()})

    before = p.ids()
    t["reapply_unchanged"], out = p.run_heliostat("upgrade", "--output", "json")
    touched = changed(before, p.ids())
    if out["status"] != "unchanged" or touched:
        raise BenchError(f"heliostat re-apply: {out['status']}, containers changed: {touched}")
    checks["heliostat_reapply"] = f"{out['status']}, 0 containers changed"

    t["diff_unchanged"], done = p.run_heliostat("diff")
    t["render_no_engine"], done = timed(
        [sys.executable, "-m", "heliostat", "render", "-f", str(p.config), "--profile",
         "compose", "-o", str(p.work / "rendered-again")], env=p.env)
    must(done)
    seconds, done = timed(p.heliostat("diff", "--output", "json", config=p.upgraded),
                          env=p.env)
    must(done, 1)
    t["diff_one_change"] = seconds
    plan = json.loads(done.stdout)
    updates = [s["key"] for w in plan["waves"] for s in w["steps"] if s["action"] != "unchanged"]
    checks["heliostat_diff_one_change"] = {"summary": plan["summary"], "changes": updates}

    before = p.ids()
    started = time.monotonic()
    t["upgrade_one_service"], out = p.run_heliostat("upgrade", "--output", "json",
                                                    config=p.upgraded)
    t["upgrade_one_service_until_docker_healthy"] = p.docker_healthy(started, expected)
    touched = changed(before, p.ids())
    if out["status"] != "deployed" or len(touched) != 1:
        raise BenchError(f"heliostat upgrade: {out['status']}, containers changed: {touched}")
    checks["heliostat_upgrade_changed"] = touched

    seconds, done = timed(p.heliostat("uninstall", "--purge", "--yes"), env=p.env)
    t["cleanup"] = seconds
    must(done)
    if p.containers() or (p.state_dir / p.name).exists():
        raise BenchError("heliostat uninstall --purge left containers or its state directory")
    return t


def compose_round(p: Platform, secrets: dict[str, Path], expected: int,
                  checks: dict[str, Any]) -> dict[str, float]:
    for name, target in p.compose_secrets().items():
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(secrets[name], target)
        info = secrets[name].stat()
        os.chown(target, info.st_uid, info.st_gid)
    t: dict[str, float] = {}
    try:
        started = time.monotonic()
        t["cold_install"], _ = p.run_compose("up", "-d", "--wait", "--wait-timeout", "300")
        t["cold_install_until_docker_healthy"] = p.docker_healthy(started, expected)

        before = p.ids()
        t["reapply_unchanged"], _ = p.run_compose("up", "-d", "--wait", "--wait-timeout", "300")
        touched = changed(before, p.ids())
        if touched:
            raise BenchError(f"docker compose re-apply changed {touched}")
        checks["reference_reapply"] = "0 containers changed"

        t["diff_unchanged_parse_only"], _ = p.run_compose("config", "-q")
        t["render_no_engine"] = t["diff_unchanged_parse_only"]
        t["diff_one_change_parse_only"], _ = p.run_compose("config", "-q", file="upgraded")
        if p.dry_run:
            t["diff_unchanged"], _ = p.run_compose("--dry-run", "up", "-d")
            # Compose 2.32's dry run plans the recreate, then fails to copy the gateway's
            # `configs: content` into the container it only pretended to make (exit 1):
            # the time is still that of its plan, and the checks say what it printed.
            t["diff_one_change"], done = p.run_compose("--dry-run", "up", "-d", file="upgraded",
                                                       codes=(0, 1))
            checks["reference_dry_run_one_change_exit_code"] = done.returncode
            said = re.findall(r"Container (\S+)\s+(Recreate|Create)\b",
                              done.stdout + done.stderr)
            checks["reference_dry_run_one_change"] = sorted({f"{c}: {a}" for c, a in said})
            noise = {re.sub(r"[0-9a-f]{12}_", "", line.strip())
                     for line in done.stderr.splitlines()
                     if "DRY-RUN MODE" in line and " Container " not in line}
            if noise:
                checks["reference_dry_run_messages"] = sorted(noise)

        before = p.ids()
        started = time.monotonic()
        t["upgrade_one_service"], _ = p.run_compose("up", "-d", "--wait", "--wait-timeout", "300",
                                                    file="upgraded")
        t["upgrade_one_service_until_docker_healthy"] = p.docker_healthy(started, expected)
        touched = changed(before, p.ids())
        if len(touched) != 1:
            raise BenchError(f"docker compose upgrade changed {touched}")
        checks["reference_upgrade_changed"] = touched
    finally:
        seconds, done = timed(p.compose("down", "-v", file="upgraded"), env=p.compose_env,
                              cwd=p.work)
        shutil.rmtree(p.state_dir / p.name, ignore_errors=True)
    t["cleanup"] = seconds
    must(done)
    if p.containers():
        raise BenchError("docker compose down -v left containers")
    return t


def keep_secrets(p: Platform, into: Path) -> dict[str, Path]:
    """After a heliostat install: for each secret the rendered file names, the copy
    heliostat mounts into its containers (owner and mode kept)."""
    master_dir = p.state_dir / p.name / "secrets"
    into.mkdir(mode=0o700, exist_ok=True)
    kept = {}
    for name in p.compose_secrets():
        copies = sorted(master_dir.glob(f"uid-*/{name}"))
        if len(copies) > 1:
            raise BenchError(f"secret {name} is mounted by images of several users; one "
                             "file at the rendered path cannot serve them all under Compose")
        source = copies[0] if copies else master_dir / name  # a root image mounts the master
        target = into / name
        shutil.copy2(source, target)
        os.chown(target, source.stat().st_uid, source.stat().st_gid)
        kept[name] = target
    return kept


def remove_abandoned(client: docker.DockerClient) -> None:
    """Platforms and tags of earlier runs of this benchmark that were killed."""
    names = {c.labels.get(PLATFORM_LABEL, "")
             for c in client.containers.list(all=True, filters={"label": PLATFORM_LABEL})}
    names |= {(v.attrs.get("Labels") or {}).get(PLATFORM_LABEL, "")
              for v in client.volumes.list(filters={"label": PLATFORM_LABEL})}
    for image in client.images.list(name=UPGRADED_IMAGE):
        names |= {tag.rsplit(":", 1)[1] for tag in image.tags}
    for name in names:
        match = re.fullmatch(re.escape(PREFIX) + r"(\d+-\d+)", name)
        if match and not token_alive(match[1]):
            remove_platform(client, name)
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(f"{UPGRADED_IMAGE}:{name}")


def versions(p: Platform) -> dict[str, str]:
    compose = must(subprocess.run(["docker", "compose", "version", "--short"],
                                  capture_output=True, text=True)).stdout.strip()
    engine = p.client.version()
    return {"heliostat": __version__, "docker_compose": compose,
            "docker_engine": engine.get("Version", "?"), "docker_api": engine.get("ApiVersion"),
            "python": sys.version.split()[0]}


def compose_support() -> tuple[str | None, str | None]:
    """(why docker compose cannot be the reference at all, why it cannot plan)."""
    done = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True,
                          text=True)
    if done.returncode != 0:
        return ("docker compose (v2) is missing: `make testbed` builds it into "
                "/usr/local/lib/docker/cli-plugins (tests/infra/steps/docker-compose.sh); "
                "Debian's docker-compose package is v1, without `up --wait`"), None
    up = subprocess.run(["docker", "compose", "up", "--help"], capture_output=True, text=True)
    if "--wait" not in up.stdout:
        return f"docker compose {done.stdout.strip()} has no `up --wait`", None
    helped = subprocess.run(["docker", "compose", "--help"], capture_output=True, text=True)
    if "--dry-run" not in helped.stdout:
        return None, (f"docker compose {done.stdout.strip()} has no --dry-run (2.20 and "
                      "later have), and `config` only parses the file: nothing of it "
                      "compares the file with what runs, as `heliostat diff` does")
    return None, None


def cli_startup(p: Platform, runs: int = 5) -> dict[str, Any]:
    ours = [timed([sys.executable, "-m", "heliostat", "--version"], env=p.env)[0]
            for _ in range(runs)]
    theirs = [timed(["docker", "compose", "version"], env=p.compose_env)[0] for _ in range(runs)]
    return step(ours, theirs, "heliostat --version", "docker compose version")


def step(ours: list[float], theirs: list[float] | None, command: str, reference: str,
         reason: str = "", **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"heliostat": summary(ours), "heliostat_command": command}
    if theirs:
        result["reference"] = summary(theirs)
        result["reference_command"] = reference
        result["ratio"] = round(statistics.median(ours) / statistics.median(theirs), 3)
    else:
        result["reference"] = None
        result["reference_reason"] = reason
    return {**result, **extra}


COMMANDS = {
    "cold_install": ("heliostat install", "docker compose up -d --wait"),
    "cold_install_until_docker_healthy": (
        "heliostat install, then until Docker reports every container healthy",
        "docker compose up -d --wait (returns once Docker reports them healthy)"),
    "reapply_unchanged": ("heliostat upgrade (same platform.yaml: unchanged)",
                          "docker compose up -d --wait (same file)"),
    "diff_unchanged": ("heliostat diff (nothing changed)", "docker compose --dry-run up -d"),
    "diff_one_change": ("heliostat diff (the gateway's image changed)",
                        "docker compose --dry-run up -d (the re-rendered file)"),
    "upgrade_one_service": ("heliostat upgrade (the gateway's image changed)",
                            "docker compose up -d --wait (the re-rendered file)"),
    "upgrade_one_service_until_docker_healthy": (
        "heliostat upgrade, then until Docker reports every container healthy",
        "docker compose up -d --wait, then the same check"),
    "render_no_engine": ("heliostat render --profile compose", "docker compose config -q"),
    "cleanup": ("heliostat uninstall --purge --yes", "docker compose down -v"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each side (>= 1)")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory")
    args = parser.parse_args()
    problem, no_plan = compose_support()
    if problem:
        sys.exit(problem)
    work = (args.work or Path(tempfile.mkdtemp(prefix="bench-compose-"))).absolute()
    work.mkdir(parents=True, exist_ok=True)
    client = docker.from_env(timeout=300)
    remove_abandoned(client)
    token = process_token(os.getpid())
    name = f"{PREFIX}{token}"
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    client.images.get(f"{UPGRADED_IMAGE}:{__version__}").tag(UPGRADED_IMAGE, name)
    p = Platform(work, name, client)
    p.dry_run = no_plan is None
    services = sorted(yaml.safe_load(p.compose_files["base"].read_text())["services"])
    expected = len(services)
    compose_hash = hashlib.sha256(p.compose_files["base"].read_bytes()).hexdigest()
    checks: dict[str, Any] = {}
    ours: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    error = None
    try:
        # Warm-up, not counted: page cache, image layers, and heliostat's secrets.
        heliostat_round(p, expected, {})
        p.run_heliostat("install")
        secrets = keep_secrets(p, work / "secrets-for-compose")
        must(timed(p.heliostat("uninstall", "--purge", "--yes"), env=p.env)[1])
        compose_round(p, secrets, expected, {})
        for n in range(args.rounds):
            sides = [("heliostat", lambda: heliostat_round(p, expected, checks)),
                     ("reference", lambda: compose_round(p, secrets, expected, checks))]
            for side, run in sides if n % 2 == 0 else reversed(sides):
                for key, seconds in run().items():
                    (ours if side == "heliostat" else theirs).setdefault(key, []).append(seconds)
    except (BenchError, subprocess.TimeoutExpired, docker.errors.DockerException) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        p.remove_everything()
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(p.upgraded_ref)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    steps: dict[str, Any] = {}
    for key, (command, reference) in COMMANDS.items():
        if key not in ours:
            continue
        extra = {}
        if f"{key}_parse_only" in theirs:
            extra = {"reference_parse_only": summary(theirs[f"{key}_parse_only"]),
                     "reference_parse_only_command": "docker compose config -q"}
        steps[key] = step(ours[key], theirs.get(key), command, reference,
                          reason=no_plan or "the reference did not run", **extra)
    steps["cli_startup"] = cli_startup(p)
    print(json.dumps({
        "platform": {"name": name, "services": services,
                     "compose_file_sha256": compose_hash},
        "versions": versions(p),
        "rounds": args.rounds,
        "machine": {"cores": os.cpu_count(), "load_average_at_start": load_at_start,
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "order": "rounds alternate which side goes first; one warm-up round of each first, "
                 "not counted",
        "steps": steps,
        "checks": checks,
        "notes": [
            "ratio = heliostat median / docker compose median; below 1 heliostat is faster",
            "heliostat's health gate runs the rendered check itself once a second; Docker "
            "(and so `up --wait`) runs it first one interval (10 s) after the start: "
            "cold_install and upgrade_one_service hold that difference, the "
            "_until_docker_healthy figures do not",
            "heliostat runs as a Python CLI (see cli_startup), docker compose is a Go binary",
            "docker compose gets heliostat's per-user secret copies (owned by the image's "
            "user, 0600) at the paths the rendered file names: with the root-owned 0600 "
            "files themselves, postgres, redis and the registry cannot read them under Compose",
        ],
        "total_seconds": round(time.monotonic() - started, 1),
        "error": error,
    }, indent=2))
    if error:
        sys.exit(1)


if __name__ == "__main__":
    main()
