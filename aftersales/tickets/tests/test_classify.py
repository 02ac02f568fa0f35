"""The intake's suggestion of the order type and fault category from the customer's words, and
the seed fault catalogue behind it."""

from __future__ import annotations

import time

import pytest

from aftersales.catalog.models import Category
from aftersales.tickets import classify
from aftersales.tickets.fault_catalog import FAULT_CATEGORIES, FAULT_CODES, ensure_fault_catalog
from aftersales.tickets.models import FaultCategory, FaultCode


@pytest.fixture
def cats(db):
    """The demo's product categories, then the catalogue linked to them."""
    for code, name in [("AC", "空调"), ("RF", "冰箱"), ("WM", "洗衣机"), ("TV", "电视"), ("WH", "热水器"),
                       ("RH", "油烟机")]:
        Category.objects.create(code=code, name=name)
    ensure_fault_catalog()


@pytest.mark.parametrize(("text", "category", "type", "fault"), [
    ("空调不制冷了，开了一个小时还是热的", "AC", "repair", "NO_COOLING"),
    ("空调怎么不制冷了", "AC", "repair", "NO_COOLING"),
    ("空调室内机一直往下滴水", "AC", "repair", "WATER_LEAK"),
    ("洗衣机不脱水，桶里有水排不出去", "WM", "repair", "NO_DRAIN"),
    ("热水器没有热水，打不着火", "WH", "repair", "NO_HOT_WATER"),
    ("电视黑屏，有声音没图像", "TV", "repair", "NO_PICTURE"),
    ("电视开不了机，按遥控器也没反应", "TV", "repair", "NO_POWER"),
    ("遥控器按了没反应", "AC", "repair", "REMOTE"),
    ("冰箱冷冻室结冰很厚", "RF", "repair", "FROST"),
    ("油烟机吸力很弱，厨房跑烟", "RH", "repair", "WEAK_SUCTION"),
    ("洗衣机显示E4", "WM", "repair", "ERROR_CODE"),
    ("热水器屏幕显示ＥＲ１，不出热水", "WH", "repair", "NO_HOT_WATER"),
    ("冰箱有异味，发臭", "RF", "repair", "ODOR"),
    ("送来的冰箱外壳有划痕", "RF", "repair", "DAMAGE"),
    ("我要投诉，空调漏水一直没人处理", "AC", "complaint", "WATER_LEAK"),
    ("对上次维修的服务态度很不满意", None, "complaint", None),
    ("冰箱不制冷想退货", "RF", "return_exchange", "NO_COOLING"),
    ("买了一周的洗衣机要求换货", "WM", "return_exchange", None),
    ("新买的空调预约安装", "AC", "installation", "INSTALL_QUERY"),
    ("搬家了需要移机", "AC", "installation", "INSTALL_QUERY"),
    ("空调需要深度清洗保养", "AC", "maintenance", None),
    ("订的冰箱什么时候送货", "RF", "delivery", None),
    ("旧空调可以回收吗，想以旧换新", "AC", "recycling", None),
    ("请问空调保修期多久", "AC", "consultation", None),
    ("洗衣机的快洗模式怎么设置", "WM", "consultation", "USAGE_QUERY"),
])
def test_suggestions(cats, text, category, type, fault):
    s = classify.suggest(text, category)
    assert (s.type, s.fault_category_code) == (type, fault), s
    assert 0 < s.confidence <= 1 and s.matched_keywords


def test_nothing_recognised_suggests_nothing(cats):
    for text in ("", "   ", "你好", "上周三下午"):
        s = classify.suggest(text)
        assert (s.type, s.fault_category_code, s.confidence, s.matched_keywords) == (None, None, 0.0, [])


def test_the_product_category_narrows_the_faults(cats):
    """"不热" is a water heater without hot water, and an air conditioner that does not heat."""
    assert classify.suggest("不热了", "WH").fault_category_code == "NO_HOT_WATER"
    assert classify.suggest("不热了", "AC").fault_category_code == "NO_COOLING"
    # an unknown product category narrows nothing
    assert classify.suggest("漏水", "XYZ").fault_category_code == "WATER_LEAK"


def test_matched_keywords_in_text_order_without_double_counting(cats):
    s = classify.suggest("我要投诉！空调漏水，还有噪音", "AC")
    assert s.matched_keywords == ["投诉", "漏水", "噪音"]
    assert classify.suggest("上门安装", "AC").matched_keywords == ["上门安装"]  # not also "安装"


def test_strong_evidence_is_more_confident(cats):
    weak = classify.suggest("怎么", "AC")
    strong = classify.suggest("我要投诉，态度差，不满意", "AC")
    mixed = classify.suggest("我要投诉，空调漏水", "AC")
    assert (weak.type, strong.type, mixed.type) == ("consultation", "complaint", "complaint")
    assert strong.confidence == 1.0 > mixed.confidence > weak.confidence


def test_the_table_follows_edits_of_the_catalogue(cats):
    assert classify.suggest("滚筒发霉长毛", "WM").fault_category_code is None
    fc = FaultCategory.objects.get(code="ODOR")
    fc.keywords += ",发霉"
    fc.save()
    assert classify.suggest("滚筒发霉长毛", "WM").fault_category_code == "ODOR"
    fc.categories.remove(Category.objects.get(code="WM"))
    assert classify.suggest("滚筒发霉长毛", "WM").fault_category_code is None


def test_suggest_is_fast_and_reads_nothing_when_warm(cats, django_assert_num_queries):
    classify.suggest("预热")
    texts = ["空调不制冷了，开了一个小时还是热的", "我要投诉，空调漏水一直没人处理", "洗衣机显示E4，不脱水"] * 300
    with django_assert_num_queries(0):
        t = time.perf_counter()
        for text in texts:
            classify.suggest(text, "AC")
        elapsed = time.perf_counter() - t
    assert elapsed / len(texts) < 0.002, elapsed


def test_the_migration_seeded_the_fault_categories(db):
    """The data migration ran (the test database is migrated): 12–15 kinds of fault."""
    codes = set(FaultCategory.objects.values_list("code", flat=True))
    assert {row[0] for row in FAULT_CATEGORIES} <= codes
    assert 12 <= len(FAULT_CATEGORIES) <= 15


def test_ensure_links_only_existing_categories_and_is_idempotent(db):
    Category.objects.create(code="AC", name="空调")
    made = ensure_fault_catalog()
    assert made["fault_codes"] == len(FAULT_CODES["AC"]) and made["links"] > 0
    assert set(FaultCode.objects.values_list("category__code", flat=True)) == {"AC"}
    assert ensure_fault_catalog() == {"fault_categories": 0, "links": 0, "fault_codes": 0}
    # a category created later gets its links and codes on the next call
    Category.objects.create(code="WM", name="洗衣机")
    made = ensure_fault_catalog()
    assert made["fault_codes"] == len(FAULT_CODES["WM"])
    assert FaultCategory.objects.get(code="NO_DRAIN").categories.filter(code="WM").exists()
    # an administrator's edit stays
    FaultCategory.objects.filter(code="NOISE").update(name="异响")
    ensure_fault_catalog()
    assert FaultCategory.objects.get(code="NOISE").name == "异响"


def test_ensure_recreates_a_flushed_catalogue(db):
    FaultCode.objects.all().delete()
    FaultCategory.objects.all().delete()
    made = ensure_fault_catalog()
    assert made["fault_categories"] == len(FAULT_CATEGORIES)


def test_the_seed_data_is_consistent():
    from aftersales.web.management.commands.demo import CATEGORIES

    main_parts = {code: {p for p, _n in parts} for code, _n, _e, _s, parts, _f in CATEGORIES}
    fault_codes = {row[0] for row in FAULT_CATEGORIES}
    for cat, rows in FAULT_CODES.items():
        assert 3 <= len(rows) <= 8, cat
        assert len({r[0] for r in rows}) == len(rows), cat
        for code, _name, fcat, part in rows:
            assert fcat in fault_codes, (cat, code)
            assert part == "" or part in main_parts[cat], (cat, code, part)
    for code, _n, _e, stype, for_cats, keywords in FAULT_CATEGORIES:
        assert set(for_cats) <= set(main_parts), code
        assert keywords and stype in ("", "installation", "consultation"), code
