"""What `pip install .` installs: the engine, xpy_ext, and the series with its bootstrap template."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_carries_series_and_template(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("patchmgr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "patchmgr/cli.py" in names and "xpy_ext/config.py" in names
    assert "patchmgr_series/series.toml" in names and "patchmgr_series/autodiff-1.63.0/cover.md" in names
    shipped = {p.relative_to(REPO / "patches").as_posix() for p in (REPO / "patches").rglob("*.patch")}
    assert shipped and all(f"patchmgr_series/{p}" in names for p in shipped)
    assert "patchmgr_series/autodiff-1.63.0/config.toml.in" in names  # the set's bootstrap template
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "patchmgr = patchmgr.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
