"""The DPO's pages: generate, preview with readability and completeness, edit, publish, withdraw."""

import html
import re

from notices.models import NoticeVersion
from phm_portal.models import AuditEvent


def words(response) -> str:
    return html_to_words(response.content.decode())


def html_to_words(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def test_the_programme_page_links_to_its_notice(client, alice, programme):
    client.force_login(alice)
    assert (
        'href="/programmes/testshire/notice/"'
        in client.get("/programmes/testshire/").content.decode()
    )


def test_a_controller_dpo_generates_a_draft_and_sees_its_preview(client, complete, dpo_a):
    client.force_login(dpo_a)
    response = client.post("/programmes/testshire/notice/", follow=True)
    assert response.status_code == 200
    page = words(response)
    assert "Draft version 1 was generated from the programme's data." in page
    assert re.search(
        r"Flesch reading ease \d+(\.\d)? \((plain English|fairly difficult|fairly easy)\)", page
    )
    assert "Complete: it says everything UK GDPR Articles 13 and 14 require" in page
    assert "Who is responsible for your information" in page


def test_the_preview_names_each_missing_item_with_its_article(client, complete, dpo_a):
    complete.overseas_transfer = "not_recorded"
    complete.save()
    client.force_login(dpo_a)
    page = words(client.post("/programmes/testshire/notice/", follow=True))
    assert "Article 13(1)(f) overseas transfers" in page


def test_local_wording_is_saved_and_previewed_safely(client, draft, dpo_a):
    client.force_login(dpo_a)
    response = client.post(
        f"/notice-versions/{draft.pk}/",
        {"local_opt_out": "Ask **reception**. <script>alert(1)</script>"},
        follow=True,
    )
    body = response.content.decode()
    assert "<strong>reception</strong>" in body
    assert "<script>alert(1)</script>" not in body
    assert NoticeVersion.objects.get(pk=draft.pk).sections != draft.sections


def test_publishing_asks_for_confirmation_then_publishes(client, draft, dpo_a):
    client.force_login(dpo_a)
    confirm = client.get(f"/notice-versions/{draft.pk}/publish/")
    assert "Publish version 1 of the privacy notice?" in words(confirm)
    assert NoticeVersion.objects.get(pk=draft.pk).status == "draft"
    response = client.post(f"/notice-versions/{draft.pk}/publish/", follow=True)
    assert "Version 1 is published." in words(response)
    assert AuditEvent.objects.filter(action="notice.published").exists()


def test_publishing_an_incomplete_draft_shows_the_missing_items(client, complete, dpo_a):
    complete.purposes = []
    complete.save()
    client.force_login(dpo_a)
    client.post("/programmes/testshire/notice/")
    version = NoticeVersion.objects.get()
    response = client.post(f"/notice-versions/{version.pk}/publish/")
    assert response.status_code == 409
    assert "Article 13(1)(c) purposes and legal basis: the purposes of the processing" in words(
        response
    )
    assert NoticeVersion.objects.get().status == "draft"


def test_withdrawing_needs_a_reason(client, published, dpo_a):
    client.force_login(dpo_a)
    response = client.post(f"/notice-versions/{published.pk}/withdraw/", {"reason": ""})
    assert response.status_code == 400 and "Say why the version is withdrawn." in words(response)
    response = client.post(
        f"/notice-versions/{published.pk}/withdraw/", {"reason": "Wrong length"}, follow=True
    )
    assert "Version 1 is withdrawn." in words(response)


def test_a_practice_manager_cannot_edit_generate_or_publish_through_the_pages(client, draft, alice):
    client.force_login(alice)
    assert client.post("/programmes/testshire/notice/").status_code == 403
    assert client.post(f"/notice-versions/{draft.pk}/", {"local_about": "x"}).status_code == 403
    assert client.post(f"/notice-versions/{draft.pk}/publish/").status_code == 403
    assert NoticeVersion.objects.get(pk=draft.pk).status == "draft"


def test_the_processor_dpo_and_an_outsider_are_refused(client, draft, dpo_csu, dpo_elsewhere):
    client.force_login(dpo_csu)
    assert client.post(f"/notice-versions/{draft.pk}/publish/").status_code == 403
    client.force_login(dpo_elsewhere)
    assert client.post(f"/notice-versions/{draft.pk}/publish/").status_code == 404
    assert client.post("/programmes/testshire/notice/").status_code == 404
    assert NoticeVersion.objects.get(pk=draft.pk).status == "draft"


def test_the_drafting_pages_need_sign_in(client, draft):
    response = client.get(f"/notice-versions/{draft.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_draft_page_shows_what_changed_since_the_published_version(
    client, published, complete, dpo_a
):
    from notices import services

    again, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    services.notice_version_update(
        actor=dpo_a, version=again, local_texts={"opt_out": "Ask at reception."}
    )
    client.force_login(dpo_a)
    page = words(client.get(f"/notice-versions/{again.pk}/"))
    assert "What changed since version 1" in page
    assert "added: Ask at reception." in page
    assert "there is nothing to publish" not in page


def test_the_draft_page_says_when_a_draft_changes_nothing(client, published, complete, dpo_a):
    from notices import services

    again, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    client.force_login(dpo_a)
    page = words(client.get(f"/notice-versions/{again.pk}/"))
    assert "The words of this draft are those of version 1." in page
    assert (
        "This draft says nothing the published notice does not: there is nothing to publish."
        in page
    )


def test_publishing_a_draft_that_changes_nothing_is_refused_on_the_page(
    client, published, complete, dpo_a
):
    from notices import services

    again, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    client.force_login(dpo_a)
    response = client.post(f"/notice-versions/{again.pk}/publish/")
    assert response.status_code == 409
    assert "there is nothing to publish" in words(response)
    assert NoticeVersion.objects.get(pk=again.pk).status == "draft"


# --- how easy the draft is to read --------------------------------------------------------
def test_the_draft_page_gives_the_ease_and_grade_of_each_section(client, draft, dpo_a):
    from notices.presentation import notice_readability

    client.force_login(dpo_a)
    html = client.get(f"/notice-versions/{draft.pk}/").content.decode()
    table = re.search(
        r'<table class="nhsuk-table" id="readability-by-section">.*?</table>', html, re.S
    )
    rows = [
        " ".join(html_to_words(row).split())
        for row in re.findall(r"<tr class=\"nhsuk-table__row\">(.*?)</tr>", table.group(0), re.S)
    ]
    found = notice_readability(draft.sections)
    assert rows[0] == "Section Words Reading ease Grade Hard sentences"
    assert len(rows) == 1 + len(found.sections)
    for row, s in zip(rows[1:], found.sections, strict=True):
        assert row.startswith(
            f"{s.title} {s.score.words} {s.score.ease} ({s.score.label}) {s.score.grade}"
        )
    assert "The exact words of the law" not in table.group(0)  # the verbatim law is not scored
    total = found.score
    page = words(client.get(f"/notice-versions/{draft.pk}/"))
    assert re.search(
        rf"Flesch reading ease {total.ease} \({total.label}\), Flesch-Kincaid grade "
        rf"{total.grade} ?, {total.words} words\.",
        page,
    )


def test_the_draft_page_lists_and_marks_the_hardest_sentences(client, harder_draft, dpo_a):
    client.force_login(dpo_a)
    response = client.get(f"/notice-versions/{harder_draft.pk}/")
    page = words(response)
    assert "The hardest sentences" in page
    assert "in “About this notice”: Notwithstanding the foregoing" in page
    html = response.content.decode()
    # Marked where it stands in the preview, for eyes and for screen readers alike.
    assert (
        '<mark class="portal-hard-sentence"><span class="nhsuk-u-visually-hidden">Hard to read: '
        "</span>Notwithstanding the foregoing" in html
    )


def test_the_draft_page_warns_when_the_draft_reads_harder_than_the_published_one(
    client, harder_draft, draft, dpo_a
):
    client.force_login(dpo_a)
    assert "Harder to read than version 1" in words(
        client.get(f"/notice-versions/{harder_draft.pk}/")
    )


def test_a_draft_as_plain_as_the_published_one_gets_no_warning(client, draft, dpo_a):
    client.force_login(dpo_a)
    assert "Harder to read" not in words(client.get(f"/notice-versions/{draft.pk}/"))
    assert (
        "confirm_harder_to_read"
        not in client.get(f"/notice-versions/{draft.pk}/publish/").content.decode()
    )


def test_publishing_a_harder_draft_needs_the_box_ticked(client, harder_draft, dpo_a):
    client.force_login(dpo_a)
    confirm = words(client.get(f"/notice-versions/{harder_draft.pk}/publish/"))
    assert "This draft is harder to read than version 1, which patients read now" in confirm
    assert "I have read the warning: publish version 2 even though it is harder to read" in confirm
    refused = client.post(f"/notice-versions/{harder_draft.pk}/publish/")
    assert refused.status_code == 409
    assert (
        "Tick the box to publish a version that is harder to read, or make the draft plainer first"
        in words(refused)
    )
    assert NoticeVersion.objects.get(pk=harder_draft.pk).status == "draft"
    response = client.post(
        f"/notice-versions/{harder_draft.pk}/publish/",
        {"confirm_harder_to_read": "yes"},
        follow=True,
    )
    assert "Version 2 is published." in words(response)
    assert NoticeVersion.objects.get(pk=harder_draft.pk).status == "published"
