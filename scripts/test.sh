#!/usr/bin/env bash
# Install what the tests need, then run them all (README's test command; .ci/run runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
python3 -m pip install -q '.[test]'
exec python3 -m pytest -ra "$@"
