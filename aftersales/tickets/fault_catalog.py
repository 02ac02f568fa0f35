"""The seed fault catalogue: kinds of fault (故障类别) with the words customers use for them,
and the fault codes of each product category (故障代码), those of a main part naming it.

The codes of the fault categories are the fault keys of the repeat-repair rule
(``customers.UnitRepair.fault_key``), the same keys the demo's repair history uses; a fault
code naming a main part (``part_code``) counts under that part instead (R-WAR-1).

``ensure_fault_catalog()`` creates what is missing — categories, their links to the product
categories that exist, the fault codes of those product categories — and changes nothing that
exists, so it can run after every load of product categories (the data migration, the demo,
tests). It takes the models as arguments so that the migration can pass its historical ones.
"""

from __future__ import annotations

from types import SimpleNamespace

ALL = ("AC", "RF", "WM", "TV", "WH", "RH")

# (code, name, English, suggested order type, product categories, keywords)
FAULT_CATEGORIES: list[tuple[str, str, str, str, tuple[str, ...], str]] = [
    ("NO_COOLING", "不制冷/不制热", "Not cooling / not heating", "", ("AC", "RF"),
     "不制冷,不制热,制冷差,制热差,制冷效果差,制热效果差,不冷,不凉,不够冷,不够热,不降温,降不下来,吹热风,"
     "吹自然风,不热,冷藏不冷,冷冻不冻,缺氟,漏氟,加氟,冷媒,门封不严"),
    ("WATER_LEAK", "漏水/渗漏", "Water leak", "", ("AC", "RF", "WM", "WH", "RH"),
     "漏水,滴水,渗水,往下滴,流水,漏出水,水管漏,漏油,滴油,渗漏"),
    ("NOISE", "噪音异常", "Abnormal noise", "", ("AC", "RF", "WM", "RH", "TV"),
     "噪音,噪声,异响,响声,声音大,声音很大,嗡嗡,咔咔,哐哐,吱吱,震动,振动,抖动,晃动"),
    ("NO_POWER", "不通电/无法开机", "No power / will not start", "", ALL,
     "不通电,无法开机,开不了机,不开机,开不开,没反应,没有反应,无反应,打不开,不启动,无法启动,启动不了,跳闸,"
     "没电,插上电"),
    ("ERROR_CODE", "显示故障/故障代码", "Display fault / error code", "", ALL,
     "故障代码,故障码,报错,报故障,显示代码,代码,显示异常,显示屏不亮,乱码,指示灯闪,灯一直闪,闪烁"),
    ("NO_DRAIN", "不脱水/不排水", "Does not spin / drain", "", ("WM",),
     "不脱水,不排水,排水慢,排不出水,排水不畅,甩干,不甩干,不转,滚筒不转,波轮不转,桶里有水"),
    ("NO_HOT_WATER", "不加热/无热水", "Not heating water", "", ("WH", "WM"),
     "不加热,加热慢,不热,没有热水,不出热水,没热水,无热水,水不热,水温低,温度上不去,点不着,打不着火,不点火,熄火"),
    ("REMOTE", "遥控失灵", "Remote control failure", "", ("AC", "TV"),
     "遥控,遥控器,遥控失灵,遥控不管用,遥控没反应,按键失灵,按键没反应,按钮失灵"),
    ("ODOR", "异味", "Bad smell", "", ("AC", "RF", "WM", "RH"),
     "异味,臭味,发臭,有味道,味道大,焦味,烧焦,糊味,霉味,怪味,腥味"),
    ("NO_PICTURE", "无图像/无声音", "No picture / no sound", "", ("TV",),
     "无图像,没图像,没有图像,黑屏,花屏,闪屏,没画面,无画面,画面,无声音,没声音,没有声音,无信号,没信号,没有信号"),
    ("WEAK_SUCTION", "吸力弱/排烟不畅", "Weak suction", "", ("RH",),
     "吸力,吸力弱,吸力小,吸不干净,抽不走,排烟,跑烟,油烟大,串烟"),
    ("FROST", "结霜/结冰", "Frost / ice build-up", "", ("RF",),
     "结霜,结冰,冰堵,霜多,霜太厚,化霜"),
    ("DAMAGE", "外观破损", "Damaged casing", "", ALL,
     "破损,划痕,磕碰,碰坏,裂,裂缝,变形,外壳,刮花,碎了,掉漆,凹陷"),
    ("INSTALL_QUERY", "安装咨询", "Installation question", "installation", ALL,
     "安装,装机,移机,拆机,拆装,安装位置,打孔,支架,上门安装,预约安装,挂机位置"),
    ("USAGE_QUERY", "使用咨询", "How-to question", "consultation", ALL,
     "怎么用,如何使用,怎么使用,使用方法,说明书,怎么设置,如何设置,怎么调,模式,功能,操作方法,怎么清洗,定时"),
]

# Fault codes per product category: (code, description, fault category, main part or "").
FAULT_CODES: dict[str, list[tuple[str, str, str, str]]] = {
    "AC": [
        ("E1", "压缩机高压保护", "NO_COOLING", "COMP"),
        ("E5", "压缩机过载保护", "NO_COOLING", "COMP"),
        ("F1", "室内温度传感器故障", "ERROR_CODE", "THERM"),
        ("E6", "室内外机通讯故障", "ERROR_CODE", "PCB"),
        ("H6", "室内风机电机故障", "NOISE", "FANM"),
        ("L1", "冷媒不足或泄漏", "NO_COOLING", ""),
        ("D1", "排水管堵塞漏水", "WATER_LEAK", ""),
        ("R1", "遥控接收故障", "REMOTE", ""),
    ],
    "RF": [
        ("E1", "冷藏室温度传感器故障", "ERROR_CODE", "THERM"),
        ("E5", "压缩机不启动", "NO_COOLING", "COMP"),
        ("F2", "蒸发器化霜故障", "FROST", "EVAP"),
        ("C1", "冷凝器散热不良", "NO_COOLING", "COND"),
        ("N1", "运行噪音异常", "NOISE", ""),
        ("D1", "门封不严", "NO_COOLING", ""),
    ],
    "WM": [
        ("E1", "进水超时", "ERROR_CODE", ""),
        ("E2", "排水超时", "NO_DRAIN", "PUMP"),
        ("E3", "脱水不平衡", "NO_DRAIN", ""),
        ("E4", "门锁故障", "ERROR_CODE", ""),
        ("E6", "电机故障", "NO_DRAIN", "MOTOR"),
        ("F1", "程序控制器故障", "ERROR_CODE", "PCB"),
        ("C1", "离合器故障", "NO_DRAIN", "CLUTCH"),
        ("L1", "进水管漏水", "WATER_LEAK", ""),
    ],
    "TV": [
        ("P1", "屏幕无显示", "NO_PICTURE", "PANEL"),
        ("M1", "主板故障", "NO_POWER", "MAINBOARD"),
        ("S1", "电源板故障", "NO_POWER", "PSU"),
        ("T1", "无信号", "NO_PICTURE", "TUNER"),
        ("A1", "无声音", "NO_PICTURE", ""),
        ("R1", "遥控失灵", "REMOTE", ""),
    ],
    "WH": [
        ("E1", "点火失败", "NO_HOT_WATER", "IGNITER"),
        ("E2", "加热管故障", "NO_HOT_WATER", "HEATER"),
        ("E3", "内胆渗漏", "WATER_LEAK", "TANK"),
        ("E4", "热交换器堵塞", "NO_HOT_WATER", "HEX"),
        ("E5", "温度传感器故障", "ERROR_CODE", ""),
    ],
    "RH": [
        ("M1", "电机故障", "WEAK_SUCTION", "MOTOR"),
        ("P1", "控制板故障", "NO_POWER", "PCB"),
        ("I1", "风轮松动异响", "NOISE", "IMPELLER"),
        ("O1", "集油盒漏油", "WATER_LEAK", ""),
    ],
}

# The fault category an error code in the text (E1, F2 …) points to.
CODE_PATTERN_CATEGORY = "ERROR_CODE"


def _real_models():
    from aftersales.catalog.models import Category

    from .models import FaultCategory, FaultCode

    return SimpleNamespace(FaultCategory=FaultCategory, FaultCode=FaultCode, Category=Category)


def ensure_fault_catalog(models=None) -> dict[str, int]:
    """Create the missing fault categories, their links to the product categories that exist
    (by ``Category.code``), and the missing fault codes of those product categories. Changes
    nothing that exists (an administrator's edits stay). Returns what it created."""
    m = models or _real_models()
    made = {"fault_categories": 0, "links": 0, "fault_codes": 0}
    existing = {fc.code: fc for fc in m.FaultCategory.objects.all()}
    new = [m.FaultCategory(code=code, name=name, name_en=en, suggests_type=stype, keywords=kw)
           for code, name, en, stype, _cats, kw in FAULT_CATEGORIES if code not in existing]
    if new:
        m.FaultCategory.objects.bulk_create(new)
        made["fault_categories"] = len(new)
        existing = {fc.code: fc for fc in m.FaultCategory.objects.all()}

    wanted = {c for _code, _n, _e, _t, cats, _k in FAULT_CATEGORIES for c in cats} | set(FAULT_CODES)
    cats = {c.code: c for c in m.Category.objects.filter(code__in=sorted(wanted))}
    through = m.FaultCategory.categories.through
    have = set(through.objects.values_list("faultcategory_id", "category_id"))
    links = [through(faultcategory_id=existing[code].pk, category_id=cats[c].pk)
             for code, _n, _e, _t, for_cats, _k in FAULT_CATEGORIES if code in existing
             for c in for_cats if c in cats and (existing[code].pk, cats[c].pk) not in have]
    if links:
        through.objects.bulk_create(links)
        made["links"] = len(links)

    have_codes = set(m.FaultCode.objects.filter(category__in=list(cats.values())).values_list("category_id", "code"))
    codes = [m.FaultCode(category=cats[cat], fault_category=existing[fcat], code=code, name=name, part_code=part)
             for cat, rows in FAULT_CODES.items() if cat in cats
             for code, name, fcat, part in rows if fcat in existing and (cats[cat].pk, code) not in have_codes]
    if codes:
        m.FaultCode.objects.bulk_create(codes)
        made["fault_codes"] = len(codes)
    if models is None:
        from .classify import clear_cache

        clear_cache()
    return made
