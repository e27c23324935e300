"""The datasets part of the REST API (API.md "datasets")."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets import permissions as perms
from datasets import selectors, services
from datasets.models import Dataset, Job
from datasets.uploads import EncryptedUpload, EncryptingUploadHandler
from governance import permissions as governance_perms
from governance.models import Programme
from phm_portal.errors import InvalidInput
from phm_portal.rest import JSONParser, MultiPartParser


class DatasetSerializer(serializers.ModelSerializer):
    data_flow = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "data_flow",
            "original_name",
            "columns",
            "mapping",
            "sha256",
            "bytes",
            "status",
            "uploaded_at",
        ]


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    data_flow = serializers.IntegerField()
    mapping = serializers.CharField(
        help_text="JSON: nhs_number, practice, drop[], generalise[{column, rule}]"
    )


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DatasetSerializer
    filterset_fields = ["data_flow", "status"]
    parser_classes = [MultiPartParser, JSONParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Dataset.objects.none()
        return perms.datasets_of(self.request.user)

    def get_object(self):
        return perms.get_dataset_for_user(self.request.user, self.kwargs["pk"])

    def initialize_request(self, request, *args, **kwargs):
        # Before anything reads the body: encrypt the upload as it streams in.
        if request.method == "POST" and self.action_map.get("post") == "create":
            request.upload_handlers = [EncryptingUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={201: DatasetSerializer, 409: OpenApiTypes.OBJECT, 413: OpenApiTypes.OBJECT},
    )
    def create(self, request, *args, **kwargs):
        """Upload an extract (CSV) on an approved flow; it is stored encrypted."""
        upload = request.FILES.get("file") if "file" in request.FILES else None
        handler = next(
            (h for h in request._request.upload_handlers if isinstance(h, EncryptingUploadHandler)),
            None,
        )
        if handler is not None and handler.upload is not None and handler.upload.too_large:
            return Response(
                {"file": [f"The file is larger than the limit of {handler.limit:,} bytes."]},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            if not isinstance(upload, EncryptedUpload):
                raise ValidationError(
                    {"file": ["Attach the extract as the multipart field `file`."]}
                )
            errors = {}
            if "data_flow" not in request.data:
                errors["data_flow"] = ["Name the approved data flow the extract arrives on."]
            if "mapping" not in request.data:
                errors["mapping"] = ["Give the mapping (JSON) of the extract's columns."]
            if errors:
                raise ValidationError(errors)
            flow = perms.get_flow_for_upload(request.user, request.data["data_flow"])
            mapping = services.mapping_from_request(request.data["mapping"])
            dataset = services.dataset_upload(
                actor=request.user, data_flow=flow, upload=upload, mapping=mapping
            )
        finally:
            if isinstance(upload, EncryptedUpload):
                upload.discard()
        return Response(
            {
                "id": str(dataset.id),
                "sha256": dataset.sha256,
                "bytes": dataset.bytes,
                "status": dataset.status,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=None,
        responses={202: inline_serializer("JobQueued", {"job": serializers.UUIDField()})},
    )
    @action(detail=True, methods=["post"])
    def pseudonymise(self, request, pk=None):
        """Queue the pseudonymisation of the extract; asking again returns the active job."""
        governance_perms.require(request.user, "run_pseudonymisation")
        dataset = self.get_object()
        job = services.dataset_pseudonymise(actor=request.user, dataset=dataset)
        return Response({"job": str(job.pk)}, status=status.HTTP_202_ACCEPTED)


class JobSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    progress = serializers.SerializerMethodField()
    waiting_for_queue = serializers.BooleanField(
        read_only=True,
        help_text="Queued, but the task queue could not be reached yet: the job is kept and "
        "starts by itself once the queue is back.",
    )
    note = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "dataset",
            "status",
            "waiting_for_queue",
            "note",
            "progress",
            "rows_in",
            "rows_out",
            "excluded",
            "invalid_rows",
            "started_at",
            "finished_at",
            "error",
            "cancel_requested",
        ]

    def get_progress(self, job: Job) -> float:
        return selectors.job_progress(job)

    def get_note(self, job: Job) -> str:
        """What the job is waiting for, in words (empty when nothing to say)."""
        return Job.WAITING_FOR_QUEUE if job.waiting_for_queue else ""


class JobViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer
    queryset = Job.objects.none()

    def get_object(self):
        return perms.get_job_for_user(self.request.user, self.kwargs["pk"])

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an active job (CSU admin)."""
        governance_perms.require(request.user, "run_pseudonymisation")
        job = services.job_cancel(actor=request.user, job=self.get_object())
        return Response(JobSerializer(job).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def output(self, request, pk=None):
        """Stream the pseudonymised CSV (the flow's destination, or a CSU admin)."""
        job = perms.get_job_for_user(request.user, pk, output=True)
        chunks = services.job_output(job=job)
        first = next(chunks, b"")  # errors (destroyed, not ready) surface before streaming starts

        def stream():
            yield first
            yield from chunks

        response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="pseudonymised-{job.pk}.csv"'
        return response


class ReidentifyRequest(serializers.Serializer):
    programme = serializers.SlugField()
    codes = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=10000, allow_empty=False
    )


class Reidentify(APIView):
    @extend_schema(
        request=ReidentifyRequest,
        responses=inline_serializer(
            "Reidentified",
            {
                "results": serializers.ListField(child=serializers.DictField()),
                "not_found": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request, ods_code: str):
        """Return the NHS numbers behind codes, for this practice's own patients only."""
        practice = governance_perms.get_organisation_for_user(
            request.user, ods_code, capability="reidentify"
        )
        body = ReidentifyRequest(data=request.data)
        body.is_valid(raise_exception=True)
        programme = Programme.objects.filter(slug=body.validated_data["programme"]).first()
        if programme is None or not practice.participations.filter(programme=programme).exists():
            raise InvalidInput(
                "Your practice takes part in no programme of that name.", field="programme"
            )
        results, not_found = services.reidentify(
            actor=request.user,
            practice=practice,
            programme=programme,
            codes=body.validated_data["codes"],
        )
        return Response({"results": results, "not_found": not_found})
