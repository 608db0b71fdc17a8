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


@pytest.fixture
def fast_world(world_template, tmp_path) -> World:
    checkout, patches = tmp_path / "rust", tmp_path / "patches"
    shutil.copytree(world_template.checkout, checkout, symlinks=True)
    shutil.copytree(world_template.patches, patches, symlinks=True)
    return dataclasses.replace(world_template, tmp=tmp_path, checkout=checkout, patches=patches)
