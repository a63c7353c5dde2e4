"""`make run`'s process manager: honcho, with a grace period that fits Celery.

honcho sends SIGTERM on Ctrl-C and SIGKILL 5 s later. An idle Celery worker
needs longer than that for its warm shutdown (the consumer loop wakes every
2 s, then the pool stops), and a killed worker loses the messages it holds
in the filesystem broker (countdown polls, prefetched tasks). 30 s lets it
finish; a worker stuck longer than that is still killed."""

from __future__ import annotations

import honcho.manager
from honcho.command import main

GRACE_SECONDS = 30

if __name__ == "__main__":
    honcho.manager.KILL_WAIT = GRACE_SECONDS
    main()
