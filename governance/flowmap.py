"""The picture of a programme's data flows: an inline SVG drawn on the server, no JavaScript.

Organisations are boxes in columns by role: sources on the left, processors in the
middle (one column per step, so NECS comes before Optum), recipients on the right. An
organisation that both sends and receives outside a processor role (a GP practice that
gets its pseudonymised data back to re-identify patients) appears on both sides. Each
flow is an arrow labelled with its data, its identifiability and its status; the status
also sets the arrow's colour and line style, explained by a legend, so colour never
carries meaning alone. The page shows a table of the same flows beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from governance.models import DataFlow, Organisation, Participation

NODE_W = 165
NODE_H = 58
PORT_GAP = 13  # at least this far apart where arrows meet a box
V_GAP = 26
COL_GAP = 175
MARGIN = 16
HEADER = 44
LABEL_LINE = 12
LABEL_H = 3 * LABEL_LINE + 4  # an arrow's label of three lines; longer data wraps to more
LEGEND_W = 250
# Text is measured by its widest likely glyphs (Arial), so a label never outgrows its box.
NAME_CHAR_W = 8.0  # 13px bold
LABEL_CHAR_W = 6.6  # 11px, the bold status line included
NAME_LINE = 16
NAME_LINES = 3
LINE_CHARS = int((NODE_W - 20) / NAME_CHAR_W)  # an organisation's name, per line
LABEL_CHARS = int((COL_GAP - 24) / LABEL_CHAR_W)  # a flow's label, per line, within the gap

# status -> (colour, stroke-dasharray, legend wording); each pattern differs as well as the colour.
STATUS_STYLES: dict[str, tuple[str, str, str]] = {
    DataFlow.Status.APPROVED: ("#007f3b", "", "approved: solid line"),
    DataFlow.Status.SUBMITTED: ("#005eb8", "10 5", "awaiting decision: long dashes"),
    DataFlow.Status.DRAFT: ("#768692", "2 4", "draft: dots"),
    DataFlow.Status.SUSPENDED: ("#7c2855", "12 4 2 4", "suspended: dash and dot"),
    DataFlow.Status.REJECTED: ("#d5281b", "4 3", "rejected: short dashes"),
    DataFlow.Status.CLOSED: ("#425563", "1 8", "closed: sparse dots"),
}
CATEGORY_SHORT = {
    DataFlow.Category.GP: "GP",
    DataFlow.Category.HOSPITAL: "Hospital",
    DataFlow.Category.COMMUNITY: "Community",
    DataFlow.Category.MENTAL_HEALTH: "Mental health",
    DataFlow.Category.SOCIAL_CARE: "Social care",
    DataFlow.Category.NATIONAL: "National",
}
KIND_SHORT = {
    Organisation.Kind.GP_PRACTICE: "GP practice",
    Organisation.Kind.PCN: "PCN",
    Organisation.Kind.CCG: "CCG / ICB",
    Organisation.Kind.CSU: "CSU",
    Organisation.Kind.NHS_TRUST: "NHS trust",
    Organisation.Kind.COMMUNITY_PROVIDER: "Community",
    Organisation.Kind.LOCAL_AUTHORITY: "Council",
    Organisation.Kind.NATIONAL_BODY: "National body",
    Organisation.Kind.COMMERCIAL_PROCESSOR: "Company",
}
KIND_ORDER = [
    Organisation.Kind.GP_PRACTICE,
    Organisation.Kind.PCN,
    Organisation.Kind.NHS_TRUST,
    Organisation.Kind.COMMUNITY_PROVIDER,
    Organisation.Kind.LOCAL_AUTHORITY,
    Organisation.Kind.NATIONAL_BODY,
    Organisation.Kind.CCG,
    Organisation.Kind.CSU,
    Organisation.Kind.COMMERCIAL_PROCESSOR,
]


@dataclass
class Node:
    side: str  # "source", "processor" or "recipient"
    organisation: Organisation
    column: int = 0
    x: float = 0
    y: float = 0
    h: float = NODE_H
    order: float = 0
    outgoing: list[Edge] = field(default_factory=list)
    incoming: list[Edge] = field(default_factory=list)

    @property
    def name(self) -> str:
        org = self.organisation
        # A short name that reads as a sentence fragment ("the Local Authority") is for notices.
        return org.short_name if org.short_name[:1].isupper() else org.name

    @property
    def label_lines(self) -> list[str]:
        return _wrap(self.name, LINE_CHARS, NAME_LINES)


@dataclass
class Edge:
    flow: DataFlow
    source: Node
    target: Node
    x1: float = 0
    y1: float = 0
    x2: float = 0
    y2: float = 0
    label_x: float = 0
    label_y: float = 0

    @property
    def label_text(self) -> str:
        return " + ".join(CATEGORY_SHORT.get(c, c) for c in self.flow.data_categories)

    @property
    def label_lines(self) -> list[str]:
        return [
            *_wrap(self.label_text, LABEL_CHARS, 2),
            self.flow.get_identifiability_display().lower(),
            self.flow.get_status_display().lower(),
        ]

    @property
    def label_h(self) -> float:
        return len(self.label_lines) * LABEL_LINE + 4


@dataclass
class FlowMap:
    nodes: list[Node]
    edges: list[Edge]
    columns: list[str]
    width: float
    height: float
    svg: SafeString


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """Return the text in at most `lines` lines of `width` characters, cut with … if longer."""
    words, out, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    out.append(line)
    if len(out) > lines:
        out = out[: lines - 1] + [" ".join(out[lines - 1 :])]
    return [o if len(o) <= width else o[: width - 1] + "…" for o in out]


def _processor_layers(processors: set[int], flows: list[DataFlow]) -> dict[int, int]:
    """Return each processor's step: 0 for the first, one more than any processor feeding it."""
    layer = dict.fromkeys(processors, 0)
    links = [
        (f.source_id, f.destination_id)
        for f in flows
        if f.source_id in processors and f.destination_id in processors
    ]
    for _ in range(len(processors)):  # at most that many steps; a cycle stops growing there
        changed = False
        for a, b in links:
            if layer[b] < layer[a] + 1 < len(processors):
                layer[b] = layer[a] + 1
                changed = True
        if not changed:
            break
    return layer


def build_flow_map(
    flows: Iterable[DataFlow], participations: Iterable[Participation], *, title: str, ident: str
) -> FlowMap | None:
    """Lay out the flows and draw them; None when there is no flow to draw."""
    flows = list(flows)
    if not flows:
        return None
    processors = {
        p.organisation_id for p in participations if p.role in Participation.PROCESSOR_ROLES
    }
    processors &= {f.source_id for f in flows} | {f.destination_id for f in flows}
    layers = _processor_layers(processors, flows)
    has_sources = any(f.source_id not in processors for f in flows)
    has_recipients = any(f.destination_id not in processors for f in flows)
    steps = max(layers.values(), default=-1) + 1
    first_step = 1 if has_sources else 0
    columns = (
        (["Sources"] if has_sources else [])
        + ["Processors"] * steps
        + (["Recipients"] if has_recipients else [])
    )

    nodes: dict[tuple[str, int], Node] = {}

    def node(side: str, org: Organisation) -> Node:
        key = (side, org.pk)
        if key not in nodes:
            if side == "source":
                column = 0
            elif side == "processor":
                column = first_step + layers[org.pk]
            else:
                column = len(columns) - 1
            nodes[key] = Node(side=side, organisation=org, column=column)
        return nodes[key]

    edges = []
    for f in flows:
        src = node("processor" if f.source_id in processors else "source", f.source)
        dst = node("processor" if f.destination_id in processors else "recipient", f.destination)
        edge = Edge(flow=f, source=src, target=dst)
        src.outgoing.append(edge)
        dst.incoming.append(edge)
        edges.append(edge)

    _order_and_place(list(nodes.values()), len(columns))
    _route(edges)
    width = MARGIN * 2 + len(columns) * NODE_W + (len(columns) - 1) * COL_GAP
    width = max(width, MARGIN * 2 + 3 * LEGEND_W)
    body_bottom = max(n.y + n.h for n in nodes.values())
    label_bottom = max(e.label_y + e.label_h / 2 for e in edges)
    legend_y = max(body_bottom, label_bottom) + 36
    height = legend_y + 56
    svg = _draw(
        list(nodes.values()), edges, columns, width, height, legend_y, title=title, ident=ident
    )
    return FlowMap(list(nodes.values()), edges, columns, width, height, svg)


def _order_and_place(nodes: list[Node], column_count: int) -> None:
    by_column: dict[int, list[Node]] = {c: [] for c in range(column_count)}
    for n in nodes:
        by_column[n.column].append(n)
        # Tall enough for its name (up to three lines), its code line and its arrows.
        text_h = 19 + (len(n.label_lines) - 1) * NAME_LINE + 8 + 14
        n.h = max(NODE_H, text_h, PORT_GAP * (max(len(n.incoming), len(n.outgoing)) + 1))

    def kind_rank(n: Node) -> int:
        kind = n.organisation.kind
        return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)

    for c in range(column_count):
        column = by_column[c]
        for n in column:
            # The average place of what feeds it keeps arrows short and uncrossed.
            before = [e.source.order for e in n.incoming if e.source.column < c]
            n.order = sum(before) / len(before) if before else -1
        column.sort(key=lambda n: (n.order, kind_rank(n), n.organisation.name))
        for i, n in enumerate(column):
            n.order = i

    def height(column: list[Node]) -> float:
        return sum(n.h for n in column) + V_GAP * (len(column) - 1)

    full = max(height(col) for col in by_column.values())
    for c, column in by_column.items():
        y = HEADER + (full - height(column)) / 2
        for n in column:
            n.x = MARGIN + c * (NODE_W + COL_GAP)
            n.y = y
            y += n.h + V_GAP


def _route(edges: list[Edge]) -> None:
    """Spread each node's arrows along its side, then place labels without overlaps."""
    nodes = {id(e.source): e.source for e in edges} | {id(e.target): e.target for e in edges}
    for n in nodes.values():
        out = sorted(n.outgoing, key=lambda e: (e.target.y, e.target.x))
        for i, e in enumerate(out):
            e.x1 = n.x + NODE_W
            e.y1 = n.y + n.h * (i + 1) / (len(out) + 1)
        inc = sorted(n.incoming, key=lambda e: (e.source.y, e.source.x))
        for i, e in enumerate(inc):
            e.x2 = n.x
            e.y2 = n.y + n.h * (i + 1) / (len(inc) + 1)
    label_h = max(e.label_h for e in edges)
    gaps: dict[tuple[int, int], list[Edge]] = {}
    for e in edges:
        if e.x2 > e.x1:
            # Halfway along the curve: the middle of the gap between the two columns.
            e.label_x = (e.x1 + e.x2) / 2
            e.label_y = (e.y1 + e.y2) / 2
        else:
            e.label_x = (e.x1 + e.x2) / 2
            e.label_y = max(e.source.y + e.source.h, e.target.y + e.target.h) + label_h
        gaps.setdefault((e.source.column, e.target.column), []).append(e)
    step = label_h + 3
    for group in gaps.values():
        # Labels that would overlap stack into a block centred where they wanted to be.
        group.sort(key=lambda e: e.label_y)
        wanted = {id(e): e.label_y for e in group}
        blocks: list[tuple[list[Edge], float]] = []
        for e in group:
            blocks.append(([e], e.label_y))
            while len(blocks) > 1:
                (first, first_y), (second, second_y) = blocks[-2], blocks[-1]
                if first_y + len(first) * step <= second_y:
                    break
                merged = first + second
                centre = sum(wanted[id(m)] for m in merged) / len(merged)
                top = max(centre - (len(merged) - 1) * step / 2, HEADER + label_h / 2)
                blocks[-2:] = [(merged, top)]
        for block, top in blocks:
            for i, e in enumerate(block):
                e.label_y = top + i * step


def _path(e: Edge) -> str:
    if e.x2 > e.x1:
        dx = (e.x2 - e.x1) / 2
        return (
            f"M{e.x1:.1f},{e.y1:.1f} C{e.x1 + dx:.1f},{e.y1:.1f} {e.x2 - dx:.1f},{e.y2:.1f} "
            f"{e.x2 - 1:.1f},{e.y2:.1f}"
        )
    # Backwards (a processor feeding an earlier one): loop underneath.
    low = e.label_y
    return (
        f"M{e.x1:.1f},{e.y1:.1f} C{e.x1 + 90:.1f},{low:.1f} {e.x2 - 90:.1f},{low:.1f} "
        f"{e.x2 - 1:.1f},{e.y2:.1f}"
    )


def _draw(
    nodes: list[Node],
    edges: list[Edge],
    columns: list[str],
    width: float,
    height: float,
    legend_y: float,
    *,
    title: str,
    ident: str,
) -> SafeString:
    counts: dict[str, int] = {}
    for e in edges:
        label = e.flow.get_status_display().lower()
        counts[label] = counts.get(label, 0) + 1
    desc = (
        f"{len(edges)} data flow{'s' if len(edges) != 1 else ''} between "
        f"{len({n.organisation.pk for n in nodes})} organisations ("
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + "). The table that follows lists the same flows."
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="portal-flowmap__svg" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'aria-labelledby="{ident}-title {ident}-desc" font-family="Frutiger W01, Arial, sans-serif">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
        "<defs>",
    ]
    for status, (colour, _, _) in STATUS_STYLES.items():
        out.append(
            f'<marker id="{ident}-arrow-{status}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    for c, name in enumerate(columns):
        x = MARGIN + c * (NODE_W + COL_GAP) + NODE_W / 2
        out.append(
            f'<text x="{x:.0f}" y="22" text-anchor="middle" font-size="15" font-weight="bold" '
            f'fill="#212b32">{escape(name)}</text>'
        )
    for e in edges:
        colour, dash, _ = STATUS_STYLES[e.flow.status]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<path class="portal-flowmap__flow" data-flow="{e.flow.pk}" data-status="{e.flow.status}" '
            f'd="{_path(e)}" fill="none" stroke="{colour}" stroke-width="2.5"{dash_attr} '
            f'marker-end="url(#{ident}-arrow-{e.flow.status})"/>'
        )
    for n in nodes:
        org = n.organisation
        out.append(
            f'<g class="portal-flowmap__node" data-ods="{escape(org.ods_code)}" data-side="{n.side}">'
            f'<rect x="{n.x:.0f}" y="{n.y:.0f}" width="{NODE_W}" height="{n.h:.0f}" rx="4" '
            f'fill="#ffffff" stroke="#425563" stroke-width="1.5"/>'
        )
        lines = n.label_lines
        if " ".join(lines) != n.name:  # cut short: the whole name shows on hover
            out.append(f"<title>{escape(n.name)}</title>")
        for i, line in enumerate(lines):
            out.append(
                f'<text x="{n.x + 10:.0f}" y="{n.y + 19 + i * NAME_LINE:.0f}" font-size="13" '
                f'font-weight="bold" fill="#212b32">{escape(line)}</text>'
            )
        out.append(
            f'<text x="{n.x + 10:.0f}" y="{n.y + n.h - 8:.0f}" font-size="11" fill="#4c6272">'
            f"{escape(org.ods_code)} · {escape(KIND_SHORT.get(org.kind, org.kind))}</text></g>"
        )
    for e in edges:
        lines = e.label_lines
        colour = STATUS_STYLES[e.flow.status][0]
        w = max(len(line) for line in lines) * LABEL_CHAR_W + 12
        x, top = e.label_x, e.label_y - e.label_h / 2
        out.append(
            f'<g class="portal-flowmap__label" data-flow="{e.flow.pk}">'
            f'<rect x="{x - w / 2:.1f}" y="{top:.1f}" width="{w:.1f}" height="{e.label_h:.0f}" '
            f'rx="3" fill="#ffffff" stroke="{colour}" stroke-width="1"/>'
        )
        if " ".join(lines[:-2]) != e.label_text:  # cut short: the whole label shows on hover
            out.append(f"<title>{escape(e.label_text)}</title>")
        for i, line in enumerate(lines):
            bold = ' font-weight="bold"' if i == len(lines) - 1 else ""
            fill = colour if i == len(lines) - 1 else "#212b32"
            out.append(
                f'<text x="{x:.1f}" y="{top + 12 + i * LABEL_LINE:.1f}" text-anchor="middle" '
                f'font-size="11" fill="{fill}"{bold}>{escape(line)}</text>'
            )
        out.append("</g>")
    out.append(
        f'<text x="{MARGIN}" y="{legend_y:.0f}" font-size="13" font-weight="bold" fill="#212b32">'
        "Key</text>"
    )
    for i, (status, (colour, dash, wording)) in enumerate(STATUS_STYLES.items()):
        x = MARGIN + (i % 3) * LEGEND_W
        y = legend_y + 18 + (i // 3) * 20
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<g class="portal-flowmap__key" data-status="{status}">'
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 44}" y2="{y - 4}" stroke="{colour}" '
            f'stroke-width="2.5"{dash_attr}/>'
            f'<text x="{x + 52}" y="{y}" font-size="12" fill="#212b32">{escape(wording)}</text></g>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped or a number
