"""The governance part of the REST API (API.md "governance", "users"), split by subject."""

from __future__ import annotations

from governance.api.assurance import (
    DPIASerializer,
    DPIAViewSet,
    SharingAgreementSerializer,
    SharingAgreementViewSet,
)
from governance.api.core import (
    ApiTokenSerializer,
    ApiTokenViewSet,
    IsReaderOrManager,
    LegalBasisSerializer,
    LegalBasisViewSet,
    MeView,
    ObtainToken,
    OrganisationSerializer,
    OrganisationViewSet,
    ParticipantViewSet,
    ParticipationSerializer,
    ProgrammeSerializer,
    ProgrammeViewSet,
    UserSerializer,
    UserViewSet,
)
from governance.api.data_flows import (
    DataFlowSerializer,
    DataFlowViewSet,
    RecordOfProcessingView,
)

__all__ = [
    "ApiTokenSerializer",
    "ApiTokenViewSet",
    "DataFlowSerializer",
    "DataFlowViewSet",
    "DPIASerializer",
    "DPIAViewSet",
    "IsReaderOrManager",
    "LegalBasisSerializer",
    "LegalBasisViewSet",
    "MeView",
    "ObtainToken",
    "OrganisationSerializer",
    "OrganisationViewSet",
    "ParticipantViewSet",
    "ParticipationSerializer",
    "ProgrammeSerializer",
    "ProgrammeViewSet",
    "RecordOfProcessingView",
    "SharingAgreementSerializer",
    "SharingAgreementViewSet",
    "UserSerializer",
    "UserViewSet",
]
