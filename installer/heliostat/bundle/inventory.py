"""Run inside an image by its own python3 (see sbom.py): prints, as JSON, a
[source, name, version, architecture] row for every Debian package, Python
distribution in the platform venv, and jar under /opt. Standard library only."""

import glob
import json
import zipfile
from importlib import metadata


def debian_packages() -> list:
    rows = []
    with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as status:
        for stanza in status.read().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                          if ": " in line and not line.startswith(" "))
            if fields.get("Status", "").endswith(" installed"):
                rows.append(["deb", fields["Package"], fields["Version"],
                             fields.get("Architecture", "")])
    return rows


def python_distributions() -> list:
    return [["pypi", dist.metadata["Name"], dist.version, ""]
            for site in glob.glob("/opt/heliostat/venv/lib/python3*/site-packages")
            for dist in metadata.distributions(path=[site])]


def jars() -> list:
    rows = []
    for jar in sorted(glob.glob("/opt/**/*.jar", recursive=True)):
        try:
            with zipfile.ZipFile(jar) as archive:
                names = [n for n in archive.namelist()
                         if n.startswith("META-INF/maven/") and n.endswith("/pom.properties")]
                if names:
                    text = archive.read(names[0]).decode("utf-8", "replace")
                    props = dict(line.split("=", 1) for line in text.splitlines()
                                 if "=" in line and not line.startswith("#"))
                    rows.append(["maven", f"{props.get('groupId', '')}/"
                                 f"{props.get('artifactId', '')}", props.get("version", ""), ""])
                    continue
        except (OSError, zipfile.BadZipFile):
            pass
        rows.append(["jar", jar.rsplit("/", 1)[-1], "", ""])
    return rows


if __name__ == "__main__":
    print(json.dumps(debian_packages() + python_distributions() + jars()))
