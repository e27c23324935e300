"""The audit log endpoints of the REST API."""

from __future__ import annotations

import datetime

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from phm_portal import audit_checkpoints
from phm_portal.audit import audit_verify
from phm_portal.models import AuditEvent


class CanReadAudit(permissions.BasePermission):
    message = "Only auditors and CSU admins may read the audit log."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.can("read_audit"))


class AuditEventSerializer(serializers.ModelSerializer):
    object = serializers.CharField(source="object_label")

    class Meta:
        model = AuditEvent
        fields = ["seq", "at", "actor", "action", "object", "object_repr", "details", "hash"]


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time, compared in UTC.

    Any offset the client gives is applied here: PostgreSQL refuses offsets beyond
    ±15:59, which ISO 8601 allows, and must not turn them into a server error.
    """

    def __init__(self, *args, param: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.param = param

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(datetime.UTC)
            except OverflowError:
                raise ValidationError({self.param: ["The date is out of range."]}) from None
        return super().filter(qs, value)


class AuditFilter(django_filters.FilterSet):
    action = django_filters.CharFilter()
    actor = django_filters.CharFilter()
    object = django_filters.CharFilter(method="filter_object", label="object (type:id)")
    since = UTCDateTimeFilter(field_name="at", lookup_expr="gte", param="since")
    until = UTCDateTimeFilter(field_name="at", lookup_expr="lte", param="until")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor"]

    def filter_object(self, queryset, name, value):
        object_type, _, object_id = value.partition(":")
        queryset = queryset.filter(object_type=object_type)
        return queryset.filter(object_id=object_id) if object_id else queryset


class AuditEventList(generics.ListAPIView):
    """The audit log, newest first."""

    permission_classes = [CanReadAudit]
    serializer_class = AuditEventSerializer
    filterset_class = AuditFilter
    queryset = AuditEvent.objects.order_by("-seq")


class AuditVerify(APIView):
    permission_classes = [CanReadAudit]

    @extend_schema(
        responses=inline_serializer(
            "AuditVerification",
            {
                "valid": serializers.BooleanField(),
                "events": serializers.IntegerField(),
                "first_bad_seq": serializers.IntegerField(allow_null=True),
                "reason": serializers.CharField(),
                "append_only": serializers.BooleanField(),
                "checkpoints": serializers.IntegerField(),
                "checkpoint": inline_serializer(
                    "AuditCheckpointRef",
                    {
                        "name": serializers.CharField(),
                        "seq": serializers.IntegerField(),
                        "at": serializers.DateTimeField(),
                    },
                    allow_null=True,
                ),
                "checkpoint_problems": inline_serializer(
                    "AuditCheckpointProblem",
                    {"checkpoint": serializers.CharField(), "problem": serializers.CharField()},
                    many=True,
                ),
            },
        )
    )
    def get(self, request):
        """Check the hash chain and every signed checkpoint; name the first event that differs."""
        report = audit_verify()
        return Response(
            {
                "valid": report.valid,
                "events": report.events,
                "first_bad_seq": report.first_bad_seq,
                "reason": report.reason,
                "append_only": report.append_only,
                "checkpoints": report.checkpoints,
                "checkpoint": report.checkpoint,
                "checkpoint_problems": list(report.checkpoint_problems),
            }
        )


_CHECKPOINT = inline_serializer(
    "AuditCheckpoint",
    {
        "name": serializers.CharField(),
        "usable": serializers.BooleanField(),
        "problem": serializers.CharField(),
        "format": serializers.CharField(),
        "seq": serializers.IntegerField(),
        "hash": serializers.CharField(),
        "at": serializers.DateTimeField(),
        "reason": serializers.CharField(),
        "from_seq": serializers.IntegerField(),
        "hashes_sha256": serializers.CharField(),
        "certificate_fingerprint": serializers.CharField(),
        "signature": serializers.DictField(),
    },
    many=True,
)


class AuditCheckpointList(APIView):
    """The signed checkpoints of the audit chain, newest first: each statement and signature."""

    permission_classes = [CanReadAudit]

    @extend_schema(
        responses=inline_serializer(
            "PaginatedAuditCheckpointList",
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": _CHECKPOINT,
            },
        )
    )
    def get(self, request):
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        names = list(reversed(audit_checkpoints.checkpoint_names()))
        page = paginator.paginate_queryset(names, request, view=self)
        trusted = audit_checkpoints.trusted_certificates() if page else {}
        items = []
        for name in page:
            try:
                checkpoint = audit_checkpoints.checkpoint_read(name)
            except audit_checkpoints.CheckpointUnusable as exc:
                items.append({"name": name, "usable": False, "problem": str(exc)})
                continue
            try:
                audit_checkpoints.checkpoint_check(checkpoint, trusted)
                usable, problem = True, ""
            except audit_checkpoints.CheckpointUnusable as exc:
                usable, problem = False, str(exc)
            items.append({**checkpoint.summary(), "usable": usable, "problem": problem})
        return paginator.get_paginated_response(items)
