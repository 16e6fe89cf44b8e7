#!/bin/bash
set -euo pipefail
useradd --system --create-home --home-dir /home/pilot --shell /usr/sbin/nologin pilot
