"""`heliostat doctor` without an engine: the rules and their thresholds, the report, and
the Compose checks that read only this host (ports, bundle, state directory, lock)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from heliostat import __version__
from heliostat.bundle.layout import MANIFEST, MANIFEST_DIGEST, Image, Layer, Manifest, Member
from heliostat.bundle_check import read_bundle, smallest_tar_size
from heliostat.config import load_config
from heliostat.doctor import (
    DATA_ROOT_HEADROOM,
    CannotCheck,
    Check,
    Finding,
    GiB,
    MiB,
    clock_rule,
    data_root_rule,
    engine_version_rule,
    exit_code,
    human_bytes,
    memory_requests,
    memory_rule,
    parse_size,
    report_json,
    report_text,
    run_checks,
    state_dir_space_rule,
)
from heliostat.drivers.compose_doctor import (
    ComposeDoctor,
    engine_time,
    host_folders_finding,
    ledger_lock_finding,
    port_holder,
    published_ports,
    state_dir_finding,
    unreachable,
)
from heliostat.ledger_lock import Holder, Lease
from heliostat.ledger_store import LEASE
from heliostat.target import Target, open_target

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ("gateway", "registry")  # what the small platform below runs


def small_platform(tmp_path: Path, port: int = 18080) -> Target:
    """The core module with external stores: the gateway and the registry."""
    (tmp_path / "pg-password").write_text("x\n")
    path = tmp_path / "platform.yaml"
    path.write_text(f"""\
apiVersion: heliostat/v1
name: acme
profile: compose
gateway: {{http_port: {port}}}
modules:
  clickstream: {{enabled: false}}
  pilot: {{enabled: false}}
  commander: {{enabled: false}}
  monitoring: {{enabled: false}}
stores:
  postgres: {{mode: external, host: pg.invalid, database: x, user: x,
             password_file: {tmp_path / "pg-password"}}}
  redis: {{mode: external, host: redis.invalid}}
  kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
""")
    return open_target(load_config(path), tmp_path / "state")


def heliostat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heliostat", *args], capture_output=True,
                          text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                          env={"PYTHONPATH": str(ROOT / "installer"), **(env or {})})


# -- the rules --

@pytest.mark.parametrize(("api", "status"), [("1.40", "fail"), ("1.41", "ok"), ("1.47", "ok"),
                                             ("?", "warn")])
def test_the_engine_api_decides_the_engine_check(api, status):
    found = engine_version_rule("20.10.24", api, "unix:///var/run/docker.sock")
    assert found.status == status
    assert "unix:///var/run/docker.sock" in found.text
    assert bool(found.fix) == (status != "ok")


@pytest.mark.parametrize(("requested", "status"), [(8 * GiB, "ok"), (8 * GiB + 1, "warn"),
                                                   (16 * GiB, "warn"), (16 * GiB + 1, "fail")])
def test_memory_warns_above_what_the_engine_has_and_fails_above_twice_that(requested, status):
    found = memory_rule(requested, 8 * GiB, 5, 1)
    assert found.status == status
    assert "8.0 GiB" in found.text and "1 job(s) not counted" in found.text


def test_memory_of_an_engine_that_reports_none_fails():
    assert memory_rule(1, 0, 1, 0).status == "fail"


def service(kind: str, memory: str, replicas: int = 1, sidecars: tuple[str, ...] = ()):
    return SimpleNamespace(kind=kind, resources={"memory": memory}, replicas=replicas,
                           sidecars=[{"resources": {"memory": m}} for m in sidecars])


def test_memory_requests_count_replicas_and_sidecars_but_not_jobs():
    model = SimpleNamespace(services=[service("stateless", "512Mi", replicas=2),
                                      service("stateful", "1Gi", sidecars=("64Mi",)),
                                      service("job", "4Gi")])
    assert memory_requests(model) == (2 * 512 * MiB + GiB + 64 * MiB, 4, 1)


def test_the_data_root_needs_twice_the_images_to_load_and_a_headroom():
    needed = 2 * 3 * GiB + DATA_ROOT_HEADROOM
    assert data_root_rule("/var/lib/docker", needed - 1, 3 * GiB, 0, 0).status == "fail"
    assert data_root_rule("/var/lib/docker", needed, 3 * GiB, 0, 0).status == "ok"
    # Volumes are ceilings the data grows into: a warning, not a failure
    tight = data_root_rule("/var/lib/docker", needed, 3 * GiB, 0, 10 * GiB)
    assert tight.status == "warn" and "may grow to 10.0 GiB" in tight.text
    assert data_root_rule("/var/lib/docker", needed + 10 * GiB, 3 * GiB, 0,
                          10 * GiB).status == "ok"
    unknown = data_root_rule("/var/lib/docker", 100 * GiB, 0, 2, 0)
    assert unknown.status == "ok" and "2 missing image(s) of unknown size" in unknown.text


def test_the_fix_for_a_full_data_root_says_how_much_to_free():
    found = data_root_rule("/var/lib/docker", GiB, 0, 0, 0)
    assert found.status == "fail" and "free at least 1.0 GiB" in found.fix


@pytest.mark.parametrize(("free", "status"), [(64 * MiB - 1, "fail"), (64 * MiB, "warn"),
                                              (256 * MiB - 1, "warn"), (256 * MiB, "ok")])
def test_the_state_directory_thresholds(free, status):
    assert state_dir_space_rule("/var/lib/heliostat/acme", free).status == status


@pytest.mark.parametrize(("skew", "uncertainty", "status"), [
    (0.5, 0.0, "ok"), (2.5, 0.0, "warn"), (3.0, 1.5, "ok"),  # within what was measured
    (-61.0, 0.0, "fail"), (61.0, 2.0, "warn")])
def test_clock_skew_is_judged_on_what_is_certain(skew, uncertainty, status):
    found = clock_rule(skew, uncertainty)
    assert found.status == status
    assert ("behind" if skew < 0 else "ahead of") in found.text


@pytest.mark.parametrize(("text", "size"), [("512Mi", 512 * MiB), ("256m", 256 * MiB),
                                            ("1G", GiB), ("10.74 GB", 10_740_000_000),
                                            ("100", 100), ("2Ki", 2048), ("1.5Gi", 3 * GiB // 2)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_parse_size_refuses_what_is_not_a_size():
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1024, 3 * GiB // 2, 2 << 40)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 GiB", "2.0 TiB"]


# -- the runner and the report --

def test_a_check_that_cannot_gather_its_figures_is_a_warning_with_what_to_do_first():
    def needs_engine() -> Finding:
        raise CannotCheck("the engine is unreachable", "start it")

    checks = run_checks([("engine", lambda: Finding.fail("no engine", "start it")),
                         ("memory", needs_engine), ("ports", lambda: Finding.ok("free"))])
    assert [(c.name, c.status) for c in checks] == [("engine", "fail"), ("memory", "warn"),
                                                    ("ports", "ok")]
    assert checks[1].finding == "not checked: the engine is unreachable"
    assert checks[1].fix == "start it"


def test_warnings_exit_0_and_a_failure_exits_1():
    ok, warn, fail = Check("a", "ok", "x"), Check("b", "warn", "y", "do y"), \
        Check("c", "fail", "z", "do z")
    assert exit_code([ok, warn]) == 0
    assert exit_code([ok, warn, fail]) == 1


def test_the_text_report_puts_each_fix_under_its_check_and_sums_up():
    checks = [Check("engine", "ok", "reachable"), Check("ports", "fail", "8080 in use", "stop it")]
    text = report_text("acme", checks, unicode=False)
    assert text.splitlines() == [
        "ok engine  reachable",
        "XX ports   8080 in use",
        "           fix: stop it",
        "platform acme: 1 ok, 0 warnings, 1 failed; fix what failed, then run "
        "`heliostat doctor` again"]
    assert report_text("acme", checks[:1]).splitlines()[-1] == (
        "platform acme: 1 ok, 0 warnings, 0 failed; this host can take it")


def test_the_json_report():
    checks = [Check("engine", "ok", "reachable"), Check("clock", "warn", "3s ahead", "ntp")]
    assert json.loads(json.dumps(report_json("acme", checks))) == {
        "platform": "acme", "ok": True,
        "checks": [{"name": "engine", "status": "ok", "finding": "reachable", "fix": ""},
                   {"name": "clock", "status": "warn", "finding": "3s ahead", "fix": "ntp"}]}


def test_a_compose_target_gets_the_compose_checks(tmp_path):
    target = small_platform(tmp_path)
    assert isinstance(target.preflight(), ComposeDoctor)


# -- the engine, as far as this host tells --

def test_engine_time_reads_rfc3339_with_nanoseconds_and_offsets():
    assert engine_time("2024-05-01T10:00:00.250000000Z") == 1714557600.25
    assert engine_time("2024-05-01T12:00:00+02:00") == 1714557600.0
    assert engine_time("yesterday") is None


def test_an_engine_socket_that_is_not_there(tmp_path):
    found = unreachable(f"unix://{tmp_path}/docker.sock", OSError("no"), from_env=True)
    assert found.status == "fail"
    assert f"there is no socket at {tmp_path}/docker.sock" in found.text
    assert "systemctl start docker" in found.fix and "unset DOCKER_HOST" in found.fix


def test_a_socket_nothing_listens_on(tmp_path):
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as left_behind:
        left_behind.bind(str(path))  # the file stays; nothing accepts on it
    with socket.socket(socket.AF_UNIX) as client, pytest.raises(OSError) as refused:
        client.connect(str(path))
    wrapped = RuntimeError("Error while fetching server API version")
    wrapped.__cause__ = refused.value
    found = unreachable(f"unix://{path}", wrapped)
    assert f"nothing listens on {path}" in found.text
    assert "systemctl start docker" in found.fix


# -- ports --

def test_the_ports_the_rendered_compose_file_publishes(tmp_path):
    assert published_ports(small_platform(tmp_path, port=18443).manifests) == [
        (18443, "tcp", "gateway")]


def test_a_port_held_by_a_listening_socket_names_its_process():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        holder = port_holder(port, "tcp")
    assert holder is not None and f"pid {os.getpid()} (" in holder
    assert port_holder(port, "tcp") is None  # closed: free again


# -- the bundle --

def write_bundle(path: Path, images: tuple[str, ...] = IMAGES,
                 version: str = __version__) -> Path:
    """A bundle as the writer lays it out, with small stand-ins for configs and layers."""
    files: list[tuple[str, bytes]] = [("heliostat.pyz", b"#!/usr/bin/env python3\n")]
    entries = []
    for name in images:
        layer = f"{name} layer".encode() * 5000  # larger than the tar's end padding
        diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
        config = json.dumps({"image": name}).encode()
        image = Image(name, f"heliostat/{name}:{version}",
                      "sha256:" + hashlib.sha256(config).hexdigest(),
                      (Layer(diff_id, len(layer)),))
        entries.append(image)
        files += [(image.sbom, b"{}"), (image.config, config), (image.layers[0].member, layer)]
    members = tuple(Member(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in files)
    manifest = Manifest("heliostat", version, "sha256:" + "0" * 64, tuple(entries), members)
    data = manifest.to_bytes()
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}\n".encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in [(MANIFEST, data), (MANIFEST_DIGEST, digest), *files]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def test_a_complete_bundle(tmp_path):
    target = small_platform(tmp_path)
    state = read_bundle(write_bundle(tmp_path / "b.bundle"), target.model)
    assert state.finding.status == "ok", state.finding
    assert f"heliostat {__version__}" in state.finding.text
    assert "all 2 images the platform runs" in state.finding.text
    assert state.manifest is not None and state.manifest.image("registry") is not None


def test_a_bundle_that_is_not_there(tmp_path):
    state = read_bundle(tmp_path / "nowhere.bundle", small_platform(tmp_path).model)
    assert state.manifest is None and state.finding.status == "fail"
    assert state.finding.text == f"there is no bundle at {tmp_path / 'nowhere.bundle'}"
    assert "make bundle" in state.finding.fix


def test_a_bundle_lacking_an_image_the_platform_runs(tmp_path):
    state = read_bundle(write_bundle(tmp_path / "b.bundle", images=("gateway",)),
                        small_platform(tmp_path).model)
    assert state.finding.status == "fail"
    assert "lacks the image(s) registry that platform acme runs" in state.finding.text


def test_a_truncated_bundle(tmp_path):
    path = write_bundle(tmp_path / "b.bundle")
    # Half a download: the manifest is intact, so only the sizes it lists tell
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)
    state = read_bundle(path, small_platform(tmp_path).model)
    assert state.finding.status == "fail" and "is truncated" in state.finding.text
    assert "heliostat bundle verify" in state.finding.fix


def test_a_bundle_short_of_its_last_byte(tmp_path):
    path = write_bundle(tmp_path / "b.bundle")
    with tarfile.open(path) as archive:
        last = archive.getmembers()[-1]
    # Its data padded to a whole block; the tar's end marker and padding follow
    end = last.offset_data + -(-last.size // 512) * 512
    with path.open("r+b") as file:
        file.truncate(end)
    assert read_bundle(path, small_platform(tmp_path).model).finding.status == "ok"
    with path.open("r+b") as file:
        file.truncate(last.offset_data + last.size - 1)
    state = read_bundle(path, small_platform(tmp_path).model)
    assert "is truncated" in state.finding.text


def test_a_file_that_is_not_a_bundle(tmp_path):
    path = tmp_path / "b.bundle"
    path.write_bytes(b"not a tar at all" * 100)
    state = read_bundle(path, small_platform(tmp_path).model)
    assert state.finding.status == "fail" and state.manifest is None


def test_a_bundle_of_another_version(tmp_path):
    path = write_bundle(tmp_path / "b.bundle", version="0.0.9")
    state = read_bundle(path, small_platform(tmp_path).model)
    assert state.finding.status == "fail"
    assert f"heliostat 0.0.9, not {__version__}" in state.finding.text


def test_the_smallest_tar_is_a_header_and_whole_blocks_per_member():
    assert smallest_tar_size([0, 1, 512, 513]) == 4 * 512 + 0 + 512 + 512 + 1024


# -- the state directory and the lock --

def test_a_state_directory_not_made_yet(tmp_path):
    found = state_dir_finding(tmp_path / "heliostat" / "acme")
    assert found.status == "ok" and "does not exist yet" in found.text
    assert not (tmp_path / "heliostat").exists()  # doctor looks, it does not make


def test_a_state_directory_that_is_a_file(tmp_path):
    (tmp_path / "acme").write_text("")
    assert state_dir_finding(tmp_path / "acme").status == "fail"


def test_secret_files_others_may_read_fail_and_loose_directories_warn(tmp_path):
    state = tmp_path / "acme"
    (state / "secrets").mkdir(parents=True)
    state.chmod(0o700)
    (state / "secrets").chmod(0o700)
    secret = state / "secrets" / "admin-password"
    secret.write_text("x")
    secret.chmod(0o600)
    good = state_dir_finding(state)
    assert good.status == "ok" and "1 secret file(s) all 0600" in good.text

    state.chmod(0o755)
    loose = state_dir_finding(state)
    assert loose.status == "warn" and f"chmod 700 {state}" == loose.fix

    secret.chmod(0o644)
    exposed = state_dir_finding(state)
    assert exposed.status == "fail" and f"{secret} (mode 0644)" in exposed.text
    assert exposed.fix == f"chmod 600 {secret}"


def write_lease(directory: Path, lease: Lease) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LEASE).write_text(json.dumps(lease.to_json()))


def test_a_lock_nobody_holds(tmp_path):
    assert ledger_lock_finding(tmp_path).status == "ok"


def test_a_lock_held_by_a_live_command_is_a_warning_naming_it(tmp_path):
    write_lease(tmp_path, Lease.grant(Holder.this_process("upgrade"), ttl=30))
    found = ledger_lock_finding(tmp_path)
    assert found.status == "warn"
    assert found.text.startswith(f"held by `upgrade` (pid {os.getpid()} on ")


def test_a_lease_that_ran_out_is_not_held(tmp_path):
    lease = Lease.grant(Holder.this_process("install"), ttl=30)
    write_lease(tmp_path, dataclasses.replace(lease, expires_at=time.time() - 5))
    found = ledger_lock_finding(tmp_path)
    assert found.status == "ok" and "ran out" in found.text


def test_a_lease_whose_holder_is_gone_is_not_held(tmp_path):
    # A holder that exited: the pid of a process that no longer runs
    child = subprocess.run(
        [sys.executable, "-c", "import dataclasses, json; from heliostat.ledger_lock import "
         "Holder; print(json.dumps(dataclasses.asdict(Holder.this_process('install'))))"],
        capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT / "installer")})
    holder = Holder(**json.loads(child.stdout))
    write_lease(tmp_path, Lease.grant(holder, ttl=30))
    found = ledger_lock_finding(tmp_path)
    assert found.status == "ok" and "no longer runs" in found.text


def test_a_lease_file_that_does_not_parse(tmp_path):
    (tmp_path / LEASE).write_text("{not json")
    found = ledger_lock_finding(tmp_path)
    assert found.status == "fail" and f"rm {tmp_path / LEASE}" in found.fix


# -- the command --

def test_an_unreachable_engine_is_a_report_not_a_traceback(tmp_path):
    target = small_platform(tmp_path)
    result = heliostat("doctor", "-f", str(tmp_path / "platform.yaml"), "--state-dir",
                       str(tmp_path / "state"), "--output", "json",
                       env={"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["platform"] == target.name and report["ok"] is False
    assert checks["engine"]["status"] == "fail"
    assert "there is no socket at" in checks["engine"]["finding"]
    assert checks["memory"]["finding"].startswith("not checked: ")
    # What needs no engine is still checked
    assert checks["state-dir"]["status"] == "ok"
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args", [["--output", "yaml"], ["--no-such-option"]])
def test_a_mistake_on_the_command_line_exits_2(tmp_path, args):
    result = heliostat("doctor", *args)
    assert result.returncode == 2
    assert "Usage:" in result.stderr


def test_a_mistake_in_platform_yaml_exits_2(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text("apiVersion: heliostat/v1\nname: acme\ngateway: {http_port: nope}\n")
    result = heliostat("doctor", "-f", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:3: gateway.http_port")


def test_a_bundle_that_is_a_directory_is_a_usage_error(tmp_path):
    result = heliostat("doctor", "--bundle", str(tmp_path))
    assert result.returncode == 2 and "is a directory" in result.stderr


def test_host_folders_must_be_directories_on_the_engines_host(tmp_path: Path):
    from heliostat.config import config_from_document
    from heliostat.model import build_model
    from heliostat.yaml_source import load_yaml_text

    def model(folder: Path):
        return build_model(config_from_document(load_yaml_text(
            "apiVersion: heliostat/v1\nname: x\nprofile: compose\nmodules: {airflow: "
            f"{{enabled: true, dags: {{host_folder: {folder}}}}}}}\n", "p.yaml")))

    missing = host_folders_finding(model(tmp_path / "dags"), engine_is_here=True)
    assert missing.status == "fail"
    assert f"not a directory on this host: {tmp_path / 'dags'} (mounted by " in missing.text
    assert "airflow-dag-processor" in missing.text and "mkdir -p" in missing.fix
    (tmp_path / "dags").mkdir()
    assert host_folders_finding(model(tmp_path / "dags"), engine_is_here=True).status == "ok"
    assert host_folders_finding(model(tmp_path / "x"), engine_is_here=False).status == "warn"
