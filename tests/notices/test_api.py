import pytest

from notices.models import NoticeVersion
from phm_portal.models import AuditEvent


def test_a_controller_dpo_generates_a_draft(api, complete, dpo_a):
    response = api(dpo_a).post("/api/v1/programmes/testshire/notices/")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["version"], body["status"], body["programme"]) == (1, "draft", "testshire")
    assert [s["key"] for s in body["sections"]][:3] == ["about", "controllers", "purposes"]
    assert set(body["sections"][0]) == {"key", "title", "generated_text", "local_text"}
    assert len(body["sha256"]) == 64
    assert body["readability"]["flesch_reading_ease"] > 30


def test_the_list_shows_versions_with_their_hash_and_publisher(api, published, alice):
    body = api(alice).get("/api/v1/programmes/testshire/notices/").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["version"] == 1 and row["status"] == "published"
    assert row["published_by"] == "dpo-a" and row["sha256"] == published.sha256


def test_drafts_are_not_listed_for_people_who_cannot_edit(api, draft, alice, dpo_a):
    assert api(alice).get("/api/v1/programmes/testshire/notices/").json()["count"] == 0
    assert api(dpo_a).get("/api/v1/programmes/testshire/notices/").json()["count"] == 1


def test_a_dpo_edits_local_wording_of_a_draft(api, draft, dpo_a):
    response = api(dpo_a).patch(
        f"/api/v1/notices/{draft.pk}/",
        {"sections": [{"key": "opt_out", "local_text": "Ring **01234 567890**."}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    opt_out = next(s for s in response.json()["sections"] if s["key"] == "opt_out")
    assert opt_out["local_text"] == "Ring **01234 567890**."
    assert response.json()["sha256"] != draft.sha256


def test_an_unknown_section_is_a_400_naming_the_field(api, draft, dpo_a):
    response = api(dpo_a).patch(
        f"/api/v1/notices/{draft.pk}/",
        {"sections": [{"key": "nope", "local_text": "x"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "sections" in response.json()


def test_patching_a_published_version_is_a_409(api, published, dpo_a):
    response = api(dpo_a).patch(
        f"/api/v1/notices/{published.pk}/",
        {"sections": [{"key": "about", "local_text": "x"}]},
        format="json",
    )
    assert response.status_code == 409
    assert NoticeVersion.objects.get(pk=published.pk).sections == published.sections


def test_completeness_lists_missing_items_with_their_articles(api, complete, dpo_a, alice):
    complete.overseas_transfer = "not_recorded"
    complete.save()
    version = api(dpo_a).post("/api/v1/programmes/testshire/notices/").json()
    body = api(dpo_a).get(f"/api/v1/notices/{version['id']}/completeness/").json()
    assert body == {
        "complete": False,
        "missing": [
            {
                "item": "13(1)(f) overseas transfers (whether data leaves the UK, and under which safeguard)",
                "article": "13(1)(f)",
            }
        ],
    }


def test_publishing_an_incomplete_notice_is_a_409_with_the_list(api, complete, dpo_a):
    complete.overseas_transfer = "not_recorded"
    complete.save()
    version = api(dpo_a).post("/api/v1/programmes/testshire/notices/").json()
    response = api(dpo_a).post(f"/api/v1/notices/{version['id']}/publish/")
    assert response.status_code == 409
    assert response.json()["missing"][0]["article"] == "13(1)(f)"
    assert NoticeVersion.objects.get(pk=version["id"]).status == "draft"


def test_publish_then_withdraw_are_audited(api, draft, dpo_a):
    response = api(dpo_a).post(f"/api/v1/notices/{draft.pk}/publish/")
    assert response.status_code == 200, response.json()
    assert response.json()["published_by"] == "dpo-a"
    assert AuditEvent.objects.filter(action="notice.published", actor="dpo-a").exists()
    response = api(dpo_a).post(f"/api/v1/notices/{draft.pk}/withdraw/", {"reason": "Wrong length"})
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"
    assert AuditEvent.objects.filter(action="notice.withdrawn", actor="dpo-a").exists()


def test_withdrawing_without_a_reason_is_a_400(api, published, dpo_a):
    response = api(dpo_a).post(f"/api/v1/notices/{published.pk}/withdraw/", {})
    assert response.status_code == 400 and "reason" in response.json()


# --- refusals ---------------------------------------------------------------------
def test_the_dpo_of_a_processor_cannot_publish(api, draft, dpo_csu):
    assert api(dpo_csu).post(f"/api/v1/notices/{draft.pk}/publish/").status_code == 403
    assert NoticeVersion.objects.get(pk=draft.pk).status == "draft"


def test_the_dpo_of_a_processor_cannot_generate_a_draft(api, complete, dpo_csu):
    assert api(dpo_csu).post("/api/v1/programmes/testshire/notices/").status_code == 403


def test_a_dpo_of_another_region_gets_404s(api, draft, dpo_elsewhere):
    client = api(dpo_elsewhere)
    assert client.post(f"/api/v1/notices/{draft.pk}/publish/").status_code == 404
    assert client.get(f"/api/v1/notices/{draft.pk}/").status_code == 404
    assert client.post("/api/v1/programmes/testshire/notices/").status_code == 404
    assert client.post(f"/api/v1/notices/{draft.pk}/withdraw/", {"reason": "x"}).status_code == 404
    assert NoticeVersion.objects.get(pk=draft.pk).status == "draft"


def test_a_practice_manager_cannot_edit_or_publish(api, draft, alice):
    client = api(alice)
    response = client.patch(
        f"/api/v1/notices/{draft.pk}/",
        {"sections": [{"key": "about", "local_text": "x"}]},
        format="json",
    )
    assert response.status_code == 403
    assert client.post(f"/api/v1/notices/{draft.pk}/publish/").status_code == 403
    assert (
        client.get(f"/api/v1/notices/{draft.pk}/").status_code == 403
    )  # a draft of their own programme
    assert NoticeVersion.objects.get(pk=draft.pk).sections == draft.sections


def test_a_practice_manager_of_another_practice_cannot_withdraw(api, published, charlie):
    response = api(charlie).post(f"/api/v1/notices/{published.pk}/withdraw/", {"reason": "x"})
    assert response.status_code == 403
    assert NoticeVersion.objects.get(pk=published.pk).status == "published"


def test_a_csu_admin_reads_drafts_but_cannot_publish(api, draft, admin):
    assert api(admin).get(f"/api/v1/notices/{draft.pk}/").status_code == 200
    assert api(admin).post(f"/api/v1/notices/{draft.pk}/publish/").status_code == 403


def test_the_api_needs_sign_in(api, published):
    assert api().get("/api/v1/programmes/testshire/notices/").status_code in (401, 403)
    assert api().post(f"/api/v1/notices/{published.pk}/withdraw/", {"reason": "x"}).status_code in (
        401,
        403,
    )


def test_an_unknown_programme_or_version_is_a_404(api, dpo_a, db):
    assert api(dpo_a).post("/api/v1/programmes/nowhere/notices/").status_code == 404
    assert api(dpo_a).get("/api/v1/notices/999999/").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/programmes/{programme_slug}/notices/",
        "/api/v1/notices/{id}/",
        "/api/v1/notices/{id}/completeness/",
        "/api/v1/notices/{id}/publish/",
        "/api/v1/notices/{id}/withdraw/",
    ],
)
def test_the_notice_endpoints_are_in_the_schema(client, db, path):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert path in schema["paths"]


def test_publishing_a_draft_that_changes_nothing_is_a_409(api, published, complete, dpo_a):
    from notices import services

    again, _ = services.notice_draft_generate(actor=dpo_a, programme=complete)
    response = api(dpo_a).post(f"/api/v1/notices/{again.pk}/publish/")
    assert response.status_code == 409
    assert "there is nothing to publish" in response.json()["detail"]


# --- publishing a version harder to read ------------------------------------------------
def test_publishing_a_harder_draft_is_a_409_with_both_figures(api, harder_draft, dpo_a):
    response = api(dpo_a).post(f"/api/v1/notices/{harder_draft.pk}/publish/")
    assert response.status_code == 409
    body = response.json()
    assert "harder to read than version 1" in body["detail"]
    before, after = body["readability"]["before"], body["readability"]["after"]
    assert after["flesch_reading_ease"] < before["flesch_reading_ease"]
    assert after["flesch_kincaid_grade"] > before["flesch_kincaid_grade"]
    assert NoticeVersion.objects.get(pk=harder_draft.pk).status == "draft"


def test_a_harder_draft_is_published_with_the_confirm_flag(api, harder_draft, dpo_a):
    response = api(dpo_a).post(
        f"/api/v1/notices/{harder_draft.pk}/publish/",
        {"confirm_harder_to_read": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "published"


def test_the_confirm_flag_must_be_a_boolean(api, harder_draft, dpo_a):
    response = api(dpo_a).post(
        f"/api/v1/notices/{harder_draft.pk}/publish/",
        {"confirm_harder_to_read": "perhaps"},
        format="json",
    )
    assert response.status_code == 400 and "confirm_harder_to_read" in response.json()


def test_readability_is_given_per_section_with_the_hardest_sentences(api, harder_draft, dpo_a):
    body = api(dpo_a).get(f"/api/v1/notices/{harder_draft.pk}/").json()["readability"]
    assert body["flesch_kincaid_grade"] is not None and body["words"] > 100
    about = next(s for s in body["sections"] if s["key"] == "about")
    assert about["title"] == "About this notice" and about["words"] > 40
    assert "law" not in {s["key"] for s in body["sections"]}  # the verbatim law is not scored
    hardest = body["hardest_sentences"][0]
    assert hardest["section"] == "about" and hardest["text"].startswith("Notwithstanding")


def test_the_schema_documents_the_confirm_flag(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    publish = schema["paths"]["/api/v1/notices/{id}/publish/"]["post"]
    ref = publish["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    assert "confirm_harder_to_read" in schema["components"]["schemas"][name]["properties"]
