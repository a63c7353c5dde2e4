"""Process identities for tests of claims (nanobanana.core.process)."""

from __future__ import annotations

import subprocess
import sys

from nanobanana.core.process import identity_of


def ended_process() -> str:
    """The identity of a process of this machine that has run and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    identity = identity_of(child.pid)
    child.communicate(b"")
    return identity
