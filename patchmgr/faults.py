"""Test-only fault injection: stop dead at a named phase.

With PATCHMGR_TEST_FAULT=<phase> in the environment, patchmgr kills itself
with SIGKILL when it reaches that phase, as a power cut or `kill -9` would:
no cleanup, no `finally`. The tests use it to prove that the matching
--abort (or --continue) restores the tree exactly from every phase. Not for
users; nothing else reads this variable.
"""

from __future__ import annotations

import os
import signal

_WANTED = os.environ.get("PATCHMGR_TEST_FAULT")


def fault(phase: str) -> None:
    if _WANTED is not None and _WANTED == phase:
        os.kill(os.getpid(), signal.SIGKILL)
