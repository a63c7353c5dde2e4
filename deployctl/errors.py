"""The toolkit's errors and the exit code each maps to.

Exit codes are part of the contract with the workflows:

- 0: pass / done
- 1: fail (a check failed, a rollback did not complete)
- 2: inconclusive (could not tell; a person must look)
- 3: configuration missing or invalid (a variable or file)
- 4: an outside API failed (Railway, GitHub, Telegram) after retries
- 5: refused (the command would be unsafe here, e.g. a preview environment)
- 64: usage error (bad arguments)
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INCONCLUSIVE = 2
EXIT_CONFIG = 3
EXIT_API = 4
EXIT_REFUSED = 5
EXIT_USAGE = 64


class DeployctlError(Exception):
    """Base of every error the CLI turns into one clear line and an exit code."""

    exit_code = EXIT_API


class ConfigError(DeployctlError):
    """A required setting or file is missing or malformed."""

    exit_code = EXIT_CONFIG


class ApiError(DeployctlError):
    """An outside API answered with an error, or could not be reached, after retries."""

    exit_code = EXIT_API

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Refused(DeployctlError):
    """The command was asked to do something unsafe and did nothing."""

    exit_code = EXIT_REFUSED
