#!/usr/bin/env bash
# Install patchmgr and apply the autodiff series to a rustc checkout.
#
#   scripts/quickstart.sh [RUSTC_CHECKOUT]
#
# Without a checkout (or when the directory does not exist yet), the rustc
# 1.63.0 release is imported from Debian's source package into ./rustc-1.63.0
# and prepared for an offline bootstrap the way Debian builds it. Then the
# series is applied (which writes config.toml) and the build command is shown;
# BUILD=1 runs it (a stage1 build: 30 to 40 minutes on 2 cores).
#
# ENZYME_SOURCE=/path/to/Enzyme (a clone that has the pinned commit) redirects
# the manifest's Enzyme URL for this run only, as url.<base>.insteadOf does;
# without it Enzyme is cloned from its real URL.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tree=$(realpath -m "${1:-$PWD/rustc-1.63.0}")

"$here/scripts/install_deps.sh"
python3 -m pip install -q "$here"
if [ ! -e "$tree/.git" ]; then
    python3 "$here/scripts/import_rustc.py" --version 1.63.0 "$tree"
    python3 "$here/scripts/prepare_bootstrap.py" "$tree"
fi
if [ -n "${ENZYME_SOURCE:-}" ]; then
    url=$(python3 -c 'import sys, tomllib; m = tomllib.load(open(sys.argv[1], "rb")); print(m["sets"]["autodiff-1.63.0"]["enzyme"]["url"])' "$here/patches/series.toml")
    export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="url.$(realpath "$ENZYME_SOURCE").insteadOf" GIT_CONFIG_VALUE_0="$url"
fi
patchmgr -C "$tree" apply
patchmgr -C "$tree" status
if [ "${BUILD:-0}" = 1 ]; then
    patchmgr -C "$tree" build --stage 1
else
    patchmgr -C "$tree" build --stage 1 --dry-run >/dev/null
    echo "quickstart: next, build the stage1 compiler: patchmgr -C $tree build --stage 1   (or ./x.py build there)" >&2
fi
