"""The one error hierarchy. Each edge (webhook, bot error router, base task,
CLI) maps these to its own response once."""

from __future__ import annotations

import redis.exceptions

# Redis unreachable or too slow (the broker, the bot's FSM state, the
# Telegram limiter's slots): an outage that passes, like the database's.
REDIS_OUTAGE: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class AppError(Exception):
    """A failure the application understands. `code` is stable and
    machine-readable; it also names the user-facing text to show."""

    code = "app_error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if code is not None:
            self.code = code


class ValidationError(AppError):
    """Input that breaks a rule (unknown parameter, prompt too long, ...)."""

    code = "invalid_input"


class NotFound(AppError):
    code = "not_found"


class Conflict(AppError):
    """The object is not in the state the operation needs."""

    code = "conflict"


class InsufficientFunds(AppError):
    code = "insufficient_funds"

    def __init__(self, *, required: int, available: int) -> None:
        super().__init__(f"need {required} tokens, have {available}")
        self.required = required
        self.available = available


class PaymentError(AppError):
    code = "payment_error"


class ProviderError(AppError):
    """A vendor refused or failed the job for good (policy, bad input)."""

    code = "provider_error"


class ProviderPolicyError(ProviderError):
    code = "policy_refusal"


class ProviderTransientError(ProviderError):
    """Worth retrying within the job's deadline (timeout, 5xx, 429)."""

    code = "provider_transient"

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderJobLost(ProviderError):
    """The vendor no longer knows the job."""

    code = "job_lost"


class TransientError(AppError):
    """Any other temporary failure the base task should retry."""

    code = "transient"

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
