"""What a restart makes of a model's journal: finish the step it announced, and the
status the served release starts with (journal.py says why each step is written first).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .journal import Journal
from .payloads import DeviceModelStatus
from .registry import status_entry
from .slots import ReleaseRejected, verify_installed
from .state import CurrentRelease, remove_current, save_current

__all__ = ["finish_step", "status_at_start"]

log = logging.getLogger("farpoint.agent")


def finish_step(
    model_dir: Path, journal: Journal | None, current: CurrentRelease | None
) -> tuple[CurrentRelease | None, Journal | None]:
    """What current.json names once the journal's step is complete, writing it if need
    be; and the journal as it must now read (None: unchanged)."""
    if journal is None or journal.target is None:
        return current, None
    if current == journal.target:
        if journal.step == "rolled_back":  # killed between the journal and current.json
            log.info("finishing the rollback of %s release %d", journal.model, journal.release_id)
            if journal.previous is None:
                remove_current(model_dir)
                return None, None
            save_current(model_dir, journal.previous)
            return journal.previous, None
        return current, None
    if journal.step not in ("switched", "committed"):
        return current, None
    if current != journal.previous:
        log.warning("journal of %s is stale (current.json moved on); ignored", journal.model)
        return current, None
    try:  # killed after the journal's switch, before current.json's: switch again
        verify_installed(model_dir, journal.target)
    except ReleaseRejected as exc:
        log.error("not finishing the switch of %s: %s", journal.model, exc)
        return current, journal.but(step="failed", reason=str(exc))
    save_current(model_dir, journal.target)
    log.info("finished the switch of %s to release %d", journal.model, journal.release_id)
    return journal.target, None


def status_at_start(
    journal: Journal | None, current: CurrentRelease, now: float
) -> tuple[DeviceModelStatus, Journal | None]:
    """The served release's status after a restart, and the journal as it must now read:
    a restart inside an open health window counts as a crash."""
    model, release_id = current.model, current.release_id
    if journal is not None and journal.target == current:
        if journal.step == "switched":
            counted = None
            if journal.window_end is not None and now < journal.window_end:
                counted = journal.but(crashes=journal.crashes + 1)
                log.warning(
                    "%s release %d: restart %d inside its health window",
                    model, release_id, counted.crashes,
                )  # fmt: skip
            status = status_entry(model, release_id, "active", None, False, journal.rollout_id)
            return status, counted
        if journal.step == "committed":
            return status_entry(model, release_id, "active", None, True, journal.rollout_id), None
    if journal is not None and journal.previous == current:
        if journal.step == "rolled_back":
            status = status_entry(
                model, journal.release_id, "rolled_back", journal.reason, False,
                journal.rollout_id,
            )  # fmt: skip
            return status, None
        return status_entry(
            model, release_id, "active", None, journal.previous_committed, None
        ), None
    return status_entry(model, release_id, "active", None, True, None), None
