"""The destruction part of the REST API (API.md "destruction")."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets import selectors as dataset_selectors
from destruction import permissions as perms
from destruction import selectors, services
from destruction.models import Certificate, DestructionRun
from phm_portal.errors import NotAllowedNow
from phm_portal.rest import MultiPartParser


class DestructionRequest(serializers.Serializer):
    early = serializers.BooleanField(
        default=False, help_text="Destroy before the programme's end date (needs a reason)."
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField(source="get_name_display")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    evidence = serializers.JSONField()


class RunSerializer(serializers.ModelSerializer):
    programme = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    steps = serializers.SerializerMethodField()
    certificate = serializers.SerializerMethodField()

    class Meta:
        model = DestructionRun
        fields = [
            "id",
            "programme",
            "status",
            "early",
            "reason",
            "requested_by",
            "requested_at",
            "started_at",
            "destroyed_at",
            "finished_at",
            "manifest_sha256",
            "error",
            "steps",
            "certificate",
        ]

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, run: DestructionRun) -> list[dict]:
        return StepSerializer(run.steps.order_by("index"), many=True).data

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_certificate(self, run: DestructionRun) -> str | None:
        certificate = Certificate.objects.filter(run=run).only("serial").first()
        return certificate.serial if certificate else None


class ProgrammeDestruction(APIView):
    @extend_schema(
        request=DestructionRequest,
        responses={
            202: inline_serializer("DestructionQueued", {"run": serializers.IntegerField()})
        },
    )
    def post(self, request, slug: str):
        """Start (or resume) the destruction of the programme's data and keys (CSU admin)."""
        programme = perms.get_programme_for_destruction(request.user, slug)
        body = DestructionRequest(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = services.programme_destroy(
                actor=request.user,
                programme=programme,
                early=body.validated_data["early"],
                reason=body.validated_data.get("reason", ""),
            )
        except NotAllowedNow as refused:
            raise _naming_jobs(refused, programme) from None
        return Response({"run": run.pk}, status=status.HTTP_202_ACCEPTED)


# The refusal's code when queued or running jobs hold destruction (details.jobs names them).
JOBS_ACTIVE = "pseudonymisation_jobs_active"


def _naming_jobs(refused: NotAllowedNow, programme) -> NotAllowedNow:
    """Add the programme's active jobs to a refusal: which, and how to cancel each (409)."""
    jobs = dataset_selectors.programme_active_jobs(programme)
    if not jobs:
        return refused
    cancel = {job.pk: reverse("api-job-cancel", args=[job.pk]) for job in jobs}
    waiting = [job for job in jobs if not job.cancel_requested]
    message, code = refused.message, refused.code
    if any(f"job {job.pk}" in message for job in jobs):  # the jobs are what refused it
        code = JOBS_ACTIVE
        if waiting:
            message += " To cancel: " + "; ".join(f"POST {cancel[job.pk]}" for job in waiting)
            message += "."
    return NotAllowedNow(
        message,
        code=code,
        details={
            "jobs": [
                {
                    "id": str(job.pk),
                    "dataset": str(job.dataset_id),
                    "status": job.status,
                    "cancel_requested": job.cancel_requested,
                    "cancel": cancel[job.pk],
                }
                for job in jobs
            ]
        },
    )


class DestructionRunDetail(APIView):
    @extend_schema(responses=RunSerializer)
    def get(self, request, pk: int):
        """A run's status, each step's status and evidence, and its certificate's serial."""
        return Response(RunSerializer(perms.get_run_for_user(request.user, pk)).data)


class CertificateSerializer(serializers.ModelSerializer):
    programme = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    programme_name = serializers.CharField(source="programme.name", read_only=True)
    pdf = serializers.SerializerMethodField()

    class Meta:
        model = Certificate
        fields = [
            "serial",
            "programme",
            "programme_name",
            "run",
            "issued_at",
            "sha256",
            "signer_fingerprint",
            "pdf",
        ]

    def get_pdf(self, certificate: Certificate) -> str:
        return f"/api/v1/certificates/{certificate.serial}/pdf/"


# A certificate's serial (destruction.services.steps.certificate_serial): said in the
# schema, so that no client takes `verify` (the verification endpoint beside it) for one.
SERIAL = OpenApiParameter(
    "serial", str, OpenApiParameter.PATH, required=True, pattern=r"^PHM-DC-[0-9]{4}-[0-9]{6,}$"
)


class CertificateDetail(APIView):
    @extend_schema(responses=CertificateSerializer, parameters=[SERIAL])
    def get(self, request, serial: str):
        """A certificate's metadata (controllers, processors, CSU admins)."""
        return Response(
            CertificateSerializer(perms.get_certificate_for_user(request.user, serial)).data
        )


class CertificatePdf(APIView):
    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY}, parameters=[SERIAL])
    def get(self, request, serial: str):
        """The signed PDF of a certificate."""
        return pdf_response(perms.get_certificate_for_user(request.user, serial))


def pdf_response(certificate: Certificate) -> HttpResponse:
    response = HttpResponse(bytes(certificate.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{certificate.serial}.pdf"'
    return response


class VerifyUpload(serializers.Serializer):
    file = serializers.FileField()


class CertificateVerify(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": VerifyUpload},
        responses=inline_serializer(
            "CertificateVerification",
            {
                "valid": serializers.BooleanField(),
                "genuine": serializers.BooleanField(),
                "unmodified": serializers.BooleanField(),
                "serial": serializers.CharField(allow_null=True),
                "programme": serializers.CharField(allow_null=True),
                "programme_name": serializers.CharField(allow_null=True),
                "run": serializers.IntegerField(allow_null=True),
                "signed_by": serializers.CharField(allow_null=True),
                "signed_at": serializers.DateTimeField(allow_null=True),
                "reasons": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request):
        """Check a certificate PDF: genuine (this portal's key), unmodified, and whose (anyone)."""
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Attach the certificate PDF as the field `file`."]})
        # Too large (413) or not a readable PDF (400) come back as domain errors naming `file`.
        return Response(selectors.certificate_verify(data=upload.read()).as_dict())
