#!/usr/bin/env bash
# Debian packages the real-tree tests and the offline bootstrap need:
# Debian's rustc/cargo 1.63 as stage0, LLVM 14 for llvm-config, patch for
# Debian's quilt series, cmake, ninja and g++ for the Enzyme build. Installs
# them when run as root; otherwise says what is missing.
set -euo pipefail
packages=(rustc cargo llvm-14-dev patch xz-utils git cmake ninja-build g++)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install_deps: missing Debian packages: ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 0
fi
echo "install_deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
