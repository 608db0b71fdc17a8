import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixture import build_world  # noqa: E402


@pytest.fixture
def world(tmp_path):
    return build_world(tmp_path)


@pytest.fixture
def tarball_world(tmp_path):
    return build_world(tmp_path, tarball_style=True)
