import pytest


def test_pages_need_sign_in(client, db):
    for url in ["/", "/organisations/", "/programmes/", "/people/", "/audit/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_sign_in_leads_to_the_home_page_of_the_role(client, alice, programme):
    page = client.post(
        "/accounts/login/", {"username": "alice", "password": "correct-horse-battery"}, follow=True
    )
    html = page.content.decode()
    assert "<title>Home – PHM governance portal</title>" in html
    assert "You are signed in as Practice manager for Practice A Surgery (A81001)" in html
    assert "Record and withdraw Type 1 opt-outs" in html
    assert "Testshire PHM" in html


def test_a_wrong_password_says_so_on_the_sign_in_page(client, alice):
    page = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert page.status_code == 200
    assert "There is a problem" in page.content.decode()


def test_the_csu_admin_home_page_links_to_people_and_audit(client, admin):
    client.force_login(admin)
    html = client.get("/").content.decode()
    assert 'href="/people/"' in html
    assert 'href="/audit/"' in html


def test_a_practice_manager_has_no_people_or_audit_links(client, alice):
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert 'href="/people/"' not in html
    assert 'href="/audit/"' not in html


@pytest.mark.parametrize("url", ["/people/", "/audit/"])
def test_a_practice_manager_is_refused_admin_pages(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 403
    assert "You cannot do that" in response.content.decode()


def test_a_practice_manager_cannot_add_people_through_the_page(client, alice, practice_a):
    client.force_login(alice)
    response = client.post("/people/", {"username": "eve", "role": "csu_admin"})
    assert response.status_code == 403


def test_organisations_are_searchable_by_postcode_district(client, alice, practice_b):
    client.force_login(alice)
    html = client.get("/organisations/?q=LS2").content.decode()
    assert "Practice B Surgery" in html
    assert "Practice A Surgery" not in html


def test_an_empty_search_says_how_to_search(client, alice):
    client.force_login(alice)
    assert "No organisation matches “zzz”" in client.get("/organisations/?q=zzz").content.decode()


def test_programme_page_shows_roles_and_legal_wording(client, alice, programme):
    from governance.models import LegalBasis

    programme.legal_bases.add(LegalBasis.objects.get(code="UK-GDPR-6-1-e"))
    client.force_login(alice)
    html = client.get("/programmes/testshire/").content.decode()
    assert "<h1>" in html and "Testshire PHM" in html
    assert "Processor" in html and "North of England Commissioning Support Unit" in html
    assert "performance of a task carried out in the public interest" in html
    assert "20 weeks" in html


def test_an_unknown_programme_page_is_a_404(client, alice):
    client.force_login(alice)
    response = client.get("/programmes/nowhere/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_a_csu_admin_adds_a_person_through_the_page(client, admin, practice_a):
    client.force_login(admin)
    html = client.post(
        "/people/", {"username": "dana", "role": "practice_manager", "organisations": ["A81001"]}
    ).content.decode()
    assert "dana was added" in html
    assert "/accounts/set-password/" in html


def test_the_people_form_names_what_is_wrong(client, admin, csu):
    client.force_login(admin)
    html = client.post(
        "/people/", {"username": "dana", "role": "practice_manager", "organisations": ["0AR"]}
    ).content.decode()
    assert "There is a problem" in html
    assert "GP practices only" in html


def test_health_answers_ok(client, db):
    assert client.get("/health/").json() == {"database": "ok"}


def test_the_programme_page_shows_its_population_with_thousands_separators(
    client, alice, programme
):
    programme.population = 1200000
    programme.save()
    client.force_login(alice)
    html = client.get("/programmes/testshire/").content.decode()
    assert '<dd class="nhsuk-summary-list__value">1,200,000</dd>' in html
