"""The decisions of ``wait_until_ready``, shared by both clients: poll again, stop, or fail."""

from __future__ import annotations

import inspect
from typing import Callable

from ._exceptions import ResourceError, WaitTimeoutError
from ._requests import deployment_path_segment
from ._types import DeploymentStatus

ProgressCallback = Callable[[DeploymentStatus], object]


class ReadinessWait:
    """One wait: its deadline, and what each polled status means for it."""

    def __init__(
        self,
        deployment_id: str,
        timeout: float,
        poll_interval: float,
        clock: Callable[[], float],
    ) -> None:
        deployment_path_segment(deployment_id)
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, not {timeout!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")
        self.deployment_id = deployment_id
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._deadline = clock() + timeout

    def next_delay(self, status: DeploymentStatus) -> float | None:
        """None when ready; else the seconds to sleep before the next poll.

        Raises ResourceError when the deployment failed and WaitTimeoutError when the next poll
        would come after the deadline.
        """
        if status.is_ready:
            return None
        if status.is_failed:
            raise ResourceError(
                status.message
                or failed_condition_message(status)
                or f"Deployment {self.deployment_id!r} failed",
                type="deployment_failed",
                body=dict(status.raw),
            )
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise WaitTimeoutError(
                f"Deployment {self.deployment_id!r} was not ready after {self.timeout:g}s "
                f"(last status: {status.status}"
                + (f", {status.message}" if status.message else "")
                + ")",
                deployment_id=self.deployment_id,
                last_status=status,
            )
        # The last sleep is cut short so the final poll lands on the deadline.
        return min(self.poll_interval, remaining)


def failed_condition_message(status: DeploymentStatus) -> str:
    """The message of the first condition that is not True, for failures without a message."""
    for condition in status.conditions:
        if condition.status != "True" and condition.message:
            return condition.message
    return ""


def report_progress(on_progress: ProgressCallback | None, status: DeploymentStatus) -> None:
    """Hand a polled status to the caller's callback, if there is one."""
    if on_progress is not None:
        on_progress(status)


async def async_report_progress(
    on_progress: ProgressCallback | None, status: DeploymentStatus
) -> None:
    """report_progress for the async client, whose callback may also be a coroutine function."""
    if on_progress is not None:
        outcome = on_progress(status)
        if inspect.isawaitable(outcome):
            await outcome
