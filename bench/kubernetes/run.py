"""heliostat's Kubernetes apply against kubectl on the same rendered objects. Prints JSON.

    PYTHONPATH=installer:. <venv>/bin/python bench/kubernetes/run.py [--rounds 3]

The test bed's control plane (`make testbed`: kube-apiserver, controller manager, scheduler
and kubectl 1.37.2, etcd, kwok's simulated nodes) is started for the run. The default
platform is rendered for Kubernetes (`heliostat render`, what `install` applies), once per
side into a namespace of its own. Rounds alternate which side goes first; each starts
from nothing (the namespaces are deleted between rounds).

- install_to_ready: `heliostat install` until every gate passed, against
  `kubectl apply --server-side` of the namespace and then of every object, followed by
  `kubectl rollout status` of each Deployment and StatefulSet and `kubectl wait` for each
  Job to complete, one after the other (as a script would).
- reapply_unchanged: `heliostat upgrade` of the same config (must answer "nothing to do"),
  against `kubectl apply --server-side` of the same objects.

Each figure is the wall time of one command sequence, median / min / max over the rounds;
`ratio` = heliostat's median / kubectl's (below 1: heliostat is faster). Where heliostat's
install time goes, from its progress lines as they arrive: `to_first_apply` (start-up,
config, render, secrets, lock, plan), `rollouts` (first object applied to every gate
passed: the longest chain of dependencies, each service gated on its rollout) and
`after_deployed` (the summary and the interpreter's exit). heliostat's
install also generates the platform's Secrets; kubectl's pods start without them, which
kwok's nodes allow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.infra.kubernetes_cluster import STORAGE_CLASS, KubernetesCluster
from tests.infra.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[2]


def timed(action: Callable[[str], None], namespace: str) -> float:
    start = time.monotonic()
    action(namespace)
    return time.monotonic() - start


class Bench:
    def __init__(self, cluster: KubernetesCluster, work: Path) -> None:
        self.cluster = cluster
        self.work = work
        self.env = {**os.environ, "PYTHONPATH": str(ROOT / "installer"),
                    "KUBECONFIG": str(cluster.kubeconfig)}
        self.phases: dict[str, list[float]] = {}  # of heliostat's installs

    def config(self, namespace: str) -> Path:
        path = self.work / f"{namespace}.yaml"
        path.write_text(textwrap.dedent(f"""\
            apiVersion: heliostat/v1
            name: {namespace}
            profile: kubernetes
            target:
              kubernetes: {{namespace: {namespace}, storage_class: {STORAGE_CLASS}}}
            """))
        return path

    def heliostat(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "heliostat", *args], env=self.env,
                                capture_output=True, text=True, timeout=600, cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"heliostat {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def kubectl(self, *args: str) -> None:
        self.cluster.kubectl(*args)

    def rendered(self, namespace: str) -> tuple[Path, Path, list[dict]]:
        out = self.work / f"render-{namespace}"
        self.heliostat("render", "-f", str(self.config(namespace)), "-o", str(out))
        namespace_file = next(out.glob("namespace-*.yaml"))
        objects = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))]
        return out, namespace_file, objects

    def ours_install(self, namespace: str) -> None:
        """`heliostat install`, timing its phases from its progress lines as they come."""
        started = time.monotonic()
        command = [sys.executable, "-m", "heliostat", "install", "-f",
                   str(self.config(namespace))]
        first_apply = deployed = None
        lines = []
        with subprocess.Popen(command, env=self.env, cwd=ROOT, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
            assert process.stderr is not None
            for line in process.stderr:
                lines.append(line)
                if first_apply is None and "+ create " in line:
                    first_apply = time.monotonic() - started
                if line.rstrip().endswith(" deployed") and "revision" in line:
                    deployed = time.monotonic() - started
        if process.returncode != 0 or first_apply is None or deployed is None:
            raise SystemExit(f"heliostat install failed:\n{''.join(lines)}")
        ended = time.monotonic() - started
        for phase, seconds in (("to_first_apply", first_apply),
                               ("rollouts", deployed - first_apply),
                               ("after_deployed", ended - deployed)):
            self.phases.setdefault(phase, []).append(seconds)

    def ours_noop(self, namespace: str) -> None:
        output = self.heliostat("upgrade", "-f", str(self.config(namespace)))
        assert "nothing to do" in output, output

    def kubectl_install(self, namespace: str) -> None:
        out, namespace_file, objects = self.rendered(namespace)
        self.kubectl("apply", "--server-side", "-f", str(namespace_file))
        self.kubectl("apply", "--server-side", "-f", str(out))
        for obj in objects:
            name = obj["metadata"]["name"]
            if obj["kind"] in ("Deployment", "StatefulSet"):
                self.kubectl("rollout", "status", f"{obj['kind'].lower()}/{name}", "-n",
                             namespace, "--timeout=300s")
            elif obj["kind"] == "Job":
                self.kubectl("wait", "--for=condition=complete", f"job/{name}", "-n",
                             namespace, "--timeout=300s")

    def kubectl_noop(self, namespace: str) -> None:
        out = self.work / f"render-{namespace}"
        self.kubectl("apply", "--server-side", "-f", str(out))

    def clean(self, *namespaces: str) -> None:
        for namespace in namespaces:
            self.kubectl("delete", "namespace", namespace, "--ignore-not-found",
                         "--wait=true", "--timeout=300s")


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(samples), 3), "min": round(min(samples), 3),
            "max": round(max(samples), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    run = RunDir()
    cluster = KubernetesCluster(run)
    cluster.start()
    samples: dict[str, dict[str, list[float]]] = {
        figure: {"heliostat": [], "kubectl": []}
        for figure in ("install_to_ready", "reapply_unchanged")}
    try:
        with tempfile.TemporaryDirectory() as work:
            bench = Bench(cluster, Path(work))
            bench.rendered("warm-up")  # the CLI's first start pays for the bytecode
            for number in range(rounds):
                ours, theirs = f"ours-{number}", f"kubectl-{number}"
                sides = [("heliostat", ours), ("kubectl", theirs)]
                if number % 2:
                    sides.reverse()
                for side, namespace in sides:
                    install = bench.ours_install if side == "heliostat" else bench.kubectl_install
                    noop = bench.ours_noop if side == "heliostat" else bench.kubectl_noop
                    if side == "kubectl":
                        bench.rendered(namespace)  # rendering is not part of kubectl's time
                    samples["install_to_ready"][side].append(timed(install, namespace))
                    samples["reapply_unchanged"][side].append(timed(noop, namespace))
                bench.clean(ours, theirs)
    finally:
        cluster.stop()
        run.remove()
    result: dict[str, dict] = {}
    for figure, sides in samples.items():
        ours_summary, reference = summary(sides["heliostat"]), summary(sides["kubectl"])
        result[figure] = {"heliostat": ours_summary, "kubectl": reference,
                          "ratio": round(ours_summary["median"] / reference["median"], 2)}
    result["install_to_ready"]["heliostat_phases"] = {
        phase: summary(seconds) for phase, seconds in bench.phases.items()}
    print(json.dumps({"rounds": rounds, "objects": "the default platform", **result},
                     indent=2))


if __name__ == "__main__":
    main()
