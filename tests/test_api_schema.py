"""The OpenAPI schema describes every endpoint of the API."""

from django.urls import URLPattern, URLResolver, get_resolver


def _api_routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _api_routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def test_schema_is_served_as_openapi_3(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for expected in [
        "/api/v1/auth/token/",
        "/api/v1/me/",
        "/api/v1/organisations/",
        "/api/v1/organisations/{ods_code}/",
        "/api/v1/legal-bases/",
        "/api/v1/programmes/",
        "/api/v1/programmes/{slug}/",
        "/api/v1/programmes/{programme_slug}/participants/",
        "/api/v1/users/",
        "/api/v1/audit/",
        "/api/v1/audit/verify/",
    ]:
        assert expected in paths, expected


def test_every_api_route_is_in_the_schema(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    described = len(schema["paths"])
    routes = {
        r
        for r in _api_routes(get_resolver().url_patterns)
        if r.startswith("api/v1/") and "format" not in r and r != "api/v1/"
    }
    assert described >= len(routes) - 1  # the router's browsable root is not an endpoint


def test_the_docs_page_loads_its_assets_from_the_portal(client, db):
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html
