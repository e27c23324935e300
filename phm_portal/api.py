"""The audit log endpoints of the REST API."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

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


class AuditFilter(django_filters.FilterSet):
    action = django_filters.CharFilter()
    actor = django_filters.CharFilter()
    object = django_filters.CharFilter(method="filter_object", label="object (type:id)")
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lte")

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
            },
        )
    )
    def get(self, request):
        """Recompute the hash chain and report the first broken link."""
        report = audit_verify()
        return Response(
            {
                "valid": report.valid,
                "events": report.events,
                "first_bad_seq": report.first_bad_seq,
                "reason": report.reason,
            }
        )
