from django.apps import AppConfig


class PhmPortalConfig(AppConfig):
    name = "phm_portal"
    verbose_name = "PHM portal (audit log)"
