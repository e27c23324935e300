"""The picture of a programme's flows: server-drawn SVG, labelled, with a table beside it."""

import xml.etree.ElementTree as ET

import pytest

from governance import services
from governance.flowmap import STATUS_STYLES, build_flow_map
from governance.models import DataFlow, Participation
from tests.factories import OrganisationFactory, ParticipationFactory

SVG_NS = "{http://www.w3.org/2000/svg}"


def _svg(html: str) -> ET.Element:
    start = html.rindex("<svg", 0, html.index('class="portal-flowmap__svg"'))
    end = html.index("</svg>", start) + len("</svg>")
    return ET.fromstring(html[start:end])  # noqa: S314 - our own page, parsed to check it is well formed


def _texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG_NS}text")]


@pytest.fixture
def map_flows(approved, programme, practice_b, csu, admin):
    """A approved (A -> CSU), B awaiting decision (B -> CSU), the CSU back to A pseudonymised (draft)."""
    b = services.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_b,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
        legal_basis_codes=["UK-GDPR-6-1-e"],
        dpia_reference="D",
        dsa_reference="S",
    )
    services.data_flow_submit(actor=admin, flow=b)
    back = services.data_flow_create(
        actor=admin,
        programme=programme,
        source=csu,
        destination=approved.source,
        data_categories=["gp", "social_care"],
        identifiability="pseudonymised",
    )
    return approved, b, back


def test_the_programme_page_draws_its_flows_as_an_accessible_svg(client, admin, map_flows):
    approved, submitted, back = map_flows
    client.force_login(admin)
    html = client.get("/programmes/testshire/").content.decode()
    svg = _svg(html)
    assert svg.get("role") == "img"
    title_id, desc_id = svg.get("aria-labelledby").split()
    assert svg.find(f"{SVG_NS}title").get("id") == title_id
    assert svg.find(f"{SVG_NS}title").text == "Data flows of Testshire PHM"
    desc = svg.find(f"{SVG_NS}desc")
    assert desc.get("id") == desc_id
    assert desc.text.startswith("3 data flows between 3 organisations (")
    assert "1 approved" in desc.text and "1 awaiting decision" in desc.text
    assert "script" not in ET.tostring(svg, encoding="unicode")  # nothing to run


def test_organisations_are_nodes_in_columns_by_role(client, admin, map_flows):
    client.force_login(admin)
    svg = _svg(client.get("/programmes/testshire/").content.decode())
    nodes = {
        (g.get("data-ods"), g.get("data-side"))
        for g in svg.iter(f"{SVG_NS}g")
        if g.get("class") == "portal-flowmap__node"
    }
    # Practice A sends and gets data back, so it is drawn on both sides.
    assert nodes == {
        ("A81001", "source"),
        ("B82002", "source"),
        ("0AR", "processor"),
        ("A81001", "recipient"),
    }
    assert _texts(svg)[:3] == ["Sources", "Processors", "Recipients"]
    texts = _texts(svg)
    assert "Practice A Surgery" in texts and "North of England" in " ".join(texts)


def test_each_flow_is_an_arrow_labelled_with_data_identifiability_and_status(
    client, admin, map_flows
):
    approved, submitted, back = map_flows
    client.force_login(admin)
    svg = _svg(client.get("/programmes/testshire/").content.decode())
    arrows = {
        p.get("data-flow"): p
        for p in svg.iter(f"{SVG_NS}path")
        if p.get("class") == "portal-flowmap__flow"
    }
    assert set(arrows) == {str(approved.pk), str(submitted.pk), str(back.pk)}
    assert arrows[str(approved.pk)].get("stroke") == STATUS_STYLES["approved"][0]
    assert arrows[str(approved.pk)].get("stroke-dasharray") is None  # solid
    assert arrows[str(submitted.pk)].get("stroke-dasharray") == STATUS_STYLES["submitted"][1]
    assert arrows[str(back.pk)].get("marker-end").endswith("-arrow-draft)")
    labels = {
        g.get("data-flow"): _texts(g)
        for g in svg.iter(f"{SVG_NS}g")
        if g.get("class") == "portal-flowmap__label"
    }
    assert labels[str(approved.pk)] == ["GP", "identifiable", "approved"]
    assert labels[str(submitted.pk)] == ["GP", "identifiable", "awaiting decision"]
    assert labels[str(back.pk)] == ["GP + Social care", "pseudonymised", "draft"]


def test_the_key_explains_colour_and_line_style_in_words(client, admin, map_flows):
    client.force_login(admin)
    svg = _svg(client.get("/programmes/testshire/").content.decode())
    keys = [g for g in svg.iter(f"{SVG_NS}g") if g.get("class") == "portal-flowmap__key"]
    assert [_texts(k)[0] for k in keys] == [
        "approved: solid line",
        "awaiting decision: long dashes",
        "draft: dots",
        "suspended: dash and dot",
        "rejected: short dashes",
        "closed: sparse dots",
    ]
    patterns = [k.find(f"{SVG_NS}line").get("stroke-dasharray") for k in keys]
    assert len(set(patterns)) == len(patterns)  # every status has its own line style


def test_a_table_of_the_same_flows_follows_the_picture(client, admin, map_flows):
    approved, submitted, back = map_flows
    client.force_login(admin)
    html = client.get("/programmes/testshire/").content.decode()
    table = html[html.index("</svg>") :]
    assert (
        '<caption class="nhsuk-table__caption">The data flows of Testshire PHM</caption>' in table
    )
    assert table.count('<tr class="nhsuk-table__row">') == 3 + 1  # header and three flows
    assert "Awaiting decision" in table and "Approved" in table and "Draft" in table
    assert f'href="/data-flows/{approved.pk}/"' in table


def test_everyone_sees_the_map_but_drafts_and_links_only_where_they_may(client, charlie, map_flows):
    """Charlie (practice B) is party to B's flow, not to A's, nor to the draft back to A."""
    approved, submitted, back = map_flows
    client.force_login(charlie)
    html = client.get("/programmes/testshire/").content.decode()
    svg = _svg(html)
    drawn = {
        p.get("data-flow")
        for p in svg.iter(f"{SVG_NS}path")
        if p.get("class") == "portal-flowmap__flow"
    }
    assert drawn == {str(approved.pk), str(submitted.pk)}
    table = html.split('<h2 id="data-flows">', 1)[1].split("</table>")[0]
    assert f'href="/data-flows/{submitted.pk}/"' in table
    assert f'href="/data-flows/{approved.pk}/"' not in table


def test_a_programme_without_flows_says_so(client, admin, programme):
    client.force_login(admin)
    html = client.get("/programmes/testshire/").content.decode()
    assert "No data flow has been proposed in this programme yet." in html
    assert "<svg" not in html.split('<h2 id="data-flows">', 1)[1]


def test_names_are_escaped_in_the_svg(db, programme, admin, practice_a):
    odd = OrganisationFactory(ods_code="ODD1", name='Smith & <Jones> "Ltd"', kind="csu")
    ParticipationFactory(programme=programme, organisation=odd, role=Participation.Role.PROCESSOR)
    flow = services.data_flow_create(
        actor=admin,
        programme=programme,
        source=practice_a,
        destination=odd,
        data_categories=["gp"],
        identifiability="identifiable",
    )
    flow_map = build_flow_map(
        [flow], programme.participations.all(), title="T <x>", ident="flowmap-t"
    )
    svg = ET.fromstring(str(flow_map.svg))  # noqa: S314 - our own output
    assert svg.find(f"{SVG_NS}title").text == "T <x>"
    assert "Smith & <Jones>" in " ".join(_texts(svg))


def test_processors_are_drawn_in_the_order_data_passes_through_them(
    db, programme, admin, practice_a, csu
):
    optum = OrganisationFactory(ods_code="OPT1", name="Optum", kind="commercial_processor")
    ParticipationFactory(programme=programme, organisation=optum, role=Participation.Role.PROCESSOR)
    flows = [
        services.data_flow_create(
            actor=admin,
            programme=programme,
            source=src,
            destination=dst,
            data_categories=["gp"],
            identifiability=ident,
        )
        for src, dst, ident in [
            (csu, optum, "pseudonymised"),
            (practice_a, csu, "identifiable"),
            (optum, practice_a, "pseudonymised"),
        ]
    ]
    flow_map = build_flow_map(flows, programme.participations.all(), title="T", ident="t")
    columns = {(n.organisation.ods_code, n.side): n.column for n in flow_map.nodes}
    assert columns == {
        ("A81001", "source"): 0,
        ("0AR", "processor"): 1,
        ("OPT1", "processor"): 2,
        ("A81001", "recipient"): 3,
    }
    assert flow_map.columns == ["Sources", "Processors", "Processors", "Recipients"]
    # Every arrow runs left to right: no flow is drawn backwards.
    assert all(e.x2 > e.x1 for e in flow_map.edges)
    assert DataFlow.objects.count() == 3


def test_processors_that_feed_each_other_are_still_drawn(db, programme, admin, csu):
    other = OrganisationFactory(ods_code="OTH1", name="Other Processor", kind="csu")
    ParticipationFactory(programme=programme, organisation=other, role=Participation.Role.PROCESSOR)
    flows = [
        services.data_flow_create(
            actor=admin,
            programme=programme,
            source=src,
            destination=dst,
            data_categories=["gp"],
            identifiability="pseudonymised",
        )
        for src, dst in [(csu, other), (other, csu)]
    ]
    flow_map = build_flow_map(flows, programme.participations.all(), title="T", ident="t")
    svg = ET.fromstring(str(flow_map.svg))  # noqa: S314 - our own output
    drawn = [p for p in svg.iter(f"{SVG_NS}path") if p.get("class") == "portal-flowmap__flow"]
    assert len(drawn) == 2
    assert sorted(n.column for n in flow_map.nodes) == [0, 1]


def test_long_names_and_labels_wrap_inside_their_boxes_with_the_whole_text_on_hover(
    client, admin, approved, practice_a, csu
):
    from governance.flowmap import LABEL_CHAR_W, NAME_CHAR_W, NODE_W

    practice_a.name = (
        "The Very Long Named Riverside and Meadowbank Family Health Partnership Surgery"
    )
    practice_a.short_name = ""  # the map then draws the name (a short name has 40 at most)
    practice_a.save()
    approved.data_categories = ["gp", "mental_health", "social_care", "community", "hospital"]
    approved.save()
    client.force_login(admin)
    svg = _svg(client.get("/programmes/testshire/").content.decode())
    groups = list(svg.iter(f"{SVG_NS}g"))
    node = next(g for g in groups if g.get("data-ods") == practice_a.ods_code)
    assert node.find(f"{SVG_NS}title").text == practice_a.name
    name_lines = _texts(node)[:-1]
    assert len(name_lines) == 3 and name_lines[-1].endswith("…")
    assert all(len(line) * NAME_CHAR_W <= NODE_W - 20 for line in name_lines)
    box = node.find(f"{SVG_NS}rect")
    assert float(box.get("height")) >= 19 + 2 * 16 + 22  # three lines and the code line fit
    label = next(
        g
        for g in groups
        if g.get("class") == "portal-flowmap__label" and g.get("data-flow") == str(approved.pk)
    )
    assert label.find(f"{SVG_NS}title").text == (
        "GP + Mental health + Social care + Community + Hospital"
    )
    lines = _texts(label)
    assert lines[-2:] == ["identifiable", "approved"]
    width = float(label.find(f"{SVG_NS}rect").get("width"))
    assert all(len(line) * LABEL_CHAR_W + 12 <= width for line in lines)
    assert float(label.find(f"{SVG_NS}rect").get("height")) == len(lines) * 12 + 4
