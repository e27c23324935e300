import io
import re

from pypdf import PdfReader

from governance import services as gov
from notices import services


def words(response) -> str:
    html = response.content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_public_pages_need_no_sign_in(client, published):
    for url in [
        "/notices/",
        "/notices/testshire/",
        "/notices/testshire/v1/",
        "/notices/testshire/v1.pdf",
    ]:
        assert client.get(url).status_code == 200, url


def test_a_practice_is_found_by_name_ods_code_or_postcode_district(client, published):
    for query in ["practice a", "A81001", "TS1", "ts1 1aa"]:
        page = words(client.get("/notices/", {"q": query}))
        assert "Practice A Surgery" in page, query
        assert "Practice B Surgery" not in page, query
        assert "Testshire PHM: privacy notice" in page


def test_a_postcode_district_does_not_match_a_longer_one(client, published, practice_a):
    practice_a.postcode = "TS10 1AA"
    practice_a.save()
    assert "Practice A Surgery" not in words(client.get("/notices/", {"q": "TS1"}))


def test_an_empty_search_says_how_to_search(client, db):
    assert "No GP practice matches “zzz”" in words(client.get("/notices/", {"q": "zzz"}))


def test_a_programme_without_a_published_notice_says_so(client, draft):
    assert "the privacy notice is not published yet" in words(
        client.get("/notices/", {"q": "A81001"})
    )
    assert client.get("/notices/testshire/").status_code == 404


def test_the_notice_page_shows_the_current_version(client, published):
    response = client.get("/notices/testshire/")
    html = response.content.decode()
    assert "<title>Privacy notice: Testshire PHM – Privacy notices</title>" in html
    assert html.count("<h1") == 1
    assert "Version 1, published on" in words(response)
    assert published.sha256 in html
    assert 'href="/notices/testshire/v1.pdf"' in html
    assert "<script>" not in html  # no inline script; the module script is a file


def test_local_wording_is_shown_safely_on_the_public_page(client, draft, dpo_a):
    services.notice_version_update(
        actor=dpo_a,
        version=draft,
        local_texts={
            "opt_out": "Call **reception**. <script>alert(1)</script> [x](javascript:alert(1))"
        },
    )
    draft.refresh_from_db()
    services.notice_version_publish(actor=dpo_a, version=draft)
    html = client.get("/notices/testshire/").content.decode()
    assert "<strong>reception</strong>" in html
    assert (
        "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    )
    assert 'href="javascript:' not in html


def test_the_page_is_cached_until_the_next_publication(
    client,
    published,
    complete,
    dpo_a,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
):
    client.get("/notices/testshire/")
    with django_assert_num_queries(0):
        assert "Version 1, published" in words(client.get("/notices/testshire/"))
    gov.programme_update(actor=None, programme=complete, data={"length_weeks": 22})
    draft, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    with django_assert_num_queries(0):  # a draft changes nothing for the public
        assert "Version 1, published" in words(client.get("/notices/testshire/"))
    with django_capture_on_commit_callbacks(execute=True):
        services.notice_version_publish(actor=dpo_a, version=draft)
    page = words(client.get("/notices/testshire/"))
    assert "Version 2, published" in page and "22 weeks" in page


def test_withdrawing_drops_the_cached_page(
    client, published, dpo_a, django_capture_on_commit_callbacks
):
    assert client.get("/notices/testshire/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        services.notice_version_withdraw(actor=dpo_a, version=published, reason="Wrong length")
    assert client.get("/notices/testshire/").status_code == 404
    page = words(client.get("/notices/testshire/v1/"))
    assert "This version was withdrawn" in page and "Wrong length" in page


def _second_version(complete, dpo_a):
    gov.programme_update(actor=None, programme=complete, data={"length_weeks": 22})
    draft, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    return services.notice_version_publish(actor=dpo_a, version=draft)


def test_every_published_version_stays_readable(client, published, complete, dpo_a):
    _second_version(complete, dpo_a)
    old = words(client.get("/notices/testshire/v1/"))
    assert "This is an earlier version of the notice" in old
    assert "The programme runs for 20 weeks" in old
    assert "The programme runs for 22 weeks" in words(client.get("/notices/testshire/v2/"))
    assert client.get("/notices/testshire/v3/").status_code == 404


def test_the_diff_marks_added_and_removed_words_for_everyone(client, published, complete, dpo_a):
    _second_version(complete, dpo_a)
    assert (
        'href="/notices/testshire/v2/changes/"'
        in client.get("/notices/testshire/v2/").content.decode()
    )
    html = client.get("/notices/testshire/v2/changes/").content.decode()
    assert (
        '<del class="portal-diff__del"><span class="nhsuk-u-visually-hidden">removed: </span>20</del>'
        in html
    )
    assert (
        '<ins class="portal-diff__ins"><span class="nhsuk-u-visually-hidden">added: </span>22</ins>'
        in html
    )
    assert "What has changed in this version" in html and "New section" in html
    assert client.get("/notices/testshire/v1/changes/").status_code == 404


def test_a_draft_is_never_public(client, draft):
    assert client.get("/notices/testshire/v1/").status_code == 404
    assert client.get("/notices/testshire/v1.pdf").status_code == 404


def test_the_pdf_has_the_same_content_a_title_and_tags(client, published):
    response = client.get("/notices/testshire/v1.pdf")
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert reader.metadata.title == "Privacy notice: Testshire PHM (version 1)"
    root = reader.trailer["/Root"]
    assert "/StructTreeRoot" in root and root["/MarkInfo"]["/Marked"]
    assert root["/Lang"] == "en-GB"
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    for fact in (
        "Practice A Surgery",
        "NECS",
        "20 weeks",
        "0300 3035678",
        "https://ico.org.uk/make-a-complaint/",
    ):
        assert fact in text
