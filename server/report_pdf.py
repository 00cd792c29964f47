"""The monthly SLA and efficiency report as a PDF (reportlab), in the reader's language.

Chinese text uses reportlab's built-in CID font STSong-Light: the PDF names the font and every PDF
reader supplies a matching one, so the server needs no font files and the document stays small.
The labels are gettext texts of the notification catalogue (`tickets/notify/locale`), extracted by
scripts/messages, so one catalogue holds what people read in messages and in reports.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from server.schemas import MonthlyReportOut
from tickets.notify.locale import Locale
from tickets.notify.message import clock_name, kind_name, metric_label

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
_registered = False


def _font(locale: Locale) -> str:
    global _registered
    if locale.language == "en":
        return LATIN_FONT
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _registered = True
    return CJK_FONT


def render_pdf(report: MonthlyReportOut, locale: Locale) -> bytes:
    _: Callable[[str], str] = locale.gettext
    font = _font(locale)
    styles = getSampleStyleSheet()
    title = ParagraphStyle("title", parent=styles["Title"], fontName=font)
    heading = ParagraphStyle("heading", parent=styles["Heading2"], fontName=font)
    body = ParagraphStyle("body", parent=styles["Normal"], fontName=font)

    def para(text: object, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(str(text)), style)

    def table(rows: Sequence[Sequence[object]], header: bool = False) -> Table:
        t = Table([[para(cell) for cell in row] for row in rows], hAlign="LEFT", colWidths=None)
        style = [("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf2")))
        t.setStyle(TableStyle(style))
        return t

    def duration(seconds: float | None) -> str:  # h:mm:ss, as the dashboard shows it
        if seconds is None:
            return "—"
        whole = round(abs(seconds))
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"

    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f} %"

    k = report.totals
    customer = report.customer_name or _("all customers")
    story: list[object] = [
        para(_("Monthly SLA and efficiency report"), title),
        para(_("{month}, {customer}").format(month=report.month, customer=customer)),
        Spacer(1, 4 * mm),
        para(_("Efficiency"), heading),
        table([
            [_("Tickets opened"), k.opened], [_("Resolved"), k.resolved],
            [_("Resolution rate"), rate(k.resolution_rate)],
            [_("First response, median"), duration(k.first_response_p50_s)],
            [_("First response, 90th percentile"), duration(k.first_response_p90_s)],
            [_("Mean time to acknowledge"), duration(k.mtta_s)], [_("Mean time to repair"), duration(k.mttr_s)],
            [_("Satisfaction (0-100)"), "—" if k.satisfaction is None else f"{k.satisfaction:.0f}"],
            [_("Backlog at the month's end"), k.backlog],
        ]),
        para(_("SLA attainment"), heading),
        table([[_("Clock"), _("Settled"), _("Met"), _("Rate")]]
              + [[clock_name(s.clock, locale), s.settled, s.met, rate(s.rate)] for s in k.sla], header=True),
        para(_("Problems"), heading),
        table([[_("Ticket kind"), _("Tickets")]]
              + [[kind_name(kind, locale), n] for kind, n in sorted(report.by_kind.items())], header=True),
        Spacer(1, 3 * mm),
        table([[_("Metric"), _("Tickets")]]
              + [[metric_label(m, locale), n] for m, n in sorted(report.by_metric.items())], header=True),
    ]
    if report.top_devices:
        story += [para(_("Devices that failed most"), heading),
                  table([[_("Device"), _("Tickets")]] + [[d, n] for d, n in report.top_devices], header=True)]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=f"edgewatch {report.month}", author="edgewatch",
                            leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm, bottomMargin=18 * mm)
    doc.build(story)
    return out.getvalue()
