"""The receipt (售后服务收费收据) as a PDF in Chinese, made with reportlab.

The Chinese text is set in a real TrueType CJK font that is EMBEDDED in the PDF (a subset, as a
``FontFile2`` stream), so that the receipt reads the same on any phone or printer. reportlab's
built-in CID fonts (STSong-Light …) are not used: they are not embedded and show as boxes where
the reader lacks the font. The font is looked for at run time (``cjk_font_path``): the setting
``RECEIPT_FONT_PATH``, then WenQuanYi (Debian ``fonts-wqy-microhei`` / ``fonts-wqy-zenhei``),
AR PL, Droid, and TrueType-flavoured Noto CJK files. (Noto CJK's usual ``.ttc`` files have
PostScript outlines, which reportlab cannot embed; they are skipped.) None found: a clear
``ReceiptFontMissing`` (503).
"""

from __future__ import annotations

import glob
import os
import threading
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import DomainError
from aftersales.core.masking import mask_phone
from aftersales.tickets.models import WorkOrder

from .models import LineKind, Payment, Quote, QuoteStatus

FONT_NAME = "AfterSalesCJK"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansSC-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
FONT_GLOBS = ("/usr/share/fonts/**/wqy*.tt[cf]", "/usr/share/fonts/**/*CJK*.tt[cf]", "/usr/share/fonts/**/*SC*.ttf",
              "/usr/local/share/fonts/**/*.tt[cf]")
PROBE = "售后服务收费收据"
_lock = threading.Lock()
_font_path: str | None = None


class ReceiptFontMissing(DomainError):
    status = 503
    code = "receipt_font_missing"

    def __init__(self, tried: list[str]):
        super().__init__(_("无法生成收据：服务器上没有可嵌入的中文 TrueType 字体。请安装 fonts-wqy-microhei，"
                           "或在设置 RECEIPT_FONT_PATH 中指定字体文件。（已尝试：%(tried)s）") % {
            "tried": "、".join(tried) or "-"})


def _candidates() -> list[str]:
    out = []
    configured = getattr(settings, "RECEIPT_FONT_PATH", "")
    if configured:
        out.append(str(configured))
    out += list(FONT_CANDIDATES)
    for pattern in FONT_GLOBS:
        out += sorted(glob.glob(pattern, recursive=True))
    seen, unique = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def _usable(path: str):
    """A TTFont of ``path`` that has the receipt's characters, or None."""
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    try:
        font = TTFont(FONT_NAME, path, subfontIndex=0)
    except (TTFError, OSError, ValueError, KeyError, IndexError):  # absent, PostScript outlines, broken
        return None
    cmap = font.face.charToGlyph
    return font if all(ord(ch) in cmap for ch in PROBE) else None


def cjk_font_path() -> str:
    """The CJK TrueType font the receipts embed (registered with reportlab once per process)."""
    global _font_path
    if _font_path is not None:
        return _font_path
    from reportlab.pdfbase import pdfmetrics

    with _lock:
        if _font_path is not None:
            return _font_path
        tried = []
        for path in _candidates():
            if not os.path.isfile(path):
                continue
            tried.append(path)
            font = _usable(path)
            if font is not None:
                pdfmetrics.registerFont(font)
                _font_path = path
                return path
        raise ReceiptFontMissing(tried)


# ---------------------------------------------------------------- 大写金额

DIGITS = "零壹贰叁肆伍陆柒捌玖"
SECTION_UNITS = ("", "万", "亿", "万亿")


def _section(n: int) -> str:
    """0 < n < 10000 → e.g. 1005 → 壹仟零伍."""
    out, zero = "", False
    for power, unit in ((3, "仟"), (2, "佰"), (1, "拾"), (0, "")):
        d = n // 10**power % 10
        if d == 0:
            zero = bool(out)
        else:
            if zero:
                out += "零"
                zero = False
            out += DIGITS[d] + unit
    return out


def rmb_upper(amount: Decimal) -> str:
    """An amount of yuan in Chinese capital numerals (大写金额), as written on receipts:
    1005 → 壹仟零伍元整, 100010.5 → 壹拾万零壹拾元伍角, 0.05 → 伍分."""
    amount = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "负" if amount < 0 else ""
    amount = abs(amount)
    cents = int(amount * 100)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    if yuan == 0 and jiao == 0 and fen == 0:
        return "零元整"
    sections = []
    n = yuan
    while n:
        sections.append(n % 10000)
        n //= 10000
    text, gap = "", False
    for i in range(len(sections) - 1, -1, -1):
        sec = sections[i]
        if sec == 0:
            gap = bool(text)
            continue
        if text and (gap or sec < 1000):
            text += "零"
        text += _section(sec) + SECTION_UNITS[i]
        gap = False
    if yuan:
        text += "元"
    if jiao == 0 and fen == 0:
        return sign + text + "整"
    if jiao:
        text += DIGITS[jiao] + "角"
    elif yuan:
        text += "零"
    if fen:
        text += DIGITS[fen] + "分"
    return sign + text


# ---------------------------------------------------------------- the document

def _money(v: Decimal) -> str:
    return f"{Decimal(v).quantize(Decimal('0.01')):,.2f}"


def _quote_for(order: WorkOrder, payment: Payment | None) -> Quote | None:
    if payment is not None and payment.quote_id:
        return payment.quote
    qs = Quote.objects.filter(order=order)
    return (qs.filter(status=QuoteStatus.APPROVED).order_by("-seq").first()
            or qs.exclude(status=QuoteStatus.SUPERSEDED).order_by("-seq").first())


def _shown_phone(user, order: WorkOrder) -> str:
    if user is None:
        return mask_phone(order.customer.phone)
    from aftersales.customers.selectors import shown_phone

    return shown_phone(user, order.customer)


def receipt_pdf(payment_or_order, *, user=None) -> bytes:
    """The receipt of a payment (or of all payments of an order): company and outlet, order
    number, customer (phone masked unless ``user`` may see it), the quote's lines free or
    chargeable, totals in figures and in capitals (大写), payment method, date, technician."""
    if isinstance(payment_or_order, Payment):
        payment = payment_or_order
        order = WorkOrder.objects.select_related("customer", "node", "assignee", "unit__model").get(
            pk=payment.order_id)
        payments = [payment]
    elif isinstance(payment_or_order, WorkOrder):
        payment = None
        order = WorkOrder.objects.select_related("customer", "node", "assignee", "unit__model").get(
            pk=payment_or_order.pk)
        payments = list(Payment.objects.filter(order=order).select_related("received_by").order_by("id"))
    else:
        raise TypeError("receipt_pdf takes a Payment or a WorkOrder")
    cjk_font_path()  # registers FONT_NAME, or a clear ReceiptFontMissing
    with translation.override("zh-hans"):
        return _build(order, payment, payments, _quote_for(order, payment), user, FONT_NAME)


def _build(order, payment, payments, quote, user, font) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from .services import setting

    base = ParagraphStyle("base", fontName=font, bulletFontName=font, fontSize=10, leading=14, wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=12, textColor=colors.HexColor("#555555"))
    title = ParagraphStyle("title", parent=base, fontSize=18, leading=24, alignment=TA_CENTER)
    centre = ParagraphStyle("centre", parent=base, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)

    def p(text, style=base):
        from xml.sax.saxutils import escape

        return Paragraph(escape(str(text)), style)

    company = setting("COMPANY_NAME", "") or _t("售后服务中心")
    story = [p(company, centre), p(_t("售后服务收费收据"), title), Spacer(1, 3 * mm)]
    received = payment.received_at if payment else (payments[-1].received_at if payments else timezone.now())
    head = [
        [p(_t("收据号")), p(payment.receipt_no if payment else "、".join(x.receipt_no for x in payments) or "-"),
         p(_t("日期")), p(timezone.localtime(received).strftime("%Y-%m-%d %H:%M"))],
        [p(_t("服务网点")), p(order.node.name), p(_t("工单号")), p(order.number)],
        [p(_t("客户")), p(order.customer.name), p(_t("电话")), p(_shown_phone(user, order))],
        [p(_t("产品")), p(f"{order.unit.model.name} {order.unit.serial}" if order.unit_id else "-"),
         p(_t("服务技师")), p(order.assignee.name if order.assignee_id else "-")],
    ]
    t = Table(head, colWidths=[22 * mm, 63 * mm, 22 * mm, 63 * mm])
    t.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font), ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
                           ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f1f3f6")),
                           ("BACKGROUND", (2, 0), (2, -1), colors.HexColor("#f1f3f6")),
                           ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story += [t, Spacer(1, 4 * mm)]

    rows = [[p(_t("序号")), p(_t("项目")), p(_t("数量")), p(_t("单价（元）")), p(_t("金额（元）")), p(_t("三包"))]]
    if quote is not None:
        for ln in quote.lines.all().order_by("position"):
            qty = f"{ln.qty.normalize():f}" if ln.qty == ln.qty.to_integral() else f"{ln.qty:f}"
            item = f"{ln.description}（{LineKind.PART.label}）" if ln.kind == LineKind.PART else ln.description
            rows.append([p(ln.position), p(item), p(qty, right), p(_money(ln.unit_price), right),
                         p(_money(ln.amount), right), p(_t("免费") if ln.free else _t("收费"))])
        total, due = quote.total, quote.chargeable
        rows.append([p(""), p(_t("合计（报价单 %(n)s）") % {"n": quote.number}), p(""), p(""), p(_money(total), right),
                     p("")])
        rows.append([p(""), p(_t("其中三包免费")), p(""), p(""), p(_money(total - due), right), p("")])
        rows.append([p(""), p(_t("应收金额")), p(""), p(""), p(_money(due), right), p("")])
    else:
        rows.append([p("1"), p(_t("售后服务费用")), p("1", right), p("-", right),
                     p(_money(sum((x.amount for x in payments), Decimal(0))), right), p(_t("收费"))])
    lines = Table(rows, colWidths=[12 * mm, 74 * mm, 16 * mm, 24 * mm, 26 * mm, 18 * mm], repeatRows=1)
    lines.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font), ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf3")),
                               ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story += [lines, Spacer(1, 4 * mm)]

    paid = sum((x.amount for x in payments), Decimal(0))
    refunded = sum((x.refunded for x in payments), Decimal(0))
    methods = "、".join(dict.fromkeys(str(x.get_method_display()) for x in payments)) or "-"
    refs = "、".join(x.reference for x in payments if x.reference) or "-"
    cashier = payments[-1].received_by if payments else None
    cashier_name = (cashier.get_full_name() or cashier.get_username()) if cashier is not None else "-"
    pay_rows = [
        [p(_t("本次收款") if payment else _t("已收款")), p(f"¥ {_money(paid)}"),
         p(_t("大写金额")), p(rmb_upper(paid))],
        [p(_t("支付方式")), p(methods), p(_t("交易流水号")), p(refs)],
    ]
    if refunded:
        pay_rows.append([p(_t("已退款")), p(f"¥ {_money(refunded)}"), p(_t("实收金额")),
                         p(f"¥ {_money(paid - refunded)}（{rmb_upper(paid - refunded)}）")])
    pay_rows.append([p(_t("收款人")), p(cashier_name), p(_t("服务技师")),
                     p(order.assignee.name if order.assignee_id else "-")])
    pt = Table(pay_rows, colWidths=[22 * mm, 63 * mm, 22 * mm, 63 * mm])
    pt.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font), ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
                            ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f1f3f6")),
                            ("BACKGROUND", (2, 0), (2, -1), colors.HexColor("#f1f3f6")),
                            ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story += [pt, Spacer(1, 6 * mm),
              p(_t("说明：三包期内免费项目不收费；本收据为售后服务收费凭证，请妥善保管。如有疑问请致电服务热线，"
                   "并提供工单号 %(number)s。") % {"number": order.number}, small),
              Spacer(1, 8 * mm),
              p(_t("（盖章）%(outlet)s") % {"outlet": order.node.name}, right)]

    buf = BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title=_t("售后服务收费收据"), author=company,
                            subject=order.number, creator="AfterSales", initialFontName=font)
    doc.build(story)
    return buf.getvalue()
