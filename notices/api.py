"""The notices part of the REST API (API.md "notices")."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.models import Programme
from notices import permissions as perms
from notices import readability, services
from notices.models import NoticeVersion
from notices.presentation import notice_readability


class NoticeVersionListSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="number", read_only=True)
    programme = serializers.CharField(source="notice.programme.slug", read_only=True)
    published_by = serializers.CharField(
        source="published_by.username", read_only=True, default=None
    )

    class Meta:
        model = NoticeVersion
        fields = [
            "id",
            "programme",
            "version",
            "status",
            "created_at",
            "published_at",
            "published_by",
            "sha256",
        ]
        read_only_fields = fields


class SectionSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField(read_only=True)
    generated_text = serializers.CharField(read_only=True)
    local_text = serializers.CharField(allow_blank=True, max_length=services.LOCAL_TEXT_MAX)


class SectionReadabilitySerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    words = serializers.IntegerField()
    flesch_reading_ease = serializers.FloatField(allow_null=True)
    flesch_kincaid_grade = serializers.FloatField(allow_null=True)
    label = serializers.CharField()


class HardSentenceSerializer(serializers.Serializer):
    section = serializers.CharField()
    text = serializers.CharField()
    flesch_kincaid_grade = serializers.FloatField()


class ReadabilitySerializer(serializers.Serializer):
    """The score of what a patient reads first (the verbatim law left out)."""

    flesch_reading_ease = serializers.FloatField(allow_null=True)
    flesch_kincaid_grade = serializers.FloatField(allow_null=True)
    words = serializers.IntegerField()
    label = serializers.CharField()
    sections = SectionReadabilitySerializer(many=True)
    hardest_sentences = HardSentenceSerializer(many=True)


def _score(score) -> dict:
    if score is None:
        return {
            "flesch_reading_ease": None,
            "flesch_kincaid_grade": None,
            "words": 0,
            "label": readability.label(None),
        }
    found = score.as_dict()
    return {k: found[k] for k in ("flesch_reading_ease", "flesch_kincaid_grade", "words", "label")}


class NoticeVersionSerializer(NoticeVersionListSerializer):
    sections = SectionSerializer(many=True)
    changes = serializers.ListField(child=serializers.CharField(), read_only=True)
    withdrawn_by = serializers.CharField(
        source="withdrawn_by.username", read_only=True, default=None
    )
    readability = serializers.SerializerMethodField()

    class Meta(NoticeVersionListSerializer.Meta):
        fields = NoticeVersionListSerializer.Meta.fields + [
            "sections",
            "changes",
            "withdrawn_at",
            "withdrawn_by",
            "withdrawn_reason",
            "readability",
        ]
        read_only_fields = [f for f in fields if f != "sections"]

    @extend_schema_field(ReadabilitySerializer)
    def get_readability(self, version: NoticeVersion) -> dict:
        found = notice_readability(version.sections)
        return {
            **_score(found.score),
            "sections": [
                {"key": s.key, "title": s.title, **_score(s.score)} for s in found.sections
            ],
            "hardest_sentences": [
                {"section": h.section_key, "text": h.text, "flesch_kincaid_grade": h.score.grade}
                for h in found.hardest
            ],
        }


class CompletenessSerializer(serializers.Serializer):
    complete = serializers.BooleanField()
    missing = serializers.ListField(
        child=inline_serializer(
            "MissingItem", {"item": serializers.CharField(), "article": serializers.CharField()}
        )
    )


class PublishSerializer(serializers.Serializer):
    confirm_harder_to_read = serializers.BooleanField(
        default=False,
        help_text="Publish even though the draft reads harder than the version it replaces "
        "(without it, such a draft is a 409 naming both figures).",
    )


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ProgrammeNoticeViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The versions of a programme's notice; a DPO of a controller generates a new draft."""

    serializer_class = NoticeVersionListSerializer
    filterset_fields = ["status"]

    def get_programme(self) -> Programme:
        return get_object_or_404(Programme, slug=self.kwargs["programme_slug"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NoticeVersion.objects.none()
        programme = self.get_programme()
        qs = NoticeVersion.objects.filter(notice__programme=programme).select_related(
            "notice__programme", "published_by"
        )
        if not perms.can_read_drafts(self.request.user, programme):
            qs = qs.exclude(status=NoticeVersion.Status.DRAFT)
        return qs.order_by("-number")

    @extend_schema(
        request=None, responses={201: NoticeVersionSerializer, 200: NoticeVersionSerializer}
    )
    def create(self, request, *args, **kwargs):
        """Generate a draft from the programme's governance data (or refresh the open draft)."""
        programme = perms.get_programme_for_editor(request.user, self.kwargs["programme_slug"])
        version, created = services.notice_draft_generate(actor=request.user, programme=programme)
        return Response(
            NoticeVersionSerializer(version, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class NoticeVersionViewSet(
    mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """One version of a notice: read, edit its local wording (drafts), check, publish, withdraw."""

    serializer_class = NoticeVersionSerializer
    queryset = NoticeVersion.objects.all()
    http_method_names = ["get", "patch", "post", "head", "options"]

    def get_object(self):
        edit = self.request.method not in ("GET", "HEAD", "OPTIONS")
        try:
            pk = int(self.kwargs["pk"])
        except ValueError:
            raise Http404("No such notice version.") from None
        return perms.get_version_for_user(self.request.user, pk, edit=edit)

    def partial_update(self, request, *args, **kwargs):
        """Set the local wording of sections: {"sections": [{"key", "local_text"}]}."""
        version = self.get_object()
        serializer = NoticeVersionSerializer(version, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        sections = serializer.validated_data.get("sections")
        if not sections:
            return Response(
                {"sections": ["Give the local wording of at least one section."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        version = services.notice_version_update(
            actor=request.user,
            version=version,
            local_texts={s["key"]: s["local_text"] for s in sections},
        )
        return Response(NoticeVersionSerializer(version).data)

    @extend_schema(responses=CompletenessSerializer)
    @action(detail=True, methods=["get"])
    def completeness(self, request, pk=None):
        """What UK GDPR Articles 13 and 14 require that this version does not say yet."""
        missing = services.notice_version_missing(self.get_object())
        return Response({"complete": not missing, "missing": missing})

    @extend_schema(
        request=PublishSerializer,
        responses={
            200: NoticeVersionSerializer,
            409: OpenApiResponse(
                inline_serializer(
                    "NoticeNotPublished",
                    {
                        "detail": serializers.CharField(),
                        "missing": serializers.ListField(
                            child=serializers.DictField(), required=False
                        ),
                        "readability": inline_serializer(
                            "HarderToRead",
                            {
                                "replaces": serializers.IntegerField(),
                                "before": serializers.DictField(),
                                "after": serializers.DictField(),
                            },
                            required=False,
                        ),
                    },
                ),
                description="Not a draft, out of date, incomplete (with the missing items), or "
                "harder to read than the version it replaces and not confirmed (with both "
                "figures: send confirm_harder_to_read to publish it anyway).",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        """Publish the draft; 409 if incomplete, or harder to read and not confirmed."""
        version = self.get_object()
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = services.notice_version_publish(
                actor=request.user,
                version=version,
                harder_to_read_confirmed=body.validated_data["confirm_harder_to_read"],
            )
        except services.NoticeIncomplete as exc:
            return Response(
                {"detail": exc.message, "missing": exc.details}, status=status.HTTP_409_CONFLICT
            )
        except services.NoticeHarderToRead as exc:
            return Response(
                {"detail": exc.message, "readability": exc.details},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(NoticeVersionSerializer(version).data)

    @extend_schema(request=WithdrawSerializer, responses=NoticeVersionSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """Withdraw a published version, saying why."""
        version = self.get_object()
        serializer = WithdrawSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.notice_version_withdraw(
            actor=request.user, version=version, reason=serializer.validated_data["reason"]
        )
        return Response(NoticeVersionSerializer(version).data)
