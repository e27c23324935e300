"""DPIAs and data sharing agreements (API.md "assurance"): read, draft, advise, sign.

A document travels either as base64 inside the JSON body (`document`, with
`document_name`), so a DPIA, its risks and a small PDF are one request (the JSON body is
limited to Django's DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB), or as a file of its own:
`POST .../{id}/document/` multipart with `file` (up to 20 MB). It comes back as the PDF
itself from `GET .../{id}/document/`.
"""

from __future__ import annotations

import base64
import binascii

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from governance import permissions as perms
from governance import services
from governance.models import (
    DPIA,
    DPIARisk,
    LegalBasis,
    Organisation,
    Programme,
    SharingAgreement,
)
from phm_portal.rest import MultiPartParser

DOCUMENT_HELP = (
    "The signed document: the bytes of a PDF, base64-encoded (RFC 4648); the whole JSON body "
    "is at most 2.5 MB, so send a larger PDF (up to 20 MB) as a file to POST "
    ".../{id}/document/. Anything that is not a whole PDF is refused (400 naming `document`). "
    "Written only; read it back from GET .../{id}/document/."
)


class Base64PDFField(serializers.Field):
    """Bytes from a base64 string; whether they are a PDF is the service's to decide."""

    default_error_messages = {"invalid": "The document is base64-encoded bytes of a PDF."}

    def __init__(self, **kwargs):
        kwargs.setdefault("write_only", True)
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", DOCUMENT_HELP)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> bytes:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            self.fail("invalid")

    def to_representation(self, value) -> str:  # never read back (write_only)
        return ""


extend_schema_field(OpenApiTypes.BYTE)(Base64PDFField)


class FlowIdsField(serializers.ListField):
    """Written: flow ids (the service checks they are the programme's). Read: the ids covered."""

    child = serializers.IntegerField(min_value=1, max_value=2**63 - 1)

    def to_representation(self, value) -> list[int]:
        return sorted(f.pk for f in value.all())


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "organisation": {"type": "string"},
                "name": {"type": "string"},
                "signatory": {"type": "string", "nullable": True},
                "signed_on": {"type": "string", "format": "date", "nullable": True},
            },
        },
    },
    component_name="AgreementParties",
)
class PartiesField(serializers.ListField):
    """Written: the parties' ODS codes. Read: each party, its signatory and when they signed."""

    child = serializers.CharField(max_length=9)

    def to_representation(self, value) -> list[dict]:
        return [
            {
                "organisation": p.organisation.ods_code,
                "name": p.organisation.name,
                "signatory": p.signatory.username if p.signatory_id else None,
                "signed_on": p.signed_on.isoformat() if p.signed_on else None,
            }
            for p in value.select_related("organisation", "signatory")
        ]


class DocumentFieldsMixin(serializers.Serializer):
    document = Base64PDFField()
    document_name = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="e.g. dpia-v1.pdf"
    )
    has_document = serializers.BooleanField(read_only=True)
    document_sha256 = serializers.CharField(read_only=True)


class ProgrammeFilter(django_filters.FilterSet):
    programme = django_filters.CharFilter(field_name="programme__slug", label="programme slug")


# --- DPIAs -----------------------------------------------------------------------------------
class DPIARiskSerializer(serializers.ModelSerializer):
    class Meta:
        model = DPIARisk
        fields = ["description", "likelihood", "severity", "measure"]


class SignOffSerializer(serializers.Serializer):
    organisation = serializers.CharField(source="organisation.ods_code")
    signatory = serializers.CharField(source="signatory.username")
    signed_at = serializers.DateTimeField()


class DPIASerializer(DocumentFieldsMixin, serializers.ModelSerializer):
    programme = serializers.SlugRelatedField(slug_field="slug", queryset=Programme.objects.all())
    data_flows = FlowIdsField(
        required=False, help_text="Ids of the programme's flows the DPIA covers."
    )
    risks = DPIARiskSerializer(many=True, required=False)
    sign_offs = SignOffSerializer(many=True, read_only=True)
    awaiting_sign_off = serializers.SerializerMethodField(
        help_text="ODS codes of the controllers that have not signed off yet."
    )
    # Null until the DPO advises; null too once its author's account is deleted.
    dpo_advice_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = DPIA
        fields = [
            "id",
            "programme",
            "title",
            "version",
            "status",
            "description",
            "necessity",
            "risks",
            "residual_risk",
            "ico_consulted_on",
            "ico_consultation_outcome",
            "review_date",
            "data_flows",
            "dpo_advice",
            "dpo_advice_followed",
            "dpo_advice_not_followed_reason",
            "dpo_advice_by",
            "dpo_advice_at",
            "sign_offs",
            "awaiting_sign_off",
            "signed_off_at",
            "document",
            "document_name",
            "has_document",
            "document_sha256",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "status",
            "dpo_advice",
            "dpo_advice_followed",
            "dpo_advice_not_followed_reason",
            "dpo_advice_at",
            "signed_off_at",
            "created_at",
            "updated_at",
        ]

    def get_awaiting_sign_off(self, dpia: DPIA) -> list[str]:
        signed = {s.organisation_id for s in dpia.sign_offs.all()}
        return [
            o.ods_code
            for o in perms.controllers_of(dpia.programme).order_by("ods_code")
            if o.pk not in signed
        ]


class DPOAdviceSerializer(serializers.Serializer):
    advice = serializers.CharField(max_length=10000, help_text="The DPO's advice.")
    followed = serializers.BooleanField(help_text="Whether the advice was followed.")
    not_followed_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=10000, help_text="Required when not followed."
    )


class OrganisationChoiceSerializer(serializers.Serializer):
    organisation = serializers.SlugRelatedField(
        slug_field="ods_code",
        queryset=Organisation.objects.all(),
        help_text="ODS code of the organisation you sign for (one you are bound to).",
    )


class AgreementSignSerializer(OrganisationChoiceSerializer):
    signed_on = serializers.DateField(
        required=False, help_text="The day it was signed; today when left out."
    )


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="The PDF (at most 20 MB); its file name becomes the document's name."
    )


def _document_upload(request) -> tuple[bytes, str]:
    body = DocumentUploadSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    upload = body.validated_data["file"]
    return upload.read(), upload.name


def _document_response(obj) -> HttpResponse:
    from django.http import Http404

    if not obj.has_document:
        raise Http404("No document is attached.")
    response = HttpResponse(bytes(obj.document), content_type="application/pdf")
    name = (obj.document_name or "document.pdf").replace('"', "")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


DOCUMENT_SCHEMA = {
    (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
}


def _flow_ids(data: dict) -> list[int] | None:
    return data.pop("data_flows", None)


class _AssuranceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    filterset_class = ProgrammeFilter
    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_regex = "[0-9]+"

    def _answer(self, obj, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_object_by_pk(obj.pk)).data, status=code)

    def get_object(self):
        return self.get_object_by_pk(self.kwargs["pk"])


class DPIAViewSet(_AssuranceViewSet):
    """DPIAs: read by CSU admins, auditors and the programme's participants; drafted by a CSU
    admin or a controller's DPO; advised on by a controller's DPO; signed off by each
    controller's signatory."""

    serializer_class = DPIASerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DPIA.objects.none()
        return (
            perms.dpias_visible_to(self.request.user)
            .select_related("programme", "dpo_advice_by", "created_by")
            .prefetch_related(
                "risks", "data_flows", "sign_offs__organisation", "sign_offs__signatory"
            )
            .order_by("pk")
        )

    def get_object_by_pk(self, pk) -> DPIA:
        return perms.get_dpia_for_user(self.request.user, pk)

    def create(self, request, *args, **kwargs):
        perms.require(request.user, "draft_assurance")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        dpia = services.dpia_create(
            actor=request.user,
            programme=data["programme"],
            title=data["title"],
            description=data["description"],
            necessity=data["necessity"],
            review_date=data["review_date"],
            version=data.get("version", "1.0"),
            residual_risk=data.get("residual_risk", DPIA.ResidualRisk.LOW),
            data_flow_ids=_flow_ids(data) or (),
            risks=[dict(r) for r in data.get("risks", [])],
            ico_consulted_on=data.get("ico_consulted_on"),
            ico_consultation_outcome=data.get("ico_consultation_outcome", ""),
            document=data.get("document"),
            document_name=data.get("document_name", ""),
        )
        return self._answer(dpia, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        dpia = self.get_object()
        perms.require_may_draft_dpia(request.user, dpia.programme)  # before the body is read
        serializer = self.get_serializer(dpia, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "programme" in data and data.pop("programme") != dpia.programme:
            from phm_portal.errors import InvalidInput

            raise InvalidInput("A DPIA's programme does not change.", field="programme")
        risks = data.pop("risks", None)
        flow_ids = _flow_ids(data)
        document, document_name = data.pop("document", None), data.pop("document_name", "")
        dpia = services.dpia_update(
            actor=request.user,
            dpia=dpia,
            data=data,
            risks=[dict(r) for r in risks] if risks is not None else None,
            data_flow_ids=flow_ids,
            document=document,
            document_name=document_name,
        )
        return self._answer(dpia)

    @extend_schema(request=DPOAdviceSerializer, responses=DPIASerializer)
    @action(detail=True, methods=["post"], url_path="dpo-advice")
    def dpo_advice(self, request, pk=None):
        """Record the DPO's advice (a DPO of a controller): draft -> DPO advice recorded."""
        dpia = self.get_object()
        # Who may act is checked before the body is read: above one's role is a 403 whatever
        # was sent (the service checks again).
        perms.require_dpo_of_controller(request.user, dpia.programme)
        body = DPOAdviceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dpia = services.dpia_record_dpo_advice(
            actor=request.user,
            dpia=dpia,
            advice=body.validated_data["advice"],
            followed=body.validated_data["followed"],
            not_followed_reason=body.validated_data.get("not_followed_reason", ""),
        )
        return self._answer(dpia)

    @extend_schema(request=OrganisationChoiceSerializer, responses=DPIASerializer)
    @action(detail=True, methods=["post"], url_path="sign-off")
    def sign_off(self, request, pk=None):
        """Sign off for one controller (its signatory); signed off once every controller has."""
        dpia = self.get_object()
        perms.require(request.user, "sign_assurance")
        body = OrganisationChoiceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dpia = services.dpia_sign_off(
            actor=request.user, dpia=dpia, organisation=body.validated_data["organisation"]
        )
        return self._answer(dpia)

    @extend_schema(request=None, responses=DPIASerializer)
    @action(detail=True, methods=["post"], url_path="start-review")
    def start_review(self, request, pk=None):
        """Open a signed-off DPIA for review: signed off -> under review."""
        dpia = services.dpia_start_review(actor=request.user, dpia=self.get_object())
        return self._answer(dpia)

    @extend_schema(methods=["GET"], responses=DOCUMENT_SCHEMA)
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": DocumentUploadSerializer},
        responses=DPIASerializer,
    )
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser])
    def document(self, request, pk=None):
        """GET: download the DPIA's PDF (404 when none is attached). POST: attach the PDF as
        `file` (multipart): in draft or under review, or the first one whatever the state."""
        dpia = self.get_object()
        if request.method == "GET":
            return _document_response(dpia)
        perms.require_may_draft_dpia(request.user, dpia.programme)  # before the upload is read
        document, name = _document_upload(request)
        dpia = services.dpia_update(
            actor=request.user, dpia=dpia, data={}, document=document, document_name=name
        )
        return self._answer(dpia)


# --- data sharing agreements -------------------------------------------------------------------
class SharingAgreementSerializer(DocumentFieldsMixin, serializers.ModelSerializer):
    programme = serializers.SlugRelatedField(slug_field="slug", queryset=Programme.objects.all())
    parties = PartiesField(
        help_text="Written: the parties' ODS codes (each takes part in the programme). "
        "Read: each party with its signatory and the day they signed.",
    )
    legal_bases = serializers.SlugRelatedField(
        many=True, slug_field="code", queryset=LegalBasis.objects.all(), required=False
    )
    data_flows = FlowIdsField(
        required=False, help_text="Ids of the programme's flows the agreement covers."
    )
    fully_signed = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = SharingAgreement
        fields = [
            "id",
            "programme",
            "title",
            "reference",
            "version",
            "purpose",
            "legal_bases",
            "parties",
            "fully_signed",
            "data_flows",
            "start_date",
            "review_date",
            "expiry_date",
            "document",
            "document_name",
            "has_document",
            "document_sha256",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # The dates' order is checked by the service (naming the date out of order).
        validators: list = []

    def get_fully_signed(self, agreement: SharingAgreement) -> bool:
        parties = list(agreement.parties.all())
        return bool(parties) and all(p.is_signed for p in parties)


def _require_may_change_agreement(user, agreement: SharingAgreement) -> None:
    parties = [p.organisation for p in agreement.parties.select_related("organisation")]
    perms.require_may_draft_agreement(user, agreement.programme, parties)


class SharingAgreementViewSet(_AssuranceViewSet):
    """Data sharing agreements: read like DPIAs; recorded by a CSU admin or a party's DPO
    (changed only until someone signs); signed by each party's signatory."""

    serializer_class = SharingAgreementSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SharingAgreement.objects.none()
        return (
            perms.agreements_visible_to(self.request.user)
            .select_related("programme", "created_by")
            .prefetch_related("legal_bases", "data_flows", "parties")
            .order_by("pk")
        )

    def get_object_by_pk(self, pk) -> SharingAgreement:
        return perms.get_sharing_agreement_for_user(self.request.user, pk)

    def create(self, request, *args, **kwargs):
        perms.require(request.user, "draft_assurance")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        agreement = services.sharing_agreement_create(
            actor=request.user,
            programme=data["programme"],
            title=data["title"],
            purpose=data["purpose"],
            start_date=data["start_date"],
            review_date=data["review_date"],
            expiry_date=data["expiry_date"],
            party_ods_codes=data["parties"],
            version=data.get("version", "1.0"),
            reference=data.get("reference", ""),
            legal_basis_codes=[b.code for b in data.get("legal_bases", [])],
            data_flow_ids=_flow_ids(data) or (),
            document=data.get("document"),
            document_name=data.get("document_name", ""),
        )
        return self._answer(agreement, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        agreement = self.get_object()
        _require_may_change_agreement(request.user, agreement)  # before the body is read
        serializer = self.get_serializer(agreement, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "programme" in data and data.pop("programme") != agreement.programme:
            from phm_portal.errors import InvalidInput

            raise InvalidInput("An agreement's programme does not change.", field="programme")
        bases = data.pop("legal_bases", None)
        parties, flow_ids = data.pop("parties", None), _flow_ids(data)
        document, document_name = data.pop("document", None), data.pop("document_name", "")
        agreement = services.sharing_agreement_update(
            actor=request.user,
            agreement=agreement,
            data=data,
            party_ods_codes=parties,
            legal_basis_codes=[b.code for b in bases] if bases is not None else None,
            data_flow_ids=flow_ids,
            document=document,
            document_name=document_name,
        )
        return self._answer(agreement)

    @extend_schema(request=AgreementSignSerializer, responses=SharingAgreementSerializer)
    @action(detail=True, methods=["post"])
    def sign(self, request, pk=None):
        """Sign for one party (a signatory bound to it), once."""
        agreement = self.get_object()
        perms.require(request.user, "sign_assurance")
        body = AgreementSignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        agreement = services.sharing_agreement_sign(
            actor=request.user,
            agreement=agreement,
            organisation=body.validated_data["organisation"],
            signed_on=body.validated_data.get("signed_on"),
        )
        return self._answer(agreement)

    @extend_schema(methods=["GET"], responses=DOCUMENT_SCHEMA)
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": DocumentUploadSerializer},
        responses=SharingAgreementSerializer,
    )
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser])
    def document(self, request, pk=None):
        """GET: download the agreement's PDF (404 when none is attached). POST: attach the
        PDF as `file` (multipart): before anyone signs, or the first one once signed."""
        agreement = self.get_object()
        if request.method == "GET":
            return _document_response(agreement)
        _require_may_change_agreement(request.user, agreement)  # before the upload is read
        document, name = _document_upload(request)
        agreement = services.sharing_agreement_update(
            actor=request.user,
            agreement=agreement,
            data={},
            document=document,
            document_name=name,
        )
        return self._answer(agreement)
