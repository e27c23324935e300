from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from governance.models import LegalBasis, Organisation, Participation, Programme, User


class ViewOnlyAdmin(admin.ModelAdmin):
    """Changes go through the services (pages and API), which validate and audit them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    list_display = ["username", "email", "role", "is_active"]
    list_filter = ["role", "is_active"]
    fieldsets = UserAdmin.fieldsets + (("Portal", {"fields": ["role"]}),)
    add_fieldsets = UserAdmin.add_fieldsets + (("Portal", {"fields": ["role"]}),)


@admin.register(Organisation)
class OrganisationAdmin(ViewOnlyAdmin):
    list_display = ["name", "ods_code", "kind", "postcode"]
    list_filter = ["kind"]
    search_fields = ["name", "ods_code", "postcode"]


@admin.register(LegalBasis)
class LegalBasisAdmin(ViewOnlyAdmin):
    list_display = ["code", "regime", "article", "title"]
    list_filter = ["regime"]


class ParticipationInline(admin.TabularInline):
    model = Participation
    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Programme)
class ProgrammeAdmin(ViewOnlyAdmin):
    list_display = ["name", "slug", "region", "status", "start_date", "length_weeks", "end_date"]
    list_filter = ["status"]
    search_fields = ["name", "region", "slug"]
    readonly_fields = ["end_date", "status"]
    filter_horizontal = ["legal_bases"]
    inlines = [ParticipationInline]
