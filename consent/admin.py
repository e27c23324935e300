from django.contrib import admin

from consent.models import NationalOptOutCheck, OptOutCode, Type1Import
from governance.admin import ViewOnlyAdmin


@admin.register(OptOutCode)
class OptOutCodeAdmin(ViewOnlyAdmin):
    list_display = ["snomed_ct", "kind", "read_v2", "ctv3", "preferred", "display"]


@admin.register(Type1Import)
class Type1ImportAdmin(ViewOnlyAdmin):
    list_display = ["pk", "practice", "uploaded_by", "uploaded_at", "lines", "accepted", "partial"]


@admin.register(NationalOptOutCheck)
class NationalOptOutCheckAdmin(ViewOnlyAdmin):
    list_display = [
        "pk",
        "programme",
        "status",
        "checked_on",
        "expires_on",
        "submitted",
        "opted_out",
    ]
