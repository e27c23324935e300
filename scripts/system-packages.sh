#!/usr/bin/env bash
# Install the Debian packages the portal needs, or stop naming the command that does.
#   scripts/system-packages.sh run    what `make run` needs: WeasyPrint's pango and fonts, and
#                                     the C compiler and OpenSSL 3 headers that build
#                                     datasets/native (make fails without them)
#   scripts/system-packages.sh test   the same and Debian's chromium for the browser tests:
#                                     no test is skipped for want of one
# As root with apt-get (a fresh machine, CI) it installs what is missing; otherwise it
# prints the apt-get command to run and exits 1.
set -euo pipefail

packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core gcc libssl-dev)
if [[ "${1:-run}" == "test" ]]; then
  packages+=(chromium)
fi

need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
((${#need[@]})) || exit 0

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "Installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit 0
fi

echo "These Debian packages are missing: ${need[*]}" >&2
echo "Install them, then run make again:" >&2
echo "  sudo apt-get install --no-install-recommends ${need[*]}" >&2
exit 1
