import dataclasses
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixture import World, build_world  # noqa: E402


@pytest.fixture
def world(tmp_path):
    return build_world(tmp_path)


@pytest.fixture
def tarball_world(tmp_path):
    return build_world(tmp_path, tarball_style=True)


@pytest.fixture(scope="session")
def world_template(tmp_path_factory) -> World:
    """One world for many tests that only need their own checkout and patches: its upstreams are
    shared (read-only), the checkout and patches directory are copied per test."""
    return build_world(tmp_path_factory.mktemp("template"))


def _copy(template: World, tmp_path: Path) -> World:
    checkout, patches = tmp_path / "rust", tmp_path / "patches"
    shutil.copytree(template.checkout, checkout, symlinks=True)
    shutil.copytree(template.patches, patches, symlinks=True)
    return dataclasses.replace(template, tmp=tmp_path, checkout=checkout, patches=patches)


@pytest.fixture
def fast_world(world_template, tmp_path) -> World:
    return _copy(world_template, tmp_path)


@pytest.fixture(scope="session")
def applied_template(tmp_path_factory) -> World:
    """A world with the set applied (no bootstrap config), built once."""
    world = build_world(tmp_path_factory.mktemp("applied"))
    res = world.run("apply", "--no-config")
    assert res.returncode == 0, res.stderr
    return world


@pytest.fixture
def applied_world(applied_template, tmp_path) -> World:
    return _copy(applied_template, tmp_path)


def pytest_collection_modifyitems(items):
    """The slow real-tree files first: with `-n 2 --dist loadfile` (scripts/test.sh) files go to the
    workers in this order, so the longest chain (import, prepare, two x.py checks) starts at once
    and the quick files fill the other worker around it, instead of it starting late and running
    alone at the end."""
    def weight(item) -> int:
        return 0 if "test_compile_check" in item.nodeid else 1 if item.get_closest_marker("realtree") else 2

    items.sort(key=weight)  # stable: each file keeps its own order
