"""Every write of the destruction app: runs and their steps, certificates, signing key, reminders.

After pretix's shredder: a function says why destruction may not run yet; a manifest of
what will be destroyed is written before anything is destroyed; destruction happens in
transactions; audit events are never deleted.
"""

from __future__ import annotations

from destruction.services.keys import (
    signing_certificate_register,
    signing_identity,
    signing_key_init,
    signing_password,
)
from destruction.services.reminders import destruction_reminders_send
from destruction.services.runs import (
    StepBusy,
    destruction_run_execute,
    destruction_runs_resume,
    programme_destroy,
    programme_destruction_blocker,
)
from destruction.services.steps import (
    METHOD,
    StepFailed,
    certificate_document,
    certificate_render,
    certificate_serial,
    manifest_build,
    manifest_hash,
)

__all__ = [
    "METHOD",
    "StepBusy",
    "StepFailed",
    "certificate_document",
    "certificate_render",
    "certificate_serial",
    "destruction_reminders_send",
    "destruction_run_execute",
    "destruction_runs_resume",
    "manifest_build",
    "manifest_hash",
    "programme_destroy",
    "programme_destruction_blocker",
    "signing_certificate_register",
    "signing_identity",
    "signing_key_init",
    "signing_password",
]
