"""``manage.py demo`` — a realistic, deterministic demo data set, loaded in bulk.

Everything is drawn from ``random.Random`` streams derived from ``--seed``; dates are relative
to today (``timezone.localdate()``) so that the 三包 windows always show a realistic mix.
The generators (names, mobile numbers, streets) are also used by ``bench/customers.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.db.models import ProtectedError, RestrictedError
from django.db.models.deletion import Collector
from django.utils import timezone, translation

from aftersales.assets import demo as assets_demo
from aftersales.catalog.models import Category, MainPart, ProductModel, WarrantyPolicy
from aftersales.charges import demo as charges_demo
from aftersales.core.progress import Progress, text_width
from aftersales.customers.models import Address, Customer, SalesChannel, Tag, Unit, UnitRepair
from aftersales.org.models import (
    Certification,
    CertificationType,
    Coverage,
    Department,
    DepartmentKind,
    Employee,
    Grade,
    Node,
    NodeKind,
    RoleAssignment,
)
from aftersales.org.roles import Role
from aftersales.quality import demo as quality_demo
from aftersales.records.audit import audit_record_created_bulk
from aftersales.records.models import AuditEntry
from aftersales.staff import demo as staff_demo
from aftersales.tickets.fault_catalog import ensure_fault_catalog
from aftersales.web.demo_orders import build_order_history, orders_for_units, orders_reset
from aftersales.web.demo_parts import build_parts, parts_reset

DEMO_PASSWORD = "demo1234"
AUDIT_ACTION = "demo.create"
BATCH = 2000

# ==================================================================== reference data

# Headquarters, three regional centres and 8 outlets under each. Every outlet covers the real
# districts listed (approximate centre coordinates); the outlet sits in the first of them.
HQ = dict(code="HQ", name="总部", province="山东省", city="青岛市", district="崂山区", street="海尔路1号",
          lat=36.107200, lng=120.468700, tel="0532")

CENTRES = [
    dict(code="C-EAST", name="华东区域服务中心", province="上海市", city="上海市", district="黄浦区",
         street="西藏中路268号", lat=31.231700, lng=121.484600, tel="021", outlets=[
             ("SH-PD", "上海浦东服务网点", "上海市", "上海市", "021",
              [("浦东新区", 31.2215, 121.5447), ("奉贤区", 30.9180, 121.4741), ("金山区", 30.7419, 121.3418)]),
             ("SH-JA", "上海静安服务网点", "上海市", "上海市", "021",
              [("静安区", 31.2290, 121.4480), ("黄浦区", 31.2317, 121.4846), ("徐汇区", 31.1885, 121.4365),
               ("长宁区", 31.2204, 121.4244), ("普陀区", 31.2494, 121.3972)]),
             ("HZ-XH", "杭州西湖服务网点", "浙江省", "杭州市", "0571",
              [("西湖区", 30.2595, 120.1302), ("上城区", 30.2425, 120.1693), ("拱墅区", 30.3197, 120.1420),
               ("滨江区", 30.2084, 120.2120)]),
             ("NJ-GL", "南京鼓楼服务网点", "江苏省", "南京市", "025",
              [("鼓楼区", 32.0663, 118.7699), ("玄武区", 32.0486, 118.7978), ("秦淮区", 32.0339, 118.7944),
               ("建邺区", 32.0037, 118.7318)]),
             ("SUZ-GS", "苏州姑苏服务网点", "江苏省", "苏州市", "0512",
              [("姑苏区", 31.3116, 120.6176), ("吴中区", 31.2624, 120.6322), ("相城区", 31.3690, 120.6424),
               ("虎丘区", 31.2958, 120.5667)]),
             ("NB-YZ", "宁波鄞州服务网点", "浙江省", "宁波市", "0574",
              [("鄞州区", 29.8171, 121.5462), ("海曙区", 29.8596, 121.5508), ("江北区", 29.8868, 121.5552)]),
             ("HF-SS", "合肥蜀山服务网点", "安徽省", "合肥市", "0551",
              [("蜀山区", 31.8512, 117.2606), ("包河区", 31.7930, 117.3099), ("庐阳区", 31.8788, 117.2647),
               ("瑶海区", 31.8580, 117.3094)]),
             ("QD-SN", "青岛市南服务网点", "山东省", "青岛市", "0532",
              [("市南区", 36.0669, 120.4124), ("市北区", 36.0871, 120.3748), ("李沧区", 36.1451, 120.4328),
               ("崂山区", 36.1072, 120.4687), ("黄岛区", 35.9607, 120.1980)]),
         ]),
    dict(code="C-SOUTH", name="华南区域服务中心", province="广东省", city="广州市", district="越秀区",
         street="环市东路339号", lat=23.129000, lng=113.266800, tel="020", outlets=[
             ("GZ-TH", "广州天河服务网点", "广东省", "广州市", "020",
              [("天河区", 23.1246, 113.3612), ("越秀区", 23.1290, 113.2668), ("海珠区", 23.0835, 113.3173),
               ("白云区", 23.1575, 113.2731)]),
             ("GZ-PY", "广州番禺服务网点", "广东省", "广州市", "020",
              [("番禺区", 22.9380, 113.3842), ("南沙区", 22.8016, 113.5252), ("花都区", 23.4039, 113.2203)]),
             ("SZ-FT", "深圳福田服务网点", "广东省", "深圳市", "0755",
              [("福田区", 22.5217, 114.0551), ("罗湖区", 22.5482, 114.1315), ("南山区", 22.5333, 113.9304),
               ("宝安区", 22.5549, 113.8830), ("龙岗区", 22.7209, 114.2479)]),
             ("FS-NH", "佛山南海服务网点", "广东省", "佛山市", "0757",
              [("南海区", 23.0288, 113.1431), ("禅城区", 23.0094, 113.1224), ("顺德区", 22.8055, 113.2932)]),
             ("ZH-XZ", "珠海香洲服务网点", "广东省", "珠海市", "0756",
              [("香洲区", 22.2664, 113.5435), ("斗门区", 22.2091, 113.2961), ("金湾区", 22.1470, 113.3627)]),
             ("XM-SM", "厦门思明服务网点", "福建省", "厦门市", "0592",
              [("思明区", 24.4454, 118.0820), ("湖里区", 24.5122, 118.1462), ("集美区", 24.5757, 118.0971),
               ("海沧区", 24.4845, 118.0326)]),
             ("FZ-GL", "福州鼓楼服务网点", "福建省", "福州市", "0591",
              [("鼓楼区", 26.0823, 119.3040), ("台江区", 26.0527, 119.3144), ("仓山区", 26.0468, 119.2733),
               ("晋安区", 26.0821, 119.3281)]),
             ("NN-QX", "南宁青秀服务网点", "广西壮族自治区", "南宁市", "0771",
              [("青秀区", 22.7853, 108.4946), ("兴宁区", 22.8540, 108.3680), ("西乡塘区", 22.8335, 108.3135),
               ("江南区", 22.7813, 108.2735)]),
         ]),
    dict(code="C-NORTH", name="华北区域服务中心", province="北京市", city="北京市", district="东城区",
         street="东长安街1号", lat=39.928800, lng=116.416300, tel="010", outlets=[
             ("BJ-CY", "北京朝阳服务网点", "北京市", "北京市", "010",
              [("朝阳区", 39.9215, 116.4435), ("东城区", 39.9288, 116.4163), ("通州区", 39.9098, 116.6564)]),
             ("BJ-HD", "北京海淀服务网点", "北京市", "北京市", "010",
              [("海淀区", 39.9593, 116.2981), ("西城区", 39.9123, 116.3660), ("丰台区", 39.8585, 116.2871),
               ("昌平区", 40.2207, 116.2312)]),
             ("TJ-HX", "天津河西服务网点", "天津市", "天津市", "022",
              [("河西区", 39.1097, 117.2232), ("和平区", 39.1172, 117.2147), ("南开区", 39.1381, 117.1503),
               ("河东区", 39.1283, 117.2520)]),
             ("SJZ-CA", "石家庄长安服务网点", "河北省", "石家庄市", "0311",
              [("长安区", 38.0367, 114.5393), ("桥西区", 38.0044, 114.4619), ("新华区", 38.0510, 114.4633),
               ("裕华区", 38.0061, 114.5310)]),
             ("TY-XD", "太原小店服务网点", "山西省", "太原市", "0351",
              [("小店区", 37.7361, 112.5652), ("迎泽区", 37.8633, 112.5634), ("杏花岭区", 37.8940, 112.5702),
               ("万柏林区", 37.8592, 112.5156)]),
             ("HHHT-SH", "呼和浩特赛罕服务网点", "内蒙古自治区", "呼和浩特市", "0471",
              [("赛罕区", 40.7921, 111.7019), ("新城区", 40.8583, 111.6657), ("回民区", 40.8083, 111.6237),
               ("玉泉区", 40.7522, 111.6745)]),
             ("JN-LX", "济南历下服务网点", "山东省", "济南市", "0531",
              [("历下区", 36.6664, 117.0765), ("市中区", 36.6511, 116.9975), ("槐荫区", 36.6515, 116.9011),
               ("天桥区", 36.6780, 116.9874)]),
             ("SY-SH", "沈阳沈河服务网点", "辽宁省", "沈阳市", "024",
              [("沈河区", 41.7963, 123.4588), ("和平区", 41.7896, 123.4204), ("皇姑区", 41.8244, 123.4418),
               ("铁西区", 41.8026, 123.3768)]),
         ]),
]

DEPARTMENTS_BY_KIND = {
    NodeKind.HQ: list(DepartmentKind),
    NodeKind.CENTRE: [DepartmentKind.MANAGEMENT, DepartmentKind.TECH_SUPPORT, DepartmentKind.CUSTOMER_SERVICE,
                      DepartmentKind.TRAINING, DepartmentKind.QUALITY],
    NodeKind.OUTLET: [DepartmentKind.MANAGEMENT, DepartmentKind.TECH_SUPPORT, DepartmentKind.CUSTOMER_SERVICE],
}

# Categories: (code, name, English, share of units, main parts, other fault keys).
CATEGORIES = [
    ("AC", "空调", "Air conditioner", 30,
     [("COMP", "压缩机"), ("FANM", "风扇电机"), ("THERM", "温控器"), ("PCB", "主控板")],
     ["NO_COOLING", "REFRIGERANT_LEAK", "WATER_LEAK", "NOISE", "REMOTE"]),
    ("RF", "冰箱", "Refrigerator", 20,
     [("COMP", "压缩机"), ("THERM", "温控器"), ("EVAP", "蒸发器"), ("COND", "冷凝器")],
     ["NO_COOLING", "FROST", "DOOR_SEAL", "NOISE", "LIGHT"]),
    ("WM", "洗衣机", "Washing machine", 20,
     [("MOTOR", "电动机"), ("PCB", "程序控制器"), ("CLUTCH", "离合器"), ("PUMP", "排水泵")],
     ["NO_DRAIN", "NOISE", "WATER_LEAK", "DOOR_LOCK", "NO_SPIN"]),
    ("TV", "电视", "Television", 15,
     [("PANEL", "显示屏"), ("MAINBOARD", "主板"), ("PSU", "电源板"), ("TUNER", "高频头")],
     ["NO_PICTURE", "NO_SOUND", "NO_SIGNAL", "REMOTE", "WIFI"]),
    ("WH", "热水器", "Water heater", 8,
     [("HEATER", "加热管"), ("TANK", "内胆"), ("HEX", "热交换器"), ("IGNITER", "点火器")],
     ["NO_HOT_WATER", "WATER_LEAK", "E1_ERROR", "THERMOSTAT"]),
    ("RH", "油烟机", "Range hood", 7,
     [("MOTOR", "电机"), ("PCB", "控制板"), ("IMPELLER", "风轮")],
     ["WEAK_SUCTION", "NOISE", "OIL_LEAK", "LIGHT"]),
]

# Models: category -> (code, name, brand, whole-unit months override, main-part months override, discontinued).
MODELS = {
    "AC": [
        ("KFR-35GW/NHGC1B", "云佳 1.5匹 新一级能效 挂机", "格力", 72, 120, False),
        ("KFR-72LW/NHIAB1W", "云锦 3匹 新一级能效 柜机", "格力", 72, 120, False),
        ("KFR-35GW/N8XHA1", "酷省电 1.5匹 挂机", "美的", None, None, False),
        ("KFR-72LW/N8MJA3", "锐云 3匹 柜机", "美的", 72, 72, False),
        ("KFR-35GW/06EDS81", "静悦 1.5匹 挂机", "海尔", None, None, False),
        ("KFR-50LW/03KCA81U1", "劲爽 2匹 柜机", "海尔", 72, 120, False),
        ("KFR-35GW/BPR3AQF19", "京裕 1.5匹 挂机", "奥克斯", None, None, True),
        ("KFR-35GW/E500-A1", "速冷热 1.5匹 挂机", "海信", None, None, False),
    ],
    "RF": [
        ("BCD-470WGHTDEDB9", "470升 十字对开门", "海尔", None, None, False),
        ("BCD-218STPS", "218升 三门", "海尔", None, None, True),
        ("BCD-508WKPZM(E)", "508升 对开门", "美的", None, None, False),
        ("BCD-529WD18HPA", "529升 对开门", "容声", None, None, False),
        ("KA92NV02TI", "610升 对开门", "西门子", None, None, False),
        ("BCD-452WMK1DPUJ", "452升 法式多门", "海信", None, None, False),
        ("BCD-401WPU9CX", "401升 法式多门", "美菱", None, None, True),
        ("BCD-460WPJD", "460升 十字门", "TCL", None, None, False),
    ],
    "WM": [
        ("TG100V88WMUIADY5", "10公斤 滚筒 洗烘一体", "小天鹅", None, None, False),
        ("TB100V23H", "10公斤 波轮", "小天鹅", None, None, True),
        ("EG100MATE28S", "10公斤 滚筒", "海尔", None, 120, False),
        ("XQB100-Z206", "10公斤 波轮", "海尔", None, None, False),
        ("MG100V33WY", "10公斤 滚筒", "美的", None, None, False),
        ("WM12P2602W", "10公斤 滚筒", "西门子", None, None, False),
        ("XQG100-NA5AX", "10公斤 滚筒", "松下", None, None, False),
        ("G100F12-B", "10公斤 滚筒", "TCL", None, None, True),
    ],
    "TV": [
        ("65E5K", "65英寸 ULED", "海信", None, None, False),
        ("75E7K", "75英寸 ULED Mini LED", "海信", None, None, False),
        ("65T7H", "65英寸 QLED", "TCL", None, None, False),
        ("55V8E", "55英寸 4K", "TCL", None, None, True),
        ("65A33", "65英寸 4K", "创维", None, None, False),
        ("L65M7-EA", "65英寸 4K", "小米", None, None, False),
        ("65D6P", "65英寸 4K", "长虹", None, None, True),
        ("KD-65X85K", "65英寸 4K", "索尼", None, None, False),
    ],
    "WH": [
        ("EC6001-MC3", "60升 电热水器", "海尔", None, None, False),
        ("F6033-JE5(HE)", "60升 电热水器", "美的", None, None, False),
        ("E60VDP", "60升 电热水器", "A.O.史密斯", None, 60, False),
        ("JSQ25-13ET16", "13升 燃气热水器", "万和", None, None, False),
        ("GQ-16E4FEX", "16升 燃气热水器", "能率", None, None, False),
        ("RUS-16QD05", "16升 燃气热水器", "林内", None, None, True),
        ("JSQ30-I12031", "16升 燃气热水器", "华帝", None, None, False),
        ("JSQ25-13WN3S", "13升 燃气热水器", "海尔", None, None, False),
    ],
    "RH": [
        ("CXW-258-EMD26", "侧吸式 油烟机", "方太", None, 60, False),
        ("CXW-260-67X6", "侧吸式 油烟机", "老板", None, None, False),
        ("CXW-200-27A57", "顶吸式 油烟机", "老板", None, None, True),
        ("CXW-220-I11187", "侧吸式 油烟机", "华帝", None, None, False),
        ("CXW-280-J25", "侧吸式 油烟机", "美的", None, None, False),
        ("CXW-219-E900C2", "侧吸式 油烟机", "海尔", None, None, False),
        ("LC47SS950W", "顶吸式 油烟机", "西门子", None, None, False),
        ("CXW-300-X07", "侧吸式 油烟机", "万和", None, None, True),
    ],
}

BRAND_CODES = {
    "格力": "GR", "美的": "MD", "海尔": "HR", "奥克斯": "AX", "海信": "HX", "容声": "RS", "西门子": "SI",
    "美菱": "ML", "TCL": "TC", "小天鹅": "LS", "松下": "PN", "创维": "SK", "小米": "MI", "长虹": "CH",
    "索尼": "SN", "A.O.史密斯": "AO", "万和": "WH", "能率": "NR", "林内": "RN", "华帝": "VT", "方太": "FT",
    "老板": "RB",
}

# (code, name, validity in months)
CERT_TYPES = [
    ("ELEC_LV", "低压电工作业证", 72),
    ("REFRIG_AC", "制冷与空调作业证", 72),
    ("WORK_HEIGHT", "高处作业证", 72),
    ("GAS_APPLIANCE", "燃气具安装维修", 48),
]

TAGS = ["VIP", "老客户", "企业客户", "以旧换新", "延保客户", "投诉关注"]

# The demo log-ins: (role, username, where). "centre" is the first centre (华东), "outlet" its
# first outlet (上海浦东). The technician is one of the technicians; the customer a customer.
LOGINS = [
    (Role.ADMIN, "admin", "hq"),
    (Role.HQ_MANAGER, "hq_manager", "hq"),
    (Role.CENTRE_MANAGER, "centre_manager", "centre"),
    (Role.OUTLET_MANAGER, "outlet_manager", "outlet"),
    (Role.AGENT, "agent", "centre"),
    (Role.DISPATCHER, "dispatcher", "outlet"),
    (Role.TECHNICIAN, "technician", "outlet"),
    (Role.QUALITY, "quality", "hq"),
    (Role.TRAINER, "trainer", "centre"),
    (Role.CUSTOMER, "customer", "outlet"),
]
LOGIN_USERNAMES = [u for _r, u, _w in LOGINS]
LOGIN_DEPARTMENT = {
    Role.HQ_MANAGER: DepartmentKind.MANAGEMENT, Role.CENTRE_MANAGER: DepartmentKind.MANAGEMENT,
    Role.OUTLET_MANAGER: DepartmentKind.MANAGEMENT, Role.AGENT: DepartmentKind.CUSTOMER_SERVICE,
    Role.DISPATCHER: DepartmentKind.CUSTOMER_SERVICE, Role.QUALITY: DepartmentKind.QUALITY,
    Role.TRAINER: DepartmentKind.TRAINING,
}

# ==================================================================== generators

# The most common surnames, weighted roughly by their share of the population (per mille).
SURNAMES = [
    ("王", 71), ("李", 70), ("张", 67), ("刘", 54), ("陈", 52), ("杨", 31), ("黄", 24), ("赵", 23), ("吴", 20),
    ("周", 19), ("徐", 15), ("孙", 15), ("马", 12), ("朱", 12), ("胡", 11), ("郭", 11), ("何", 10), ("高", 10),
    ("林", 10), ("罗", 9), ("郑", 9), ("梁", 8), ("谢", 7), ("宋", 7), ("唐", 7), ("许", 6), ("韩", 6), ("冯", 6),
    ("邓", 6), ("曹", 6), ("彭", 5), ("曾", 5), ("肖", 5), ("田", 5), ("董", 5), ("袁", 5), ("潘", 4), ("于", 4),
    ("蒋", 4), ("蔡", 4), ("余", 4), ("杜", 4), ("叶", 4), ("程", 4), ("苏", 4), ("魏", 4), ("吕", 4), ("丁", 4),
    ("任", 4), ("沈", 3), ("姚", 3), ("卢", 3), ("姜", 3), ("崔", 3), ("钟", 3), ("谭", 3), ("陆", 3), ("汪", 3),
    ("范", 3), ("金", 3), ("石", 3), ("廖", 3), ("贾", 3), ("夏", 3), ("韦", 3), ("付", 3), ("方", 3), ("白", 2),
    ("邹", 2), ("孟", 2), ("熊", 2), ("秦", 2), ("邱", 2), ("江", 2), ("尹", 2), ("薛", 2), ("闫", 2), ("段", 2),
    ("雷", 2), ("侯", 2), ("龙", 2), ("史", 2), ("陶", 2), ("黎", 2), ("贺", 2), ("顾", 2), ("毛", 2), ("郝", 2),
    ("龚", 2), ("邵", 2), ("万", 2), ("钱", 2), ("严", 2), ("覃", 1), ("武", 2), ("戴", 2), ("莫", 1), ("孔", 1),
    ("向", 1), ("汤", 1), ("欧阳", 1), ("司马", 0.2), ("上官", 0.2), ("诸葛", 0.1),
]
_SURNAME_CHARS = [s for s, _w in SURNAMES]
_SURNAME_CUM = []
_acc = 0.0
for _s, _w in SURNAMES:
    _acc += _w
    _SURNAME_CUM.append(_acc)

# Characters common in given names; the first part leans male, the second female, the last neutral.
_GIVEN_M = "伟强磊军勇杰涛明超刚辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳建国文斌志峰亮成东海鸿振博晨轩睿铭"
_GIVEN_F = "芳娜敏静丽艳娟霞平婷玉萍红玲芬燕雪琳晶颖倩怡欣涵梅兰凤洁慧淑巧美娇云莲真环秀英蓉月桂琪瑶"
_GIVEN_N = "嘉子梓一雨思诗佳欣安然宇泽晓春秋冬新永家德和清"


def person_name(rng: random.Random) -> str:
    """A plausible Chinese name: a weighted common surname and a one- or two-character given name."""
    surname = rng.choices(_SURNAME_CHARS, cum_weights=_SURNAME_CUM)[0]
    pool = _GIVEN_M if rng.random() < 0.5 else _GIVEN_F
    first = rng.choice(pool)
    if rng.random() < 0.3:
        return surname + first
    return surname + first + rng.choice(pool + _GIVEN_N)


# Real mainland mobile prefixes (China Mobile, Unicom, Telecom, Broadnet).
MOBILE_PREFIXES = (
    "134 135 136 137 138 139 147 150 151 152 157 158 159 172 178 182 183 184 187 188 195 197 198 "
    "130 131 132 145 155 156 166 175 176 185 186 196 "
    "133 149 153 173 177 180 181 189 190 191 193 199 192"
).split()


class MobileNumbers:
    """Unique, valid mainland mobile numbers (1[3-9] and 9 digits) from a seeded stream."""

    def __init__(self, rng: random.Random, taken: Iterable[str] = ()):
        self.rng = rng
        self.taken = set(taken)

    def next(self) -> str:
        rng, taken = self.rng, self.taken
        while True:
            phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
            if phone not in taken:
                taken.add(phone)
                return phone


ROADS = [
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "文化路", "胜利路", "长江路", "黄河路", "青年路",
    "学府路", "光明路", "朝阳路", "幸福路", "东风路", "友谊路", "迎宾大道", "滨江大道", "科技路", "工业路",
    "花园路", "育才路", "振兴路", "民主路", "复兴路", "环城东路", "环城西路", "南京路", "北京路", "金桥路",
]
ESTATES = [
    "阳光花园", "锦绣家园", "翠湖苑", "金色家园", "碧水湾", "世纪城", "东方明珠苑", "紫荆公寓", "绿地小区",
    "万科城", "保利花园", "星河湾", "海棠苑", "丽景华庭", "和谐家园", "幸福里",
]


def street_address(rng: random.Random) -> str:
    """e.g. 人民路128号3栋502室 or 中山路66号阳光花园12栋2单元1803室."""
    estate = rng.choice(ESTATES) if rng.random() < 0.45 else ""
    unit = f"{rng.randint(1, 4)}单元" if rng.random() < 0.4 else ""
    return (f"{rng.choice(ROADS)}{rng.randint(1, 999)}号{estate}{rng.randint(1, 30)}栋{unit}"
            f"{rng.randint(1, 33)}{rng.randint(1, 4):02d}室")


def _coord(v: float) -> Decimal:
    return Decimal(f"{v:.6f}")


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(y, m, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


_DEMO_HASH: str | None = None


def demo_password_hash() -> str:
    """make_password is slow on purpose: hash the demo password once per process."""
    global _DEMO_HASH
    if _DEMO_HASH is None:
        _DEMO_HASH = make_password(DEMO_PASSWORD)
    return _DEMO_HASH


# ==================================================================== reset


def _delete(qs: models.QuerySet) -> int:
    """Delete like ``QuerySet.delete()`` but never touch the audit trail.

    ``AuditEntry.actor`` is SET_NULL (without a DB constraint); the collector would rewrite
    the actor of the entries a deleted user wrote, and the actor is part of the entry's hash.
    """
    qs = qs.order_by()
    collector = Collector(using=qs.db, origin=qs)
    collector.collect(qs)
    for key in [k for k in collector.field_updates if k[0].model is AuditEntry]:
        del collector.field_updates[key]
    deleted, _per_model = collector.delete()
    return deleted


def demo_reset(progress_stream=None) -> int:
    """Delete what the demo creates (work orders, organisation, catalogue, staff, customer file,
    the demo users), children first. The audit trail is append-only and is kept."""
    reset_first = ((staff_demo.reset() or 0) + (quality_demo.reset() or 0) + (charges_demo.reset() or 0)
                   + (assets_demo.reset() or 0) + parts_reset(progress_stream))
    orders_deleted = orders_reset(progress_stream) + reset_first
    user_model = get_user_model()
    user_ids = set(Employee.objects.values_list("user_id", flat=True))
    user_ids |= set(Customer.objects.exclude(user=None).values_list("user_id", flat=True))
    user_ids |= set(user_model.objects.filter(username__in=LOGIN_USERNAMES).values_list("id", flat=True))
    steps: list[models.QuerySet] = [
        UnitRepair.objects.all(),
        Unit.objects.all(),
        Customer.tags.through.objects.all(),
        Address.objects.all(),
        Customer.objects.all(),
        Tag.objects.all(),
        RoleAssignment.objects.all(),
        Certification.objects.all(),
        Employee.skills.through.objects.all(),
        Employee.objects.all(),
        Department.objects.all(),
        Coverage.objects.all(),
        Node.objects.filter(kind=NodeKind.OUTLET),
        Node.objects.filter(kind=NodeKind.CENTRE),
        Node.objects.all(),
        MainPart.objects.all(),
        ProductModel.objects.all(),
        WarrantyPolicy.objects.all(),
        Category.objects.all(),
        CertificationType.objects.all(),
        LogEntry.objects.filter(user_id__in=user_ids),
        user_model.objects.filter(pk__in=user_ids),
    ]
    total = orders_deleted
    p = Progress(len(steps), "清除旧数据", progress_stream) if progress_stream is not None else None
    for qs in steps:
        total += _delete(qs)
        if p:
            p.advance()
    if p:
        p.finish()
    return total


def has_domain_data() -> bool:
    return (
        Node.objects.exists() or Customer.objects.exists() or Category.objects.exists()
        or CertificationType.objects.exists() or Employee.objects.exists()
        or get_user_model().objects.filter(username__in=LOGIN_USERNAMES).exists()
    )


# ==================================================================== loader


class DemoLoader:
    def __init__(self, *, seed: int, customers: int, units: int, today: dt.date, progress_stream=None):
        self.seed = seed
        self.n_customers = customers
        self.n_units = units
        self.today = today
        self.stream = progress_stream
        self.counts: dict[str, int] = {}
        self.audit_batches: list[tuple[list[models.Model], Callable[[models.Model], int | None]]] = []
        self.pw_hash = demo_password_hash()

    def rng(self, part: str) -> random.Random:
        # One stream per part, so that e.g. more technicians do not change the customers.
        return random.Random(f"aftersales-demo:{self.seed}:{part}")

    def progress(self, total: int, label: str) -> Progress:
        return Progress(total, label, self.stream, live=None if self.stream is not None else False)

    def _bulk(self, model, objs: list, label: str | None = None, node_of=None, audit: bool = True) -> list:
        if not objs:
            return objs
        p = self.progress(len(objs), label) if label and self.stream is not None else None
        for i in range(0, len(objs), BATCH):
            model.objects.bulk_create(objs[i : i + BATCH], batch_size=BATCH)
            if p:
                p.advance(len(objs[i : i + BATCH]))
        if p:
            p.finish()
        self.counts[model._meta.label] = self.counts.get(model._meta.label, 0) + len(objs)
        if audit:
            self.audit_batches.append((objs, node_of))
        return objs

    # ---------------------------------------------------------------- run

    def run(self) -> None:
        self.load_org()
        self.load_catalog()
        self.load_staff()
        self.load_customers()
        self.load_units()
        self.write_audit()

    # ---------------------------------------------------------------- organisation

    def load_org(self) -> None:
        rng = self.rng("org")

        def node(kind, parent, code, name, province, city, district, street, lat, lng, tel):
            return Node(kind=kind, parent=parent, code=code, name=name, path="", province=province, city=city,
                        district=district, address=f"{district}{street}", lat=_coord(lat), lng=_coord(lng),
                        phone=f"{tel}-{rng.randint(5000, 8999)}{rng.randint(0, 9999):04d}")

        hq = node(NodeKind.HQ, None, HQ["code"], HQ["name"], HQ["province"], HQ["city"], HQ["district"],
                  HQ["street"], HQ["lat"], HQ["lng"], HQ["tel"])
        Node.objects.bulk_create([hq])
        centres = [node(NodeKind.CENTRE, hq, c["code"], c["name"], c["province"], c["city"], c["district"],
                        c["street"], c["lat"], c["lng"], c["tel"]) for c in CENTRES]
        Node.objects.bulk_create(centres)
        outlets, coverage = [], []
        self.outlet_districts: dict[int, list[tuple[str, str, str, float, float]]] = {}
        specs = []
        for centre, c in zip(centres, CENTRES, strict=True):
            for code, name, province, city, tel, districts in c["outlets"]:
                d0, lat, lng = districts[0]
                outlets.append(node(NodeKind.OUTLET, centre, code, name, province, city, d0,
                                    street_address(rng).split("号")[0] + "号", lat, lng, tel))
                specs.append((province, city, districts))
        Node.objects.bulk_create(outlets)
        for o, (province, city, districts) in zip(outlets, specs, strict=True):
            self.outlet_districts[o.pk] = [(province, city, d, lat, lng) for d, lat, lng in districts]
            coverage += [Coverage(outlet=o, province=province, city=city, district=d) for d, _la, _ln in districts]
        # materialised paths, computed once everything has an id
        nodes = [hq, *centres, *outlets]
        by_id = {n.pk: n for n in nodes}
        for n in nodes:
            n.path = (by_id[n.parent_id].path if n.parent_id else "/") + f"{n.pk}/"
        Node.objects.bulk_update(nodes, ["path"], batch_size=BATCH)
        self.counts[Node._meta.label] = len(nodes)
        self.audit_batches.append((nodes, lambda n: n.pk))
        self.hq, self.centres, self.outlets = hq, centres, outlets
        self._bulk(Coverage, coverage, node_of=lambda c: c.outlet_id)
        self.node_by_id = by_id

        departments = []
        for n in nodes:
            for kind in DEPARTMENTS_BY_KIND[n.kind]:
                departments.append(Department(node=n, kind=kind, name=str(kind.label)))
        self._bulk(Department, departments, node_of=lambda d: d.node_id)
        self.dept = {(d.node_id, d.kind): d for d in departments}

    # ---------------------------------------------------------------- catalogue

    def load_catalog(self) -> None:
        rng = self.rng("catalog")
        hq_id = self.hq.pk
        cats = [Category(code=code, name=name, name_en=en) for code, name, en, *_rest in CATEGORIES]
        self._bulk(Category, cats, node_of=lambda _o: hq_id)
        self.categories = {c.code: c for c in cats}
        policies = [WarrantyPolicy(category=c, return_days=7, exchange_days=15, whole_unit_months=12,
                                   main_part_months=36, repeat_repair_limit=2, extend_by_repair_time=True,
                                   exchange_restarts=True, exclusions=[]) for c in cats]
        self._bulk(WarrantyPolicy, policies, node_of=lambda _o: hq_id)
        ensure_fault_catalog()  # link the fault categories and codes to the categories just created
        models_, parts = [], []
        self.model_info: dict[str, list[dict]] = {}
        for code, _name, _en, _share, main_parts, faults in CATEGORIES:
            cat = self.categories[code]
            for m_code, m_name, brand, whole, main, discontinued in MODELS[code]:
                launched = self.today - dt.timedelta(days=rng.randint(2700, 3300))
                pm = ProductModel(
                    category=cat, code=m_code, name=f"{brand} {m_name}", brand=brand, launched_on=launched,
                    discontinued_on=self.today - dt.timedelta(days=rng.randint(240, 900)) if discontinued else None,
                    whole_unit_months=whole, main_part_months=main,
                )
                models_.append(pm)
                chosen = rng.sample(main_parts, rng.randint(min(2, len(main_parts)), min(4, len(main_parts))))
                self.model_info.setdefault(code, []).append({
                    "model": pm, "brand": BRAND_CODES[brand], "parts": [p for p, _n in chosen],
                    "faults": faults, "whole": whole or 12, "main": main or 36,
                })
        self._bulk(ProductModel, models_, node_of=lambda _o: hq_id)
        part_names = {(code, p): n for code, _n, _e, _s, main_parts, _f in CATEGORIES for p, n in main_parts}
        for code, infos in self.model_info.items():
            for info in infos:
                parts += [MainPart(model=info["model"], code=p, name=part_names[code, p]) for p in info["parts"]]
        self._bulk(MainPart, parts, node_of=lambda _o: hq_id)
        self.cert_types = [CertificationType(code=c, name=n, validity_months=v) for c, n, v in CERT_TYPES]
        self._bulk(CertificationType, self.cert_types, node_of=lambda _o: hq_id)

    # ---------------------------------------------------------------- staff and log-ins

    def load_staff(self) -> None:
        rng = self.rng("staff")
        user_model = get_user_model()
        self.phones = MobileNumbers(self.rng("staff-phones"))
        today = self.today
        centre, outlet = self.centres[0], self.outlets[0]
        where = {"hq": self.hq, "centre": centre, "outlet": outlet}
        cat_codes = list(self.categories)

        users: list = []
        employees: list[Employee] = []
        roles: list[tuple[int, str, Node]] = []  # (index into users, role, node)
        skills: list[tuple[int, list[str]]] = []  # (index into employees, category codes)
        emp_user: list[int] = []  # index into users, per employee
        emp_no = 0

        def add_user(username: str, name: str, *, usable: bool, superuser: bool = False) -> int:
            users.append(user_model(
                username=username, first_name=name, is_active=True, is_staff=superuser, is_superuser=superuser,
                password=self.pw_hash if usable else make_password(None),
            ))
            return len(users) - 1

        def add_employee(node: Node, dept_kind, name: str, *, grade=Grade.JUNIOR, hire: dt.date | None = None,
                         username: str | None = None, service_area: str = "") -> tuple[int, int]:
            nonlocal emp_no
            emp_no += 1
            number = f"E{emp_no:05d}"
            hire = hire or today - dt.timedelta(days=rng.randint(200, 4000))
            u = add_user(username or number, name, usable=username is not None)
            emp_user.append(u)
            employees.append(Employee(
                node=node, department=self.dept[(node.pk, dept_kind)], employee_no=number, name=name,
                phone=self.phones.next(), grade=grade, hire_date=hire,
                probation_end=hire + dt.timedelta(days=rng.choice([90, 180])), service_area=service_area,
                active=True,
            ))
            return u, len(employees) - 1

        # 180 technicians, spread evenly over the outlets (the first outlets get one more).
        n_tech = 180
        per = [n_tech // len(self.outlets) + (1 if i < n_tech % len(self.outlets) else 0)
               for i in range(len(self.outlets))]
        self.technicians: list[int] = []
        for o, count in zip(self.outlets, per, strict=True):
            area = "、".join(d for _p, _c, d, _la, _ln in self.outlet_districts[o.pk])
            for k in range(count):
                r = rng.random()
                if r < 0.08:
                    hire = today - dt.timedelta(days=rng.randint(10, 150))  # still on probation
                else:
                    hire = today - dt.timedelta(days=rng.randint(151, 3650))
                years = (today - hire).days / 365
                grade = Grade.SENIOR if years > 3 and rng.random() < 0.6 else Grade.JUNIOR
                login = "technician" if (o is outlet and k == 0) else None
                u, e = add_employee(o, DepartmentKind.TECH_SUPPORT, person_name(rng), grade=grade, hire=hire,
                                    username=login, service_area=area)
                roles.append((u, Role.TECHNICIAN, o))
                skills.append((e, sorted(rng.sample(cat_codes, rng.randint(2, 4)))))
                self.technicians.append(e)

        # The named staff log-ins, then a manager for every other centre and outlet and an agent per outlet.
        for role, username, w in LOGINS:
            node = where[w]
            if role == Role.ADMIN:
                u = add_user(username, "系统管理员", usable=True, superuser=True)
                roles.append((u, role, node))
            elif role in LOGIN_DEPARTMENT:
                u, _e = add_employee(node, LOGIN_DEPARTMENT[role], person_name(rng), grade=Grade.SENIOR,
                                     username=username)
                roles.append((u, role, node))
            elif role == Role.CUSTOMER:
                self.customer_login_user = add_user(username, "", usable=True)  # linked in load_customers
            # the technician's log-in is made above, with the technicians
        for c in self.centres[1:]:
            u, _e = add_employee(c, DepartmentKind.MANAGEMENT, person_name(rng), grade=Grade.SENIOR)
            roles.append((u, Role.CENTRE_MANAGER, c))
        for o in self.outlets:
            if o is not outlet:
                u, _e = add_employee(o, DepartmentKind.MANAGEMENT, person_name(rng), grade=Grade.SENIOR)
                roles.append((u, Role.OUTLET_MANAGER, o))
            u, _e = add_employee(o, DepartmentKind.CUSTOMER_SERVICE, person_name(rng))
            roles.append((u, Role.AGENT, o))

        self.user_node: dict[int, int] = {}  # filled once ids exist; read when the audit is written
        self._bulk(user_model, users, node_of=lambda u: self.user_node.get(u.pk))
        for emp, u in zip(employees, emp_user, strict=True):
            emp.user = users[u]
        self._bulk(Employee, employees, node_of=lambda e: e.node_id)
        for emp in employees:
            self.user_node[emp.user_id] = emp.node_id
        for u, _role, node in roles:
            self.user_node.setdefault(users[u].pk, node.pk)

        skill_rows = [Employee.skills.through(employee_id=employees[e].pk, category_id=self.categories[c].pk)
                      for e, codes in skills for c in codes]
        emp_node = {e.pk: e.node_id for e in employees}
        self._bulk(Employee.skills.through, skill_rows, node_of=lambda s: emp_node[s.employee_id])
        ras = [RoleAssignment(user=users[u], role=role, node=node) for u, role, node in roles]
        self._bulk(RoleAssignment, ras, node_of=lambda r: r.node_id)

        # certificates: 1-3 per technician, by skill; some expire within 30 days, some have expired
        certs = []
        by_code = {t.code: t for t in self.cert_types}
        serial = 0
        for i, (e, codes) in enumerate(skills):
            wanted = ["ELEC_LV"]
            if "AC" in codes:
                wanted += ["REFRIG_AC", "WORK_HEIGHT"]
            if "WH" in codes or "RH" in codes:
                wanted.append("GAS_APPLIANCE")
            rng.shuffle(wanted)
            for j, code in enumerate(sorted(wanted[: rng.randint(1, min(3, len(wanted)))])):
                t = by_code[code]
                r = rng.random()
                if i == 0 and j == 0:
                    expires = today + dt.timedelta(days=12)
                elif i == 1 and j == 0:
                    expires = today - dt.timedelta(days=20)
                elif r < 0.08:
                    expires = today - dt.timedelta(days=rng.randint(1, 400))
                elif r < 0.16:
                    expires = today + dt.timedelta(days=rng.randint(0, 30))
                else:
                    expires = today + dt.timedelta(days=rng.randint(31, t.validity_months * 30 - 30))
                issued = _add_months(expires, -t.validity_months)
                serial += 1
                certs.append(Certification(employee=employees[e], type=t, issued_on=issued, expires_on=expires,
                                           number=f"T{issued:%Y}{rng.randint(10, 99)}{serial:06d}"))
        self._bulk(Certification, certs, node_of=lambda c: c.employee.node_id)
        self.customer_login_user = users[self.customer_login_user]

    # ---------------------------------------------------------------- customers and addresses

    def load_customers(self) -> None:
        rng = self.rng("customers")
        phones = MobileNumbers(self.rng("customer-phones"), taken=self.phones.taken)
        demo_outlet = self.outlets[0]
        districts = [(o.pk, *d) for o in self.outlets for d in self.outlet_districts[o.pk]]
        by_city: dict[str, list] = {}
        for d in districts:
            by_city.setdefault(d[2], []).append(d)
        notes = ["周末上门", "需提前电话联系", "老人独居，上门请耐心说明", "小区需登记，门卫处报客户姓名", "工作日晚上七点后方便"]
        tags = [Tag(name=n) for n in TAGS]
        self._bulk(Tag, tags, node_of=lambda _t: self.hq.pk)

        customers: list[Customer] = []
        addresses: list[tuple[int, Address]] = []
        customer_tags: list[tuple[int, Tag]] = []
        login_done = False
        for i in range(self.n_customers):
            node_id, province, city, district, lat, lng = rng.choice(districts)
            c = Customer(node_id=node_id, name=person_name(rng), phone=phones.next(),
                         notes=rng.choice(notes) if rng.random() < 0.05 else "")
            if not login_done and node_id == demo_outlet.pk:
                c.user = self.customer_login_user
                self.customer_login_user.first_name = c.name
                login_done = True
            customers.append(c)
            addresses.append((i, Address(
                label="家", province=province, city=city, district=district, street=street_address(rng),
                lat=_coord(lat + rng.gauss(0, 0.012)), lng=_coord(lng + rng.gauss(0, 0.012)), is_default=True,
            )))
            if rng.random() < 0.3:
                _n, p2, c2, d2, lat2, lng2 = rng.choice(by_city[city])
                addresses.append((i, Address(
                    label=rng.choice(["公司", "父母家", "老房子"]), province=p2, city=c2, district=d2,
                    street=street_address(rng), lat=_coord(lat2 + rng.gauss(0, 0.012)),
                    lng=_coord(lng2 + rng.gauss(0, 0.012)), is_default=False,
                )))
            if rng.random() < 0.18:
                for t in rng.sample(tags, rng.choice([1, 1, 2])):
                    customer_tags.append((i, t))
        if self.n_customers and not login_done:  # tiny runs: take the first customer, move it to the outlet
            customers[0].node_id = demo_outlet.pk
            customers[0].user = self.customer_login_user
        if self.n_customers:
            self.customer_login_user.save(update_fields=["first_name"])
            login_customer = next(c for c in customers if c.user_id)
            ra = RoleAssignment(user=self.customer_login_user, role=Role.CUSTOMER, node_id=login_customer.node_id)
            self._bulk(RoleAssignment, [ra], node_of=lambda r: r.node_id)
            self.user_node[self.customer_login_user.pk] = login_customer.node_id

        self._bulk(Customer, customers, "客户", node_of=lambda c: c.node_id)
        for i, a in addresses:
            a.customer = customers[i]
        self.customers = customers
        self.addresses = [a for _i, a in addresses]
        self.addresses_of: dict[int, list[Address]] = {}
        for i, a in addresses:
            self.addresses_of.setdefault(i, []).append(a)
        node_of_customer = {c.pk: c.node_id for c in customers}
        self.node_of_customer = node_of_customer
        self._bulk(Address, self.addresses, "地址", node_of=lambda a: node_of_customer[a.customer_id])
        tag_rows = [Customer.tags.through(customer_id=customers[i].pk, tag_id=t.pk) for i, t in customer_tags]
        self._bulk(Customer.tags.through, tag_rows, node_of=lambda r: node_of_customer[r.customer_id])

    # ---------------------------------------------------------------- units and repairs

    def _purchase_days_ago(self, rng: random.Random) -> int:
        r = rng.random()
        if r < 0.02:
            return rng.randint(0, 6)  # return window
        if r < 0.04:
            return rng.randint(7, 14)  # exchange window
        if r < 0.24:
            return rng.randint(15, 364)  # whole unit in warranty
        if r < 0.50:
            return rng.randint(365, 1094)  # main parts in warranty
        return rng.randint(1095, 2555)  # out of warranty

    def load_units(self) -> None:
        rng = self.rng("units")
        today = self.today
        n_c, n_u = len(self.customers), self.n_units
        if n_u and not n_c:
            raise CommandError("需要至少一个客户才能登记产品。")
        owners = list(range(n_c)) if n_u >= n_c else rng.sample(range(n_c), n_u)
        owners += [rng.randrange(n_c) for _ in range(n_u - len(owners))]
        owners.sort()
        cat_codes = [c for c, *_r in CATEGORIES]
        cat_weights = [share for _c, _n, _e, share, *_r in CATEGORIES]
        channels = [SalesChannel.STORE, SalesChannel.ONLINE, SalesChannel.DEALER, SalesChannel.PROJECT]
        units: list[Unit] = []
        info_of: list[dict] = []
        for seq, ci in enumerate(owners, start=1):
            days = self._purchase_days_ago(rng)
            purchased = today - dt.timedelta(days=days)
            cat = rng.choices(cat_codes, weights=cat_weights)[0]
            candidates = [m for m in self.model_info[cat]
                          if (m["model"].discontinued_on is None
                              or purchased <= m["model"].discontinued_on + dt.timedelta(days=180))
                          and m["model"].launched_on <= purchased]
            info = rng.choice(candidates or self.model_info[cat])
            pm = info["model"]
            if rng.random() < 0.04:
                invoice = ""
            elif purchased.year >= 2024:
                invoice = f"{purchased:%y}{rng.randrange(10**18):018d}"  # 全电发票 20 digits
            else:
                invoice = f"{rng.randrange(10**8):08d}"
            addrs = self.addresses_of.get(ci, [])
            address = addrs[1] if len(addrs) > 1 and rng.random() < 0.3 else (addrs[0] if addrs else None)
            exchanged = None
            if days >= 20 and rng.random() < 0.01:
                exchanged = purchased + dt.timedelta(days=rng.randint(2, 15))
            units.append(Unit(
                customer=self.customers[ci], model=pm, purchase_date=purchased,
                serial=f"{info['brand']}{cat}{purchased:%y%m}{seq:07d}",
                sales_channel=rng.choices(channels, weights=[45, 40, 12, 3])[0],
                invoice_no=invoice, address=address, exchanged_on=exchanged,
            ))
            info_of.append(info)
        node_of_customer = self.node_of_customer
        self._bulk(Unit, units, "产品", node_of=lambda u: node_of_customer[u.customer_id])

        # repair history: ~8 % one repair, ~1 % two repairs of the same fault (half of them then
        # exchanged), ~0.5 % two different faults; some repairs still running.
        repairs: list[UnitRepair] = []
        exchanged: list[Unit] = []
        wo = 0

        def in_warranty(u: Unit, info: dict, fault: str, started: dt.date) -> bool:
            if not u.invoice_no:
                return False
            base = u.exchanged_on if u.exchanged_on and u.exchanged_on <= started else u.purchase_date
            months = info["main"] if fault in info["parts"] else info["whole"]
            return started <= _add_months(base, months)

        def repair(u: Unit, info: dict, fault: str, started: dt.date, finished: dt.date | None) -> None:
            nonlocal wo
            wo += 1
            repairs.append(UnitRepair(unit=u, started_on=started, finished_on=finished, fault_key=fault,
                                      in_warranty=in_warranty(u, info, fault, started),
                                      source=f"WO{started:%Y%m%d}{wo:05d}"))

        def fault_of(info: dict) -> str:
            return rng.choice(info["parts"]) if rng.random() < 0.45 else rng.choice(info["faults"])

        for u, info in zip(units, info_of, strict=True):
            age = (today - u.purchase_date).days
            r = rng.random()
            if age >= 120 and r < 0.01:  # the same fault twice
                fault = fault_of(info)
                s1 = u.purchase_date + dt.timedelta(days=rng.randint(20, age - 90))
                f1 = s1 + dt.timedelta(days=rng.randint(1, 7))
                s2 = min(f1 + dt.timedelta(days=rng.randint(15, 150)), today - dt.timedelta(days=1))
                f2 = s2 + dt.timedelta(days=rng.randint(1, 7))
                f2 = f2 if f2 <= today else None
                repair(u, info, fault, s1, f1)
                repair(u, info, fault, s2, f2)
                if f2 and repairs[-1].in_warranty and rng.random() < 0.5 and f2 + dt.timedelta(days=5) <= today:
                    # two repairs of one fault in warranty: exchanged (三包 Art. 11)
                    u.exchanged_on = f2 + dt.timedelta(days=rng.randint(1, 5))
                    exchanged.append(u)
            elif age >= 60 and r < 0.015:  # two different faults
                s1 = u.purchase_date + dt.timedelta(days=rng.randint(10, age // 2))
                repair(u, info, fault_of(info), s1, s1 + dt.timedelta(days=rng.randint(1, 10)))
                s2 = s1 + dt.timedelta(days=rng.randint(20, max(21, age // 2 - 10)))
                s2 = min(s2, today)
                f2 = s2 + dt.timedelta(days=rng.randint(1, 10))
                repair(u, info, fault_of(info), s2, f2 if f2 <= today else None)
            elif age >= 3 and r < 0.095:
                s1 = u.purchase_date + dt.timedelta(days=rng.randint(3, age))
                f1 = s1 + dt.timedelta(days=rng.randint(0, 10))
                repair(u, info, fault_of(info), s1, f1 if f1 <= today else None)
        Unit.objects.bulk_update(exchanged, ["exchanged_on"], batch_size=BATCH)
        unit_node = {u.pk: node_of_customer[u.customer_id] for u in units}
        self._bulk(UnitRepair, repairs, "维修记录", node_of=lambda r: unit_node[r.unit_id])

    # ---------------------------------------------------------------- audit

    def write_audit(self) -> None:
        total = sum(len(objs) for objs, _f in self.audit_batches)
        p = self.progress(total, "审计记录") if self.stream is not None else None
        at = timezone.now()
        for objs, node_of in self.audit_batches:
            for i in range(0, len(objs), 5000):
                chunk = objs[i : i + 5000]
                audit_record_created_bulk(actor=None, action=AUDIT_ACTION, objs=chunk, node_of=node_of, at=at,
                                          batch_size=BATCH)
                if p:
                    p.advance(len(chunk))
        if p:
            p.finish()
        self.counts["records.AuditEntry"] = total


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(text_width(r[i]) for r in rows) for i in range(len(rows[0]))]

    def fmt(r):
        return "  ".join(c + " " * (w - text_width(c)) for c, w in zip(r, widths, strict=True)).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return [fmt(rows[0]), sep, *(fmt(r) for r in rows[1:])]


@contextlib.contextmanager
def bulk_load_journal():
    """On SQLite, load with a rollback journal and without syncs, then go back to the write-ahead
    log: in WAL mode every new page is written twice (log, then checkpoint). The load is one
    transaction, so a failure still leaves nothing behind."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:  # (a test's transaction)
        yield
        return
    connection.close()  # leaving WAL needs the only connection to the file
    with connection.cursor() as cur:
        cur.execute("PRAGMA journal_mode")
        journal = cur.fetchone()[0]
        cur.execute("PRAGMA journal_mode = TRUNCATE")
        cur.execute("PRAGMA synchronous = OFF")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute(f"PRAGMA journal_mode = {journal}")
            cur.execute("PRAGMA synchronous = NORMAL")


class Command(BaseCommand):
    help = (
        "载入演示数据（确定性，按 --seed）：总部、3 个区域服务中心、24 个服务网点及其服务区域、部门、"
        "产品类别/型号/三包政策、180 名技术支持工程师及证书、客户、地址、产品与维修记录，以及近六个月的工单"
        "（受理、派工、上门、维修、回访、投诉、重开与超时升级的完整经过）和服务质量数据（服务规范检查、销售额、"
        "型号销量、指标目标、改进措施与指标预汇总），以及培训记录与六个已发布的月度绩效考核周期。"
        f"演示登录（密码均为 {DEMO_PASSWORD}）：admin, hq_manager, centre_manager, outlet_manager, agent, "
        "dispatcher, technician, quality, trainer, customer。"
        "Loads deterministic demo data, with six months of work orders, their quality data, a training history "
        "and six published monthly appraisal cycles. Demo log-ins (password demo1234): "
        "admin, hq_manager, centre_manager, outlet_manager, agent, dispatcher, technician, quality, trainer, "
        "customer. Refuses a non-empty "
        "database unless --reset (which deletes the organisation, catalogue, staff, customer file and the demo "
        "users; the audit trail is kept)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1, help="随机种子（同一种子生成相同数据）")
        parser.add_argument("--customers", type=int, default=20000, help="客户数（默认 20000）")
        parser.add_argument("--units", type=int, default=30000, help="产品（机器）数（默认 30000）")
        parser.add_argument("--orders", type=int, default=None,
                            help="近六个月的工单数（默认按产品数折算：30000 台对应 150000 张）")
        parser.add_argument("--reset", action="store_true", help="先删除已有的演示数据（审计记录保留）")
        parser.add_argument("--if-empty", action="store_true",
                            help="已有组织节点时什么也不做并以 0 退出（供 make run 使用）")

    def handle(self, *args, seed, customers, units, reset, if_empty, orders=None, **opts):
        if if_empty and Node.objects.exists():
            if opts.get("verbosity", 1) >= 1:
                self.stdout.write("数据库已有数据，未重新载入演示数据。 The database has data: demo not reloaded.")
                self.print_logins()
            return
        if customers < 1 or units < 0:
            raise CommandError("--customers 至少为 1，--units 不能为负数。")
        if orders is not None and orders < 0:
            raise CommandError("--orders 不能为负数。")
        verbose = opts.get("verbosity", 1) >= 1
        stream = self.stderr if verbose else None
        started = time.perf_counter()
        with translation.override("zh-hans"), bulk_load_journal():
            try:
                with transaction.atomic():
                    if has_domain_data():
                        if not reset:
                            raise CommandError(
                                "数据库中已有数据（组织、产品、客户或演示账号）。使用 --reset 删除演示数据后重新载入，"
                                "或使用 --if-empty。 The database is not empty: use --reset."
                            )
                        demo_reset(stream)
                    loader = DemoLoader(seed=seed, customers=customers, units=units,
                                        today=timezone.localdate(), progress_stream=stream)
                    loader.run()
                    history = build_order_history(
                        orders=orders_for_units(units) if orders is None else orders, seed=seed, today=loader.today,
                        now=timezone.now(), progress_stream=stream)
                    for label, n in history.counts.items():
                        loader.counts[label] = loader.counts.get(label, 0) + n
                    more = [build_parts(seed=seed, today=loader.today, now=timezone.now(), progress_stream=stream)]
                    for build in (assets_demo.build, charges_demo.build, quality_demo.build, staff_demo.build):
                        more.append(build(seed=seed, today=loader.today, progress_stream=stream))
                    for counts in more:
                        for label, n in (counts or {}).items():
                            loader.counts[label] = loader.counts.get(label, 0) + n
            except (ProtectedError, RestrictedError) as e:
                blocked = sorted({o._meta.verbose_name for o in list(e.args[1])[:50]}) if len(e.args) > 1 else []
                raise CommandError(f"无法清除演示数据：仍有其他数据引用它们（{'、'.join(map(str, blocked))}）。") from e
            elapsed = time.perf_counter() - started
            if not verbose:
                return
            out = self.stdout
            out.write("")
            for label, n in loader.counts.items():
                out.write(f"  {label:<32} {n:>8}")
            out.write(self.style.SUCCESS(f"演示数据已载入（seed={seed}），用时 {elapsed:.1f} 秒。"))
            out.write("")
            self.print_logins()

    def print_logins(self) -> None:
        """The demo log-ins as they are in the database (one per role)."""
        order = {u: i for i, u in enumerate(LOGIN_USERNAMES)}
        found = RoleAssignment.objects.filter(user__username__in=LOGIN_USERNAMES).select_related("user", "node")
        rows = [("角色 role", "用户名 user", "密码 password", "节点 node")]
        for ra in sorted(found, key=lambda r: order[r.user.username]):
            rows.append((str(Role(ra.role).label), ra.user.username, DEMO_PASSWORD, ra.node.name))
        if len(rows) == 1:
            return
        self.stdout.write("演示登录 / demo log-ins:")
        for line in _table(rows):
            self.stdout.write("  " + line)
