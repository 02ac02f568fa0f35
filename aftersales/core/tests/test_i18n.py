"""English is fully switchable: one complete catalogue, compiled, and used by the model
choices, the services, the warranty engine, the pages and the API. Chinese stays the default."""

from __future__ import annotations

import datetime as dt
import gettext as gettext_module
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from aftersales.catalog.warranty import DecisionKind, Terms, decide
from aftersales.core.errors import ValidationFailed
from aftersales.customers.services import customer_create
from aftersales.org.models import NodeKind
from aftersales.org.roles import Role

LOCALE_DIR = Path(settings.LOCALE_PATHS[0])
PO = LOCALE_DIR / "en" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


# ---------------------------------------------------------------- a small .po reader

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(s: str) -> str:
    s = s.strip()
    assert s.startswith('"') and s.endswith('"'), s
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), s[1:-1])


def read_po(path: Path) -> list[dict]:
    """Entries of a .po file: ``ctx``, ``id``, ``plural``, ``strs`` ({index: text}),
    ``flags``, ``obsolete`` and ``line`` (where the entry starts)."""
    entries, cur, field = [], None, None

    def new(line_no):
        return {"ctx": None, "id": None, "plural": None, "strs": {}, "flags": set(), "obsolete": False,
                "line": line_no}

    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            if cur is not None and cur["id"] is not None:
                entries.append(cur)
            cur, field = None, None
            continue
        if cur is None:
            cur = new(n)
        if line.startswith("#~"):
            cur["obsolete"] = True
        elif line.startswith("#,"):
            cur["flags"] |= {f.strip() for f in line[2:].split(",") if f.strip()}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = _unquote(line)
            if isinstance(field, int):
                cur["strs"][field] += value
            else:
                cur[field] += value
        else:
            m = re.match(r"^(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(\".*\")$", line)
            assert m, f"{path}:{n}: cannot read {raw!r}"
            keyword, index, value = m.group(1), m.group(2), _unquote(m.group(3))
            if keyword == "msgstr":
                field = int(index or 0)
                cur["strs"][field] = value
            else:
                field = {"msgctxt": "ctx", "msgid": "id", "msgid_plural": "plural"}[keyword]
                cur[field] = value
    if cur is not None and cur["id"] is not None:
        entries.append(cur)
    return entries


def _where(e: dict) -> str:
    return f"{PO.name}:{e['line']} {e['id']!r}"


# ---------------------------------------------------------------- (a) the catalogue

def test_one_catalogue_for_the_whole_project():
    assert PO.is_file(), "run `make messages`"
    assert MO.is_file(), "run `make messages` (compilemessages) and commit the .mo"
    app_root = Path(settings.BASE_DIR) / "aftersales"
    others = [p for p in app_root.rglob("*.po") if p != PO]
    assert others == [], f"translations belong in {PO}, not in {others}"


def test_catalogue_has_no_untranslated_or_fuzzy_entries():
    entries = read_po(PO)
    header = [e for e in entries if e["id"] == ""]
    assert len(header) == 1 and "fuzzy" not in header[0]["flags"], "the header is still fuzzy"
    messages = [e for e in entries if e["id"] != "" and not e["obsolete"]]
    assert len(messages) > 300  # the whole project, not one app

    untranslated = [_where(e) for e in messages if not e["strs"] or not all(e["strs"].values())]
    fuzzy = [_where(e) for e in messages if "fuzzy" in e["flags"]]
    assert untranslated == [], f"untranslated: {untranslated}"
    assert fuzzy == [], f"fuzzy: {fuzzy}"


def test_catalogue_keeps_placeholders_and_holds_no_chinese():
    """Every %(name)s of the source is in the translation, and nothing Chinese is left in
    it except where the English names the Chinese term on purpose."""
    allowed = {"三包", "门店", "电商", "经销商", "工程渠道"}  # "three-guarantees (三包)"; import file values
    placeholder = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdifr]")
    problems = []
    for e in read_po(PO):
        if not e["id"]:
            continue
        wanted = sorted(set(placeholder.findall(e["id"] + (e["plural"] or ""))))
        for i, s in e["strs"].items():
            got = sorted(set(placeholder.findall(s)))
            if got != wanted and not (e["plural"] and i == 0 and set(got) <= set(wanted)):
                problems.append(f"{_where(e)} placeholders {got} != {wanted}")
            if CJK.search(re.sub("|".join(allowed), "", s)):
                problems.append(f"{_where(e)} still Chinese: {s!r}")
    assert problems == []


def test_compiled_catalogue_matches_the_po():
    """The committed .mo is the compiled .po (run `make messages` after editing it)."""
    with MO.open("rb") as f:
        catalog = gettext_module.GNUTranslations(f)._catalog
    stale = []
    for e in read_po(PO):
        if not e["id"] or e["obsolete"]:
            continue
        key = f"{e['ctx']}\x04{e['id']}" if e["ctx"] is not None else e["id"]
        if e["plural"] is None:
            if catalog.get(key) != e["strs"][0]:
                stale.append(_where(e))
        elif any(catalog.get((key, i)) != s for i, s in e["strs"].items()):
            stale.append(_where(e))
    assert stale == [], f".mo is out of date for: {stale}"


# ---------------------------------------------------------------- (b) choices, services, warranty

def test_choice_labels_in_english():
    with translation.override("en"):
        assert Role.AGENT.label == "Customer-service agent"
        assert Role.DISPATCHER.label == "Dispatcher"
        assert Role.TECHNICIAN.label == "Technician"
        assert Role.QUALITY.label == "Quality supervisor"
        assert Role.TRAINER.label == "Trainer"
        assert NodeKind.HQ.label == "Headquarters"
        assert NodeKind.CENTRE.label == "Regional service centre"
        assert NodeKind.OUTLET.label == "Service outlet"
        assert [str(k.label) for k in DecisionKind] == ["Return", "Exchange", "Free repair", "Chargeable repair"]
    with translation.override("zh-hans"):
        assert Role.AGENT.label == "客服专员"
    assert Role.AGENT.label == "客服专员"  # the default language stays Chinese


def test_service_validation_message_in_english(world):
    with translation.override("en"), pytest.raises(ValidationFailed) as exc:
        customer_create(user=world.pudong_agent, name="张三", phone="12345", node_id=world.pudong.pk)
    with translation.override("en"):
        body = exc.value.as_dict()
    assert body["message"] == "Some entries are invalid; please check the highlighted fields."
    assert body["errors"]["phone"] == [
        "Invalid mobile number: enter an 11-digit mainland China mobile number, e.g. 13812345678."]
    with translation.override("zh-hans"):
        assert exc.value.as_dict()["errors"]["phone"] == ["手机号格式不正确：应为 11 位中国大陆手机号，如 13812345678。"]


def test_warranty_reason_in_english():
    with translation.override("en"):
        d = decide(Terms.default(), purchase_date=dt.date(2025, 1, 15), on=dt.date(2025, 1, 20))
        assert d.kind == DecisionKind.RETURN
        assert d.label == "Return"
        assert d.reason == ("Performance fault on day 5 after purchase (within 7 days): the customer may choose "
                            "a return, an exchange or a repair.")
        late = decide(Terms.default(), purchase_date=dt.date(2023, 1, 15), on=dt.date(2025, 1, 20))
        assert late.reason == "Whole-unit warranty ended on 2024-01-15: chargeable repair."
    with translation.override("zh-hans"):
        d = decide(Terms.default(), purchase_date=dt.date(2025, 1, 15), on=dt.date(2025, 1, 20))
        assert d.reason.startswith("购买后第 5 天")


# ---------------------------------------------------------------- (c) a page, (d) the API

def _nav(html: str) -> str:
    m = re.search(r'<nav class="nav"[^>]*>(.*?)</nav>', html, re.S)
    assert m, "no main navigation on the page"
    return m.group(1)


def test_customer_page_in_english(client, world):
    client.force_login(world.pudong_agent)
    r = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert r.status_code == 302
    html = client.get(f"/customers/{world.c_pudong.pk}/").content.decode()
    assert '<html lang="en">' in html
    nav = _nav(html)
    for label in ("Home", "Find customer", "New customer", "Import"):
        assert f">{label}</a>" in nav
    assert not CJK.search(re.sub(r"<[^>]+>", "", nav)), nav
    assert 'aria-label="Main navigation"' in html
    for label in ("Sign out", "Back to search", "Units and warranty decisions", "Customer-service agent",
                  "Serial", "Purchase date", "Free repair", "AfterSales Service Management"):
        assert label in html, label
    for chinese in ("退出", "返回查询", "登记产品与三包判定", "客服专员", "免费维修"):
        assert chinese not in html, chinese

    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = client.get(f"/customers/{world.c_pudong.pk}/").content.decode()
    assert "返回查询" in html and "客户查询" in _nav(html)


def test_api_error_in_english(client, world):
    client.force_login(world.pudong_agent)
    r = client.get("/api/customers/999999", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 404
    assert r.json()["message"] == "Not found, or you do not have permission to view it."
    r = client.get("/api/customers/999999")
    assert r.json()["message"] == "未找到，或您无权查看。"
