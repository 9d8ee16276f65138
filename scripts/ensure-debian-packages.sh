#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing (called by `make venv`):
#   chromium   headless rendering check of the backtest HTML report
#   iproute2   `ip link set lo up` inside the network namespaces of the multicast tests
#   util-linux `unshare -n` for those namespaces
# Runs apt-get only if something is missing, as root or through sudo.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
echo "installing Debian packages: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
