"""The consent part of the REST API (API.md "consent")."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from consent import fhir, permissions, selectors, services
from consent.exports import type1_csv
from consent.files import national_submission
from consent.models import NationalOptOutCheck, Type1Event, Type1Request
from consent.reasons import OptOutReason
from consent.register_quota import RegisterQuotaExceeded
from governance.models import Programme
from phm_portal.errors import InvalidInput
from phm_portal.rest import JSONParser, MultiPartParser


def too_large(upload) -> Response | None:
    """Return a 413 answer for a file over the limit, or None."""
    limit = settings.PHM_OPT_OUT_FILE_MAX_BYTES
    if upload is not None and upload.size > limit:
        return Response(
            {"file": [f"The file is {upload.size} bytes; the limit is {limit} bytes."]},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return None


def read_upload(request, name: str, *, required: bool = True) -> tuple[bytes | None, str]:
    upload = request.FILES.get(name)
    if upload is None:
        if required:
            raise InvalidInput("Attach the file.", field=name)
        return None, ""
    if upload.size == 0:
        raise InvalidInput("The file is empty.", field=name)
    return upload.read(), upload.name or ""


# --- serializers ---------------------------------------------------------------------------
class Type1EventSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="code.snomed_ct")
    method = serializers.CharField(
        help_text="in_person, letter, phone, online, or not_recorded (imported)"
    )
    recorded_by = serializers.CharField(source="recorded_by.username")

    class Meta:
        model = Type1Event
        fields = ["id", "event", "code", "method", "recorded_on", "recorded_at", "recorded_by"]


class Type1StateSerializer(serializers.Serializer):
    nhs_number = serializers.CharField()
    status = serializers.ChoiceField(choices=["opted_out", "withdrawn"])
    since = serializers.DateField()
    history = Type1EventSerializer(many=True)


class Type1RecordSerializer(serializers.Serializer):
    nhs_number = serializers.CharField(help_text="10 digits; spaces allowed")
    event = serializers.ChoiceField(choices=Type1Event.Event.choices)
    method = serializers.ChoiceField(
        choices=[c for c in Type1Event.Method.choices if c[0] != "not_recorded"]
    )
    recorded_on = serializers.DateField(help_text="The day the patient asked")


class Type1RecordedSerializer(Type1EventSerializer):
    nhs_number = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    class Meta(Type1EventSerializer.Meta):
        fields = ["nhs_number", "status", *Type1EventSerializer.Meta.fields]

    def get_nhs_number(self, event) -> str:
        return selectors.nhs_number_of(event.patient)

    def get_status(self, event) -> str:
        return "opted_out" if event.event == Type1Event.Event.DISSENT else "withdrawn"


ImportReportSerializer = inline_serializer(
    "Type1ImportReport",
    {
        "id": serializers.IntegerField(allow_null=True),
        "lines": serializers.IntegerField(),
        "accepted": serializers.IntegerField(),
        "rejected": serializers.ListField(
            child=inline_serializer(
                "RejectedLine",
                {"line": serializers.IntegerField(), "error": serializers.CharField()},
            )
        ),
        "stored": serializers.BooleanField(),
    },
)
FileUploadSerializer = inline_serializer("Type1ImportUpload", {"file": serializers.FileField()})


def _state(event: Type1Event, number: str, history: list[Type1Event]) -> dict:
    return {
        "nhs_number": number,
        "status": "opted_out" if event.event == Type1Event.Event.DISSENT else "withdrawn",
        "since": event.recorded_on,
        "history": history,
    }


# --- Type 1 opt-outs of a practice ---------------------------------------------------------------
class Type1OptOutList(GenericAPIView):
    """The practice's Type 1 opt-outs: each patient's current state, with their history."""

    serializer_class = Type1StateSerializer
    queryset = Type1Event.objects.none()  # the practice's rows come from the selector

    @extend_schema(
        parameters=[
            OpenApiParameter("nhs_number", str, description="only this patient"),
            OpenApiParameter("status", str, enum=["opted_out", "withdrawn"]),
        ],
        responses=Type1StateSerializer(many=True),
    )
    def get(self, request, ods_code: str):
        practice = permissions.get_practice_for_user(request.user, ods_code)
        qs = selectors.type1_current(practice, status=request.query_params.get("status"))
        if request.query_params.get("nhs_number"):
            number = services.nhs_number_clean(
                request.query_params["nhs_number"], field="nhs_number"
            )
            patient = selectors.patient_by_nhs_number(number)
            qs = qs.filter(patient=patient) if patient else qs.none()
        page = self.paginate_queryset(qs)
        numbers = selectors.nhs_numbers_of(e.patient_id for e in page)
        history = selectors.type1_history(practice, numbers)
        rows = [_state(e, numbers[e.patient_id], history[e.patient_id]) for e in page]
        return self.get_paginated_response(Type1StateSerializer(rows, many=True).data)

    @extend_schema(request=Type1RecordSerializer, responses={201: Type1RecordedSerializer})
    def post(self, request, ods_code: str):
        """Record one dissent or withdrawal (409 for a withdrawal with no current dissent)."""
        practice = permissions.get_practice_for_user(request.user, ods_code)
        data = request.data
        event = services.type1_opt_out_record(
            actor=request.user,
            practice=practice,
            nhs_number=data.get("nhs_number"),
            event=data.get("event"),
            method=data.get("method"),
            recorded_on=data.get("recorded_on"),
        )
        return Response(Type1RecordedSerializer(event).data, status=status.HTTP_201_CREATED)


class Type1OptOutImport(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": FileUploadSerializer},
        parameters=[
            OpenApiParameter(
                "partial", bool, description="1: store the good lines even when some are bad"
            )
        ],
        responses={
            201: ImportReportSerializer,
            400: ImportReportSerializer,
            413: OpenApiTypes.OBJECT,
        },
    )
    def post(self, request, ods_code: str):
        """Import a CSV `nhs_number,event,recorded_on`: all or nothing unless ?partial=1."""
        practice = permissions.get_practice_for_user(request.user, ods_code)
        refused = too_large(request.FILES.get("file"))
        if refused:
            return refused
        data, name = read_upload(request, "file")
        report = services.type1_import(
            actor=request.user,
            practice=practice,
            data=data,
            filename=name,
            partial=request.query_params.get("partial") in ("1", "true", "yes"),
        )
        return Response(
            report.as_dict(),
            status=status.HTTP_201_CREATED if report.stored else status.HTTP_400_BAD_REQUEST,
        )


class Type1OptOutFhir(APIView):
    @extend_schema(responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT})
    def get(self, request, ods_code: str):
        """The practice's Type 1 opt-outs as a FHIR R4 Bundle of Consent resources."""
        practice = permissions.get_practice_for_user(request.user, ods_code)
        bundle, count = fhir.type1_bundle(practice)
        services.type1_export_logged(actor=request.user, practice=practice, what="fhir", rows=count)
        return Response(bundle, content_type="application/fhir+json")


class Type1OptOutExport(APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, ods_code: str):
        """The practice's current Type 1 states as CSV."""
        practice = permissions.get_practice_for_user(request.user, ods_code)
        text, count = type1_csv(practice)
        services.type1_export_logged(actor=request.user, practice=practice, what="csv", rows=count)
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="type1-opt-outs-{practice.ods_code}.csv"'
        )
        return response


# --- patients' online requests ---------------------------------------------------------------------
class Type1RequestSerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.CharField()
    submitted_at = serializers.DateTimeField()
    name = serializers.CharField()
    date_of_birth = serializers.DateField()
    nhs_number = serializers.CharField(allow_blank=True)
    contact = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decline_reason = serializers.CharField(allow_blank=True)


def _request_row(req: Type1Request) -> dict:
    return {
        "reference": req.reference,
        "status": req.status,
        "submitted_at": req.submitted_at,
        "decided_at": req.decided_at,
        "decline_reason": req.decline_reason,
        **selectors.type1_request_details(req),
    }


class Type1RequestList(GenericAPIView):
    serializer_class = Type1RequestSerializer
    queryset = Type1Request.objects.none()  # the practice's rows are chosen in get()

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Type1Request.Status.values, default="pending")
        ],
        responses=Type1RequestSerializer(many=True),
    )
    def get(self, request, ods_code: str):
        """Patients' online requests to the practice (pending ones unless ?status= says)."""
        practice = permissions.get_practice_for_user(request.user, ods_code)
        wanted = request.query_params.get("status", Type1Request.Status.PENDING)
        qs = Type1Request.objects.filter(practice=practice, status=wanted).order_by("submitted_at")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(
            Type1RequestSerializer([_request_row(r) for r in page], many=True).data
        )


def _request_for(user, ods_code: str, reference: str) -> Type1Request:
    practice = permissions.get_practice_for_user(user, ods_code)
    return get_object_or_404(Type1Request, practice=practice, reference=reference.upper())


class Type1RequestRecord(APIView):
    @extend_schema(
        request=inline_serializer(
            "Type1RequestRecord",
            {"nhs_number": serializers.CharField(), "recorded_on": serializers.DateField()},
        ),
        responses={201: Type1RecordedSerializer},
    )
    def post(self, request, ods_code: str, reference: str):
        """Record the dissent a verified patient asked for online (method online)."""
        req = _request_for(request.user, ods_code, reference)
        event = services.type1_request_record(
            actor=request.user,
            request=req,
            nhs_number=request.data.get("nhs_number"),
            recorded_on=request.data.get("recorded_on") or req.submitted_at.date(),
        )
        return Response(Type1RecordedSerializer(event).data, status=status.HTTP_201_CREATED)


class Type1RequestDecline(APIView):
    @extend_schema(
        request=inline_serializer("Type1RequestDecline", {"reason": serializers.CharField()}),
        responses={200: Type1RequestSerializer},
    )
    def post(self, request, ods_code: str, reference: str):
        """Decline a patient's request, saying why."""
        req = _request_for(request.user, ods_code, reference)
        req = services.type1_request_decline(
            actor=request.user, request=req, reason=request.data.get("reason", "")
        )
        return Response(Type1RequestSerializer(_request_row(req)).data)


# --- national data opt-outs ------------------------------------------------------------------------
class NationalCheckSerializer(serializers.ModelSerializer):
    programme = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    overdue = serializers.SerializerMethodField(
        help_text="sent over MESH and unanswered for PHM_NDOP_REPLY_HOURS (the CSU admins were e-mailed)"
    )

    def get_overdue(self, check: NationalOptOutCheck) -> bool:
        return check.overdue_notified_at is not None and check.status == check.Status.SENT

    class Meta:
        model = NationalOptOutCheck
        fields = [
            "id",
            "programme",
            "status",
            "created_by",
            "created_at",
            "checked_on",
            "expires_on",
            "submitted",
            "returned",
            "opted_out",
            "purged_at",
            "local_id",
            "transport",
            "demo",
            "mesh_message_id",
            "sent_at",
            "send_attempts",
            "send_error",
            "next_send_at",
            "replied_at",
            "overdue",
            "failure",
            "service_notes",
        ]


NationalCheckCreateSerializer = inline_serializer(
    "NationalCheckCreate",
    {
        "programme": serializers.SlugField(),
        "submitted": serializers.FileField(
            required=False, help_text="the file sent to the national service"
        ),
        "returned": serializers.FileField(
            required=False, help_text="the file it returned: the numbers that may be used"
        ),
        "checked_on": serializers.DateField(required=False),
    },
)


class NationalCheckList(GenericAPIView):
    serializer_class = NationalCheckSerializer
    queryset = NationalOptOutCheck.objects.none()  # filtered in get()
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        parameters=[OpenApiParameter("programme", str), OpenApiParameter("status", str)],
        responses=NationalCheckSerializer(many=True),
    )
    def get(self, request):
        """National data opt-out checks, newest first."""
        permissions.require_national_checker(request.user)
        qs = NationalOptOutCheck.objects.select_related("programme", "created_by")
        if request.query_params.get("programme"):
            qs = qs.filter(programme__slug=request.query_params["programme"])
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(NationalCheckSerializer(page, many=True).data)

    @extend_schema(
        request={
            "multipart/form-data": NationalCheckCreateSerializer,
            "application/json": NationalCheckCreateSerializer,
        },
        responses={201: NationalCheckSerializer, 413: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        """Start a check of the programme's cohort, or record one from both files.

        With `programme` alone: a check awaiting the national service, whose file is at
        `submission.dat`. With `submitted`, `returned` and `checked_on` too: a complete
        check (who was submitted but not returned has opted out).
        """
        permissions.require_national_checker(request.user)
        slug = request.data.get("programme")
        if not slug:
            raise InvalidInput("Name the programme (its slug).", field="programme")
        programme = Programme.objects.filter(slug=slug).first()
        if programme is None:
            raise InvalidInput(f"No programme {slug!r}.", field="programme")
        for name in ("submitted", "returned"):
            refused = too_large(request.FILES.get(name))
            if refused:
                return refused
        submitted, _ = read_upload(request, "submitted", required=False)
        returned, _ = read_upload(request, "returned", required=False)
        if submitted is None and returned is None:
            check = services.national_check_start(actor=request.user, programme=programme)
        else:
            if submitted is None:
                raise InvalidInput(
                    "Attach the submitted file too, or POST the returned file to "
                    "/checks/{id}/returned/ of a check the portal started.",
                    field="submitted",
                )
            if returned is None:
                raise InvalidInput(
                    "Attach the file the national service returned.", field="returned"
                )
            check = services.national_check_import(
                actor=request.user,
                programme=programme,
                submitted=submitted,
                returned=returned,
                checked_on=request.data.get("checked_on"),
            )
        return Response(NationalCheckSerializer(check).data, status=status.HTTP_201_CREATED)


def _check_for(user, pk: int) -> NationalOptOutCheck:
    permissions.require_national_checker(user)
    return get_object_or_404(NationalOptOutCheck.objects.select_related("programme"), pk=pk)


class NationalCheckDetail(APIView):
    @extend_schema(responses=NationalCheckSerializer)
    def get(self, request, pk: int):
        return Response(NationalCheckSerializer(_check_for(request.user, pk)).data)


class NationalCheckSubmission(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        """The file to send to the national service: each NHS number and a comma, LF ends."""
        check = _check_for(request.user, pk)
        numbers = services.national_check_submission_export(actor=request.user, check=check)
        response = HttpResponse(
            national_submission(numbers), content_type="application/octet-stream"
        )
        response["Content-Disposition"] = f'attachment; filename="{check.file_name}"'
        return response


class NationalCheckReturned(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "NationalCheckReturned",
                {"returned": serializers.FileField(), "checked_on": serializers.DateField()},
            )
        },
        responses={200: NationalCheckSerializer, 413: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        """Import the file the national service returned for a check the portal started."""
        check = _check_for(request.user, pk)
        refused = too_large(request.FILES.get("returned"))
        if refused:
            return refused
        returned, _ = read_upload(request, "returned")
        check = services.national_check_complete(
            actor=request.user,
            check=check,
            returned=returned,
            checked_on=request.data.get("checked_on"),
        )
        return Response(NationalCheckSerializer(check).data)


# --- the register ------------------------------------------------------------------------------------
RegisterRequestSerializer = inline_serializer(
    "OptOutRegisterQuestion",
    {
        "data_flow": serializers.IntegerField(),
        "nhs_numbers": serializers.ListField(
            child=serializers.CharField(), max_length=100_000, help_text="at most 100,000"
        ),
    },
)
RegisterAnswerSerializer = inline_serializer(
    "OptOutRegisterAnswer",
    {
        "data_flow": serializers.IntegerField(),
        "excluded": serializers.ListField(
            child=inline_serializer(
                "ExcludedPatient",
                {
                    "nhs_number": serializers.CharField(),
                    "reasons": serializers.ListField(
                        child=serializers.ChoiceField(choices=OptOutReason.values)
                    ),
                },
            )
        ),
        "allowed": serializers.IntegerField(),
        "counts": serializers.DictField(child=serializers.IntegerField()),
        "type1_opt_out_applies": serializers.BooleanField(),
        "national_opt_out_applies": serializers.BooleanField(),
        "national_opt_out_exemption": serializers.CharField(),
        "national_check": inline_serializer(
            "RegisterNationalCheck",
            {
                "id": serializers.IntegerField(),
                "checked_on": serializers.DateField(),
                "expires_on": serializers.DateField(),
            },
            allow_null=True,
        ),
    },
)
MAX_REGISTER_NUMBERS = 100_000  # API.md: 100,000 numbers in one call


class OptOutRegisterCheck(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request=RegisterRequestSerializer,
        responses={200: RegisterAnswerSerializer, 429: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        """Which of these patients' data must be left out of this data flow, and why.

        A CSU admin learns the reasons of every patient; anyone else only those of
        patients registered at their own practices, every other number answering as an
        unknown one. Each person may ask about a quota of numbers an hour; beyond it,
        429 with Retry-After. Validation is done by hand rather than by a serializer:
        100,000 numbers must be answered in well under two seconds.
        """
        data = request.data if isinstance(request.data, dict) else {}
        flow_id = data.get("data_flow")
        if (
            isinstance(flow_id, bool)
            or not isinstance(flow_id, int | str)
            or not str(flow_id).isdigit()
        ):
            raise InvalidInput("Give the data flow's id.", field="data_flow")
        flow = permissions.get_data_flow_for_user(request.user, flow_id)
        numbers = data.get("nhs_numbers")
        if not isinstance(numbers, list) or not numbers:
            raise InvalidInput("Give a non-empty list of NHS numbers.", field="nhs_numbers")
        if len(numbers) > MAX_REGISTER_NUMBERS:
            raise InvalidInput(
                f"At most {MAX_REGISTER_NUMBERS:,} NHS numbers in one call; this one has "
                f"{len(numbers):,}.",
                field="nhs_numbers",
            )
        try:
            result = services.opt_out_register_query(
                actor=request.user,
                data_flow=flow,
                nhs_numbers=numbers,
                practice_ids=permissions.register_practice_ids_for(request.user),
            )
        except RegisterQuotaExceeded as exc:
            raise Throttled(wait=exc.retry_after, detail=exc.message) from exc
        national = None
        if result.national_check_id is not None:
            national = {
                "id": result.national_check_id,
                "checked_on": result.national_checked_on,
                "expires_on": result.national_expires_on,
            }
        return Response(
            {
                "data_flow": flow.pk,
                "excluded": [{"nhs_number": n, "reasons": r} for n, r in result.excluded],
                "allowed": result.allowed,
                "counts": result.counts,
                "type1_opt_out_applies": result.type1_applies,
                "national_opt_out_applies": result.national_applies,
                "national_opt_out_exemption": result.national_exemption,
                "national_check": national,
            }
        )
