"""The governance pages, split by subject."""

from __future__ import annotations

from governance.views.core import (
    health,
    home,
    organisation_detail,
    organisation_list,
    programme_detail,
    programme_list,
    redirect_home,
    user_list,
)
from governance.views.data_flows import (
    data_flow_create,
    data_flow_detail,
    data_flow_edit,
    data_flow_list,
    data_flow_transition,
    record_of_processing_download,
)

__all__ = [
    "data_flow_create",
    "data_flow_detail",
    "data_flow_edit",
    "data_flow_list",
    "data_flow_transition",
    "health",
    "home",
    "organisation_detail",
    "organisation_list",
    "programme_detail",
    "programme_list",
    "record_of_processing_download",
    "redirect_home",
    "user_list",
]
