from django.apps import AppConfig
from django.core import checks


class DatasetsConfig(AppConfig):
    name = "datasets"

    def ready(self) -> None:
        checks.register(native_hmac_built)


def native_hmac_built(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn where the jobs' C HMAC is not built: the codes are the same, the jobs slower."""
    from datasets.pipeline import hashing

    if hashing.NATIVE_HMAC:
        return []
    return [
        checks.Warning(
            "The C HMAC of pseudonymisation jobs (datasets/native) is not built: jobs hash "
            "each NHS number in Python, several times slower.",
            hint="Run `make` where a C compiler and OpenSSL's headers (libssl-dev) are "
            "installed, or `python -m datasets.native.build`.",
            id="datasets.W001",
        )
    ]
