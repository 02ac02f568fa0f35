"""The receipt PDF: Chinese text in an embedded TrueType font, the order number and the amounts,
in figures and in capitals; and the capitals themselves."""

import re
import shutil
import subprocess
from decimal import Decimal
from io import BytesIO

import pytest

from aftersales.charges import receipt, services
from aftersales.charges.receipt import rmb_upper

from .conftest import ask_part, order_at, png_bytes

POPPLER = all(shutil.which(t) for t in ("pdffonts", "pdftotext", "pdftoppm"))
needs_poppler = pytest.mark.skipif(not POPPLER, reason="needs poppler-utils (pdffonts, pdftotext, pdftoppm)")


@pytest.mark.parametrize("amount, text", [
    ("0", "零元整"), ("0.05", "伍分"), ("0.5", "伍角"), ("1", "壹元整"), ("10", "壹拾元整"), ("15", "壹拾伍元整"),
    ("100", "壹佰元整"), ("105", "壹佰零伍元整"), ("110", "壹佰壹拾元整"), ("1005", "壹仟零伍元整"),
    ("1010", "壹仟零壹拾元整"), ("10.05", "壹拾元零伍分"), ("10.50", "壹拾元伍角"), ("130.25", "壹佰叁拾元贰角伍分"),
    ("10000", "壹万元整"), ("100010", "壹拾万零壹拾元整"), ("1001000", "壹佰万壹仟元整"), ("10001000", "壹仟万壹仟元整"),
    ("100000000", "壹亿元整"), ("100000001", "壹亿零壹元整"), ("123456789.12", "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分"),
    ("20300", "贰万零叁佰元整"), ("-5", "负伍元整"),
])
def test_capital_numerals(amount, text):
    assert rmb_upper(Decimal(amount)) == text


def run(*args, data: bytes) -> bytes:
    return subprocess.run(args, input=data, capture_output=True, check=True, timeout=60).stdout


@pytest.fixture
def paid(cw):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    ask_part(cw, o, cw.comp, free=True)
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    services.quote_sign(user=cw.pudong_tech, quote_id=q.pk, signature_png_bytes=png_bytes())
    p = services.payment_record(user=cw.pudong_tech, order_id=o.pk, amount="148", method="alipay",
                                reference="2025031022001")
    return o, q, p


@pytest.mark.django_db
def test_receipt_font_is_a_real_cjk_truetype_font():
    path = receipt.cjk_font_path()
    assert path.endswith((".ttc", ".ttf"))
    from reportlab.pdfbase import pdfmetrics

    font = pdfmetrics.getFont(receipt.FONT_NAME)
    assert ord("收") in font.face.charToGlyph  # a TrueType font with the glyphs, not a CID font


@needs_poppler
@pytest.mark.django_db
def test_receipt_pdf_embeds_its_font_and_reads_in_chinese(paid, tmp_path):
    o, q, p = paid
    pdf = receipt.receipt_pdf(p)
    assert pdf.startswith(b"%PDF-") and b"/FontFile2" in pdf  # the TrueType font program is in the file
    assert b"STSong" not in pdf
    fonts = run("pdffonts", "-", data=pdf).decode()
    rows = [ln for ln in fonts.splitlines()[2:] if ln.strip()]
    # only the CJK font, embedded as subsets (reportlab splits it into subsets of 256 glyphs)
    assert rows and all(re.search(r"WenQuanYi|Noto|Droid|AR|UMing|UKai|CJK|Hei|Song|Kai", ln) for ln in rows), fonts
    assert all(re.search(r"TrueType\s+\S+\s+yes\s+yes\b", ln) for ln in rows), fonts  # emb yes, sub yes

    text = run("pdftotext", "-layout", "-enc", "UTF-8", "-", "-", data=pdf).decode()
    for needle in ("售后服务收费收据", o.number, p.receipt_no, "148.00", "壹佰肆拾捌元整", "支付宝", "启动电容", "免费",
                   "收费", "李师傅", "上海浦东网点", "138****5678", "张伟"):
        assert needle in text, needle

    png = run("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-", data=pdf)
    (tmp_path / "receipt.png").write_bytes(png)
    from PIL import Image

    im = Image.open(BytesIO(png)).convert("L")
    dark = sum(im.histogram()[:128])
    assert dark > 2000, dark  # the page has text and lines, not a blank page


@needs_poppler
@pytest.mark.django_db
def test_receipt_of_an_order_with_a_refund_and_the_full_phone_for_staff(paid, cw):
    o, q, p = paid
    services.refund_record(user=cw.pudong_agent, payment_id=p.pk, amount="50", reason="上门费退还")
    services.payment_record(user=cw.pudong_agent, order_id=o.pk, amount="10", method="cash")
    pdf = receipt.receipt_pdf(o, user=cw.pudong_agent)  # the agent may see the full phone
    text = run("pdftotext", "-layout", "-enc", "UTF-8", "-", "-", data=pdf).decode()
    for needle in ("已收款", "158.00", "已退款", "50.00", "实收金额", "108.00", "壹佰零捌元整", "13812345678", "现金"):
        assert needle in text, needle


@pytest.mark.django_db
def test_missing_font_is_a_clear_error(monkeypatch, tmp_path, settings):
    monkeypatch.setattr(receipt, "_font_path", None)
    monkeypatch.setattr(receipt, "FONT_CANDIDATES", ())
    monkeypatch.setattr(receipt, "FONT_GLOBS", ())
    bogus = tmp_path / "not-a-font.ttf"
    bogus.write_bytes(b"nope")
    settings.RECEIPT_FONT_PATH = str(bogus)
    with pytest.raises(receipt.ReceiptFontMissing) as e:
        receipt.cjk_font_path()
    assert e.value.status == 503 and "fonts-wqy-microhei" in str(e.value.message) and str(bogus) in str(
        e.value.message)
