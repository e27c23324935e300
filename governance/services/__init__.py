"""Every write of the governance app: plain functions that validate, save and audit.

Split by subject; `from governance import services` then `services.<thing>_<verb>(...)`
works for all of them.
"""

from __future__ import annotations

from governance.services.api_tokens import (
    api_token_issue,
    api_token_mark_used,
    api_token_revoke,
    api_tokens_revoke_all,
)
from governance.services.assurance import (
    dpia_create,
    dpia_record_dpo_advice,
    dpia_sign_off,
    dpia_start_review,
    dpia_update,
    sharing_agreement_create,
    sharing_agreement_sign,
    sharing_agreement_update,
)
from governance.services.core import (
    ORGANISATION_FIELDS,
    PROGRAMME_FIELDS,
    organisation_create,
    organisation_update,
    participation_add,
    participation_remove,
    programme_create,
    programme_go_live,
    programme_update,
    programmes_mark_ended,
    set_password_path,
    user_bind,
    user_create,
)
from governance.services.data_flows import (
    DATA_FLOW_FIELDS,
    data_flow_approve,
    data_flow_close,
    data_flow_create,
    data_flow_reinstate,
    data_flow_reject,
    data_flow_request_reinstatement,
    data_flow_submit,
    data_flow_suspend,
    data_flow_update,
)

__all__ = [
    "DATA_FLOW_FIELDS",
    "ORGANISATION_FIELDS",
    "PROGRAMME_FIELDS",
    "api_token_issue",
    "api_token_mark_used",
    "api_token_revoke",
    "api_tokens_revoke_all",
    "data_flow_approve",
    "data_flow_close",
    "data_flow_create",
    "data_flow_reinstate",
    "data_flow_reject",
    "data_flow_request_reinstatement",
    "data_flow_submit",
    "data_flow_suspend",
    "data_flow_update",
    "dpia_create",
    "dpia_record_dpo_advice",
    "dpia_sign_off",
    "dpia_start_review",
    "dpia_update",
    "organisation_create",
    "organisation_update",
    "participation_add",
    "participation_remove",
    "programme_create",
    "programme_go_live",
    "programme_update",
    "programmes_mark_ended",
    "set_password_path",
    "sharing_agreement_create",
    "sharing_agreement_sign",
    "sharing_agreement_update",
    "user_bind",
    "user_create",
]
