"""The governance part of the REST API (API.md "governance", "users"): set-up and people."""

from __future__ import annotations

import django_filters
from django.contrib.auth import authenticate
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import permissions as perms
from governance import selectors, services
from governance.models import (
    ApiToken,
    LegalBasis,
    Organisation,
    Participation,
    Programme,
    User,
)
from phm_portal import signin
from phm_portal.audit import audit_log


class IsReaderOrManager(permissions.BasePermission):
    """Anyone signed in reads; only a role with the view's `write_capability` writes."""

    def has_permission(self, request, view) -> bool:
        if not request.user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        perms.require(request.user, view.write_capability)
        return True


# --- organisations -------------------------------------------------------------
class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = [
            "ods_code",
            "name",
            "short_name",
            "kind",
            "part_of",
            "postcode",
            "website",
            "dpo_name",
            "dpo_email",
            "ico_registration_number",
            "ico_registration_expires_on",
            "dspt_status",
            "dspt_year",
            "dspt_published_on",
        ]
        # Uniqueness and format are checked by the service's full_clean, once.
        extra_kwargs = {"ods_code": {"validators": []}}


class OrganisationFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="name, ODS code or postcode district")

    class Meta:
        model = Organisation
        fields = ["kind"]

    def search(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            Q(name__icontains=value) | Q(ods_code__iexact=value) | Q(postcode__istartswith=value)
        )


class OrganisationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Organisation.objects.all()
    serializer_class = OrganisationSerializer
    lookup_field = "ods_code"
    lookup_value_regex = "[A-Za-z0-9]{1,20}"
    permission_classes = [IsReaderOrManager]
    write_capability = "manage_organisations"
    filterset_class = OrganisationFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_object(self):
        return get_object_or_404(Organisation, ods_code=self.kwargs["ods_code"].upper())

    def perform_create(self, serializer):
        serializer.instance = services.organisation_create(
            actor=self.request.user, data=serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.organisation_update(
            actor=self.request.user,
            organisation=serializer.instance,
            data=serializer.validated_data,
        )


# --- legal bases ---------------------------------------------------------------
class LegalBasisSerializer(serializers.ModelSerializer):
    class Meta:
        model = LegalBasis
        fields = ["code", "regime", "article", "title", "text"]


class LegalBasisViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = LegalBasis.objects.all()
    serializer_class = LegalBasisSerializer
    lookup_field = "code"
    filterset_fields = ["regime"]


# --- programmes ----------------------------------------------------------------
class ProgrammeSerializer(serializers.ModelSerializer):
    legal_bases = serializers.SlugRelatedField(
        many=True, slug_field="code", queryset=LegalBasis.objects.all(), required=False
    )
    purposes = serializers.ListField(child=serializers.CharField(max_length=500), required=False)

    class Meta:
        model = Programme
        fields = [
            "slug",
            "name",
            "region",
            "partnership",
            "population",
            "start_date",
            "length_weeks",
            "end_date",
            "status",
            "purposes",
            "legal_bases",
            "overseas_transfer",
            "overseas_transfer_detail",
            "type1_opt_out_applies",
            "type1_opt_out_contact",
            "national_opt_out_applies",
            "national_opt_out_exemption",
        ]
        read_only_fields = ["end_date", "status"]
        extra_kwargs = {"slug": {"validators": []}}


class ProgrammeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Programme.objects.prefetch_related("legal_bases")
    serializer_class = ProgrammeSerializer
    lookup_field = "slug"
    permission_classes = [IsReaderOrManager]
    write_capability = "manage_programmes"
    filterset_fields = ["status", "region"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        bases = [b.code for b in data.pop("legal_bases", [])]
        serializer.instance = services.programme_create(
            actor=self.request.user, data=data, legal_basis_codes=bases
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        bases = data.pop("legal_bases", None)
        serializer.instance = services.programme_update(
            actor=self.request.user,
            programme=serializer.instance,
            data=data,
            legal_basis_codes=[b.code for b in bases] if bases is not None else None,
        )


class ParticipationSerializer(serializers.ModelSerializer):
    organisation = serializers.SlugRelatedField(
        slug_field="ods_code", queryset=Organisation.objects.all()
    )
    organisation_name = serializers.CharField(source="organisation.name", read_only=True)
    responsibilities = serializers.ListField(
        child=serializers.ChoiceField(choices=Participation.Responsibility.choices), required=False
    )

    class Meta:
        model = Participation
        fields = [
            "id",
            "organisation",
            "organisation_name",
            "role",
            "responsibilities",
            "description",
            "processes_identifiable_data",
            "is_lead",
        ]


class ParticipantViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = ParticipationSerializer
    permission_classes = [IsReaderOrManager]
    write_capability = "manage_programmes"
    filterset_fields = ["role"]

    def get_programme(self) -> Programme:
        return get_object_or_404(Programme, slug=self.kwargs["programme_slug"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Participation.objects.none()
        return self.get_programme().participations.select_related("organisation")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.participation_add(
            actor=self.request.user,
            programme=self.get_programme(),
            organisation=data["organisation"],
            role=data["role"],
            responsibilities=data.get("responsibilities", []),
            description=data.get("description", ""),
            processes_identifiable_data=data.get("processes_identifiable_data", True),
            is_lead=data.get("is_lead", False),
        )


# --- users and sign-in -----------------------------------------------------------
class UserSerializer(serializers.ModelSerializer):
    organisations = serializers.SlugRelatedField(
        many=True, slug_field="ods_code", queryset=Organisation.objects.all(), required=False
    )
    set_password_url = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "organisations",
            "set_password_url",
        ]
        read_only_fields = ["id"]

    def get_set_password_url(self, user: User) -> str | None:
        """Only the response to creating a person carries their one-time link."""
        link = self.context.get("set_password_path")
        return self.context["request"].build_absolute_uri(link) if link else None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["organisations"] = list(
            perms.organisations_of(instance).values_list("ods_code", flat=True)
        )
        return data


class CanManageUsers(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if not request.user.is_authenticated:
            return False
        perms.require(request.user, "manage_users")
        return True


class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = User.objects.order_by("username")
    serializer_class = UserSerializer
    permission_classes = [CanManageUsers]
    filterset_fields = ["role"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = services.user_create(
            actor=request.user,
            username=data["username"],
            email=data.get("email", ""),
            role=data["role"],
            organisations=data.get("organisations", []),
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
        )
        context = {
            **self.get_serializer_context(),
            "set_password_path": services.set_password_path(user),
        }
        return Response(UserSerializer(user, context=context).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "name": serializers.CharField(),
                "role": serializers.CharField(),
                "organisations": serializers.ListField(child=serializers.DictField()),
                "capabilities": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request):
        """Return the caller, their role, their organisations and what they may do."""
        user = request.user
        return Response(
            {
                "username": user.username,
                "name": user.get_full_name(),
                "role": user.role,
                "organisations": [
                    {"ods_code": o.ods_code, "name": o.name, "kind": o.kind}
                    for o in perms.organisations_of(user)
                ],
                "capabilities": perms.capabilities_of(user),
            }
        )


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="A current one-time code from the authenticator app, or an unused recovery "
        "code: required for CSU admins and DPOs when PHM_REQUIRE_2FA is on.",
    )
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="A name to tell this token apart in your list of tokens (e.g. the client).",
    )


class TokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")
    id = serializers.IntegerField()
    expires = serializers.DateTimeField()


class ObtainToken(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(request=TokenRequestSerializer, responses=TokenIssuedSerializer)
    def post(self, request):
        """Exchange a username and password (and a one-time code, for CSU admins and DPOs
        when PHM_REQUIRE_2FA is on) for an API token.

        The token works for PHM_API_TOKEN_HOURS (see `expires`), until it is revoked, or
        until the password or second factor of the account changes. Repeated failures lock
        signing in for a while (429), as on the sign-in page.
        """
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The plain request: django-axes marks it when the account or client is locked out.
        http_request = request._request
        user = authenticate(
            http_request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if getattr(http_request, "axes_locked_out", False):
            return signin.lockout_response(http_request)
        if user is None or not user.is_active:
            return Response(
                {"non_field_errors": ["Unable to sign in with that username and password."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        second_factor = False
        if signin.needs_second_factor(user):
            device, reason = signin.check_second_factor(user, serializer.validated_data.get("otp"))
            if device is None:
                audit_log(
                    actor=user, action="auth.second_factor_failed", obj=user, details={"via": "api"}
                )
                return Response({"otp": [reason]}, status=status.HTTP_400_BAD_REQUEST)
            second_factor = True
        token, key = services.api_token_issue(
            user=user,
            second_factor=second_factor,
            name=serializer.validated_data.get("name", ""),
            via="api",
        )
        # As a page sign-in does: this address's failures are forgotten and it becomes
        # one the account is known to sign in from (phm_portal.signin's lockout policy).
        signin.sign_in_recorded(request=http_request, user=user)
        return Response(
            TokenIssuedSerializer({"token": key, "id": token.pk, "expires": token.expires_at}).data
        )


# --- the caller's own API tokens ---------------------------------------------------
class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its holder sees it: never the key (it is not kept)."""

    created = serializers.DateTimeField(source="created_at")
    expires = serializers.DateTimeField(source="expires_at")
    last_used = serializers.DateTimeField(source="last_used_at", allow_null=True)
    current = serializers.SerializerMethodField(
        help_text="Whether this request was made with this token."
    )

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created",
            "expires",
            "last_used",
            "second_factor",
            "current",
        ]
        read_only_fields = fields

    def get_current(self, token: ApiToken) -> bool:
        auth = self.context["request"].auth
        return isinstance(auth, ApiToken) and auth.pk == token.pk


class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your own API tokens that still work: see them, and revoke any (another's is a 404)."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = "[0-9]+"
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return selectors.api_tokens_live(user=self.request.user)

    def get_object(self) -> ApiToken:
        return perms.get_api_token_for_user(self.request.user, self.kwargs["pk"])

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Revoke one of your tokens: it stops working at once."""
        services.api_token_revoke(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
