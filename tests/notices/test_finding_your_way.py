"""A patient finds their way without signing in: search by area, notices to practices and back."""

from __future__ import annotations

import re

from notices import services
from notices.presentation import area_label
from tests.factories import PracticeFactory


def words(response) -> str:
    html = response.content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_practice_is_found_by_its_programmes_region(client, published):
    page = words(client.get("/notices/", {"q": "testshire"}))
    assert "2 practices found for “testshire”" in page
    assert "Practice A Surgery" in page
    assert "Practice B Surgery" in page


def test_a_practice_is_found_by_its_programmes_name(client, published):
    assert "Practice A Surgery" in words(client.get("/notices/", {"q": "Testshire PHM"}))


def test_a_practice_outside_the_area_is_not_found_by_it(client, published):
    PracticeFactory(ods_code="C83003", name="Elsewhere Surgery", postcode="ZZ1 1ZZ")
    page = words(client.get("/notices/", {"q": "testshire"}))
    assert "Elsewhere Surgery" not in page
    assert "Elsewhere Surgery" in words(client.get("/notices/", {"q": "elsewhere"}))


def test_search_results_link_to_each_practices_opt_out_page(client, published):
    html = client.get("/notices/", {"q": "testshire"}).content.decode()
    assert 'href="/practices/A81001/">Opt out at Practice A Surgery, or ask for it online' in html
    assert 'href="/practices/B82002/">Opt out at Practice B Surgery, or ask for it online' in html


def test_the_notice_links_to_each_of_its_practices_pages(client, published):
    html = client.get("/notices/testshire/").content.decode()
    assert "GP practices: opt out online" in words(client.get("/notices/testshire/"))
    assert '<a href="/practices/A81001/">Practice A Surgery</a>' in html
    assert '<a href="/practices/B82002/">Practice B Surgery</a>' in html
    assert 'href="/practices/0AR/"' not in html  # the CSU is no practice


def test_an_earlier_version_links_to_its_practices_too(client, published):
    assert '<a href="/practices/A81001/">' in client.get("/notices/testshire/v1/").content.decode()


def test_an_unnamed_area_is_labelled_by_its_practices(client, complete, dpo_a):
    complete.region = "Your area"
    complete.save()
    draft, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    services.notice_version_publish(actor=dpo_a, version=draft)
    listing = words(client.get("/notices/"))
    assert "Testshire PHM (Practice A Surgery and Practice B Surgery)" in listing
    assert "Your area" not in listing
    notice = client.get("/notices/testshire/").content.decode()
    assert (
        '<span class="nhsuk-caption-l">Practice A Surgery and Practice B Surgery</span>' in notice
    )


def test_a_named_area_is_labelled_by_its_name(client, published):
    assert "Testshire PHM (Testshire)" in words(client.get("/notices/"))


def test_many_practices_of_an_unnamed_area_are_counted():
    names = ["Ash Surgery", "Beech Practice", "Cedar Practice", "Damson Surgery"]
    assert area_label("Your area", names) == "Ash Surgery and 3 other GP practices"
    assert area_label("Your area", names[:1]) == "Ash Surgery"
    assert area_label("Devon", names) == "Devon"


def test_the_practice_page_links_to_its_programmes_notice(client, published):
    html = client.get("/practices/A81001/").content.decode()
    assert '<a href="/notices/testshire/">Privacy notice of the Testshire PHM</a>' in html


def test_the_practice_page_says_when_the_notice_is_not_published_yet(client, draft):
    page = words(client.get("/practices/A81001/"))
    assert "The privacy notice of the Testshire PHM is not published yet" in page


def test_the_practice_page_wears_the_public_header_and_footer(client, alice, published):
    client.force_login(alice)  # even a member of staff sees the patients' page as they do
    page = words(client.get("/practices/A81001/"))
    assert "API documentation" not in page
    assert "Your API tokens" not in page
    assert "Organisations" not in page
    assert "Find your practice's privacy notices" in page
    assert "Surgery: opting out of sharing your data – Privacy notices" in page  # the title


def test_the_public_notice_pages_show_no_staff_links(client, alice, published):
    client.force_login(alice)
    for url in ["/notices/", "/notices/testshire/", "/notices/testshire/v1/"]:
        page = words(client.get(url))
        assert "API documentation" not in page, url
        assert "Sign out" not in page, url


def test_the_sign_in_page_links_patients_to_the_notices(client, db):
    html = client.get("/accounts/login/").content.decode()
    assert '<a href="/notices/">Find your area\'s privacy notice, or opt out</a>' in html


def test_the_home_page_sends_a_visitor_to_sign_in_with_that_link(client, db):
    response = client.get("/", follow=True)
    assert "Find your area's privacy notice, or opt out" in words(response)
