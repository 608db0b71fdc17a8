#!/usr/bin/env bash
# Install what the tests need, lint and type-check, then run the tests (README's test command; .ci/run runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
python3 -m pip install -q '.[test]'
python3 -m ruff check .
python3 -m mypy
# two workers, a test file each at a time: the x.py checks (which use both cores) run beside the
# hermetic tests instead of after them; a real tree's module fixture stays in one worker
exec python3 -m pytest -ra -n 2 --dist loadfile "$@"
