#!/usr/bin/env bash
# Debian packages the real-tree tests and the offline bootstrap need:
# Debian's rustc/cargo 1.63 as stage0; the LLVM each set's build takes by
# default for llvm-config (the newest major its pinned Enzyme builds against,
# enzyme.llvm in patches/series.toml, else the set's own llvm: llvm-14-dev);
# patch and quilt for Debian's quilt series; cmake, ninja and g++ for the
# Enzyme build. Installs them when run as root; otherwise says what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build_llvm=$(python3 -c '
import sys, tomllib
sets = tomllib.load(open(sys.argv[1], "rb"))["sets"].values()
majors = {max(s.get("enzyme", {}).get("llvm") or [s["llvm"]]) for s in sets}
print(" ".join(f"llvm-{m}-dev" for m in sorted(majors)))
' "$here/patches/series.toml")
packages=(rustc cargo $build_llvm patch quilt xz-utils git cmake ninja-build g++)
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
