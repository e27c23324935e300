"""Data flows and their workflow, and the records of processing (API.md "governance")."""

from __future__ import annotations

import io

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import assurance, selectors, services
from governance import permissions as perms
from governance.models import DataFlow, LegalBasis, Organisation, Programme
from phm_portal.lib import csv_safe


class HistoryEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    details = serializers.DictField()


class DataFlowSerializer(serializers.ModelSerializer):
    programme = serializers.SlugRelatedField(slug_field="slug", queryset=Programme.objects.all())
    source = serializers.SlugRelatedField(
        slug_field="ods_code", queryset=Organisation.objects.all()
    )
    destination = serializers.SlugRelatedField(
        slug_field="ods_code", queryset=Organisation.objects.all()
    )
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataFlow.Category.choices), allow_empty=False
    )
    legal_bases = serializers.SlugRelatedField(
        many=True, slug_field="code", queryset=LegalBasis.objects.all(), required=False
    )
    source_name = serializers.CharField(source="source.name", read_only=True)
    destination_name = serializers.CharField(source="destination.name", read_only=True)
    is_approved = serializers.BooleanField(read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    submitted_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    suspended_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    closed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    reinstatement_requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = DataFlow
        fields = [
            "id",
            "programme",
            "source",
            "source_name",
            "destination",
            "destination_name",
            "data_categories",
            "identifiability",
            "legal_bases",
            "purpose",
            "dpia_reference",
            "dsa_reference",
            "status",
            "is_approved",
            "created_by",
            "created_at",
            "submitted_by",
            "submitted_at",
            "decided_by",
            "decided_at",
            "decision_comment",
            "suspended_by",
            "suspended_at",
            "suspension_reason",
            "reinstatement_requested_by",
            "reinstatement_requested_at",
            "closed_by",
            "closed_at",
            "updated_at",
        ]
        read_only_fields = [
            "status",
            "created_at",
            "submitted_at",
            "decided_at",
            "decision_comment",
            "suspended_at",
            "suspension_reason",
            "reinstatement_requested_at",
            "closed_at",
            "updated_at",
        ]


class AssuranceConditionSerializer(serializers.Serializer):
    condition = serializers.ChoiceField(
        choices=list(assurance.CONDITIONS.items()),
        help_text="dpia, sharing_agreement, source_dspt, destination_dspt, source_ico or "
        "destination_ico.",
    )
    holds = serializers.BooleanField()
    detail = serializers.CharField(help_text="What holds or fails, in words.")


class DataFlowDetailSerializer(DataFlowSerializer):
    history = serializers.SerializerMethodField()
    assurance = serializers.SerializerMethodField(
        help_text="Each condition the flow stands on, today: approving or reinstating it "
        "needs every one to hold."
    )

    class Meta(DataFlowSerializer.Meta):
        fields = [*DataFlowSerializer.Meta.fields, "assurance", "history"]

    @extend_schema_field(AssuranceConditionSerializer(many=True))
    def get_assurance(self, flow: DataFlow) -> list[dict]:
        return [c.as_dict() for c in assurance.flow_conditions(flow)]

    @extend_schema_field(HistoryEventSerializer(many=True))
    def get_history(self, flow: DataFlow) -> list[dict]:
        return HistoryEventSerializer(selectors.data_flow_history(flow), many=True).data


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Required: why."
    )


class DataFlowFilter(django_filters.FilterSet):
    programme = django_filters.CharFilter(field_name="programme__slug", label="programme slug")
    status = django_filters.ChoiceFilter(choices=DataFlow.Status.choices)
    source = django_filters.CharFilter(
        field_name="source__ods_code", lookup_expr="iexact", label="source ODS code"
    )
    destination = django_filters.CharFilter(
        field_name="destination__ods_code", lookup_expr="iexact", label="destination ODS code"
    )
    organisation = django_filters.CharFilter(
        method="either_end", label="ODS code of either end of the flow"
    )
    identifiability = django_filters.ChoiceFilter(choices=DataFlow.Identifiability.choices)

    class Meta:
        model = DataFlow
        fields = ["programme", "status", "source", "destination", "identifiability"]

    def either_end(self, queryset, name, value):
        value = value.strip().upper()
        return queryset.filter(source__ods_code=value) | queryset.filter(
            destination__ods_code=value
        )


class DataFlowViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Data flows: read by CSU admins and the two parties; drafted by a CSU admin or a DPO of the source."""

    filterset_class = DataFlowFilter
    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DataFlow.objects.none()
        return (
            perms.data_flows_visible_to(self.request.user)
            .select_related(*selectors.FLOW_RELATED, "suspended_by", "closed_by")
            .prefetch_related("legal_bases")
            .order_by("pk")
        )

    def get_serializer_class(self):
        return DataFlowSerializer if self.action == "list" else DataFlowDetailSerializer

    def get_object(self) -> DataFlow:
        return perms.get_data_flow_for_user(self.request.user, self.kwargs["pk"])

    def _answer(self, flow: DataFlow, code: int = status.HTTP_200_OK) -> Response:
        flow = perms.get_data_flow_for_user(self.request.user, flow.pk)
        return Response(DataFlowDetailSerializer(flow).data, status=code)

    def create(self, request, *args, **kwargs):
        perms.require(request.user, "create_data_flows")
        serializer = DataFlowSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        flow = services.data_flow_create(
            actor=request.user,
            programme=data["programme"],
            source=data["source"],
            destination=data["destination"],
            data_categories=data["data_categories"],
            identifiability=data["identifiability"],
            legal_basis_codes=[b.code for b in data.get("legal_bases", [])],
            purpose=data.get("purpose", ""),
            dpia_reference=data.get("dpia_reference", ""),
            dsa_reference=data.get("dsa_reference", ""),
        )
        return self._answer(flow, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        flow = self.get_object()
        serializer = DataFlowSerializer(flow, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        bases = data.pop("legal_bases", None)
        flow = services.data_flow_update(
            actor=request.user,
            flow=flow,
            data=data,
            legal_basis_codes=[b.code for b in bases] if bases is not None else None,
        )
        return self._answer(flow)

    def _transition(self, request, service, body_serializer=None, field: str | None = None):
        flow = self.get_object()
        kwargs = {}
        if body_serializer is not None:
            body = body_serializer(data=request.data)
            body.is_valid(raise_exception=True)
            kwargs[field] = body.validated_data.get(field, "")
        return self._answer(service(actor=request.user, flow=flow, **kwargs))

    @extend_schema(request=None, responses=DataFlowDetailSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Send a draft for a decision (its author only): draft -> submitted."""
        return self._transition(request, services.data_flow_submit)

    @extend_schema(request=CommentSerializer, responses=DataFlowDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve: a CSU admin who did not submit the flow (403 for the submitter), while
        every assurance condition holds: otherwise 409 with code "assurance_conditions_fail"
        and in `details` each condition that fails ({"condition", "holds", "detail"})."""
        return self._transition(request, services.data_flow_approve, CommentSerializer, "comment")

    @extend_schema(request=ReasonSerializer, responses=DataFlowDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject with a reason (400 naming `reason` without one): submitted -> rejected."""
        return self._transition(request, services.data_flow_reject, ReasonSerializer, "reason")

    @extend_schema(request=ReasonSerializer, responses=DataFlowDetailSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        """Stop data moving on an approved flow: approved -> suspended."""
        return self._transition(request, services.data_flow_suspend, ReasonSerializer, "reason")

    @extend_schema(request=CommentSerializer, responses=DataFlowDetailSerializer)
    @action(detail=True, methods=["post"], url_path="request-reinstatement")
    def request_reinstatement(self, request, pk=None):
        """Ask for a suspended flow to carry data again (a CSU admin), once every assurance
        condition holds (409 with code "assurance_conditions_fail" naming those that fail);
        another CSU admin then reinstates it."""
        return self._transition(
            request, services.data_flow_request_reinstatement, CommentSerializer, "comment"
        )

    @extend_schema(request=CommentSerializer, responses=DataFlowDetailSerializer)
    @action(detail=True, methods=["post"])
    def reinstate(self, request, pk=None):
        """Let data move again: suspended -> approved. A CSU admin other than the one who
        asked for it (403 for them; 409 "reinstatement_not_requested" before anyone asked),
        while every assurance condition holds (409 "assurance_conditions_fail")."""
        return self._transition(request, services.data_flow_reinstate, CommentSerializer, "comment")

    @extend_schema(request=CommentSerializer, responses=DataFlowDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """End the flow for good: approved or suspended -> closed."""
        return self._transition(request, services.data_flow_close, CommentSerializer, "comment")


# --- records of processing ---------------------------------------------------------
class RecordOfProcessingCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, dict) and "activities" in data:
            return selectors.record_of_processing_csv(data).encode("utf-8")
        # An error (403, 404): say it in CSV too.
        detail = data.get("detail", "") if isinstance(data, dict) else str(data)
        out = io.StringIO()
        csv_safe.writer(out).writerows([["detail"], [detail]])
        return out.getvalue().encode("utf-8")


class RecordOfProcessingView(APIView):
    """The organisation's record of processing as a controller (UK GDPR Article 30)."""

    renderer_classes = [JSONRenderer, RecordOfProcessingCSVRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=["json", "csv"],
                description="json (default) or csv",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="The record as CSV (`?format=csv`)."
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="controller, data_protection_officer, and one entry in activities "
                "per programme it controls: purposes, legal bases, categories of data subjects "
                "and of data, recipients, overseas transfers and safeguards, retention, erasure, "
                "security measures and the flows. As CSV: one row per activity.",
            ),
        },
    )
    def get(self, request, ods_code: str):
        """Return the record; DPOs of the organisation, CSU admins and auditors may read it."""
        organisation = perms.get_organisation_for_record_of_processing(request.user, ods_code)
        response = Response(selectors.record_of_processing(organisation))
        if (
            getattr(request, "accepted_renderer", None)
            and request.accepted_renderer.format == "csv"
        ):
            response["Content-Disposition"] = (
                f'attachment; filename="record-of-processing-{organisation.ods_code}.csv"'
            )
        return response
