from django.apps import AppConfig


class PhmPortalConfig(AppConfig):
    name = "phm_portal"
    verbose_name = "PHM portal (audit log)"

    def ready(self) -> None:
        # Failed sign-ins and lockouts become audit events (signal receivers).
        from phm_portal import signin  # noqa: F401
