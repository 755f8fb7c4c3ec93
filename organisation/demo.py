"""A realistic, fictional demo region for trying the product and for tests."""
from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from organisation import services
from organisation.models import (
    DepartmentKind as DK,
)
from organisation.models import (
    InstitutionCategory,
    InstitutionGrade,
    InstitutionLevel,
    Region,
    RegionLevel,
    Role,
)
from organisation.models import (
    TouchpointKind as TK,
)

DEMO_PASSWORD = "Demo2026tingjian"
DEMO_REGION_CODE = "519900"

HOSPITAL_DEPARTMENTS = [
    # code, name, kind, parent code
    ("MZB", "门诊部", DK.ADMINISTRATIVE, None),
    ("NK", "内科", DK.CLINICAL, None),
    ("XNK", "心血管内科", DK.CLINICAL, "NK"),
    ("XHNK", "消化内科", DK.CLINICAL, "NK"),
    ("HXNK", "呼吸与危重症医学科", DK.CLINICAL, "NK"),
    ("WK", "外科", DK.CLINICAL, None),
    ("PWK", "普通外科", DK.CLINICAL, "WK"),
    ("GK", "骨科", DK.CLINICAL, "WK"),
    ("FCK", "妇产科", DK.CLINICAL, None),
    ("EK", "儿科", DK.CLINICAL, None),
    ("JZK", "急诊科", DK.CLINICAL, None),
    ("JYK", "检验科", DK.MEDICAL_TECH, None),
    ("FSK", "放射科", DK.MEDICAL_TECH, None),
    ("YJK", "药剂科", DK.MEDICAL_TECH, None),
    ("CWK", "财务科", DK.ADMINISTRATIVE, None),
    ("RYGL", "住院服务中心", DK.ADMINISTRATIVE, None),
    ("YWK", "医务科", DK.ADMINISTRATIVE, None),
    ("HLB", "护理部", DK.ADMINISTRATIVE, None),
    ("KFZX", "患者服务中心", DK.ADMINISTRATIVE, None),
    ("ZWK", "总务科", DK.ADMINISTRATIVE, None),
    ("BWK", "保卫科", DK.ADMINISTRATIVE, None),
]

HOSPITAL_TOUCHPOINTS = [
    # code, name, kind, department code, location
    ("W-GH-01", "门诊挂号收费 1 号窗口", TK.WINDOW, "CWK", "门诊楼一层大厅"),
    ("W-GH-02", "门诊挂号收费 2 号窗口", TK.WINDOW, "CWK", "门诊楼一层大厅"),
    ("W-GH-03", "门诊挂号收费 3 号窗口", TK.WINDOW, "CWK", "门诊楼一层大厅"),
    ("W-YF-01", "门诊西药房窗口", TK.WINDOW, "YJK", "门诊楼一层西侧"),
    ("W-CX-01", "检验采血窗口", TK.WINDOW, "JYK", "门诊楼二层"),
    ("W-FS-01", "放射科登记窗口", TK.WINDOW, "FSK", "医技楼一层"),
    ("W-RY-01", "入院办理窗口", TK.WINDOW, "RYGL", "住院楼一层"),
    ("D-CY-01", "出院结算窗口", TK.DISCHARGE, "RYGL", "住院楼一层"),
    ("C-EK-01", "儿科门诊", TK.CLINIC, "EK", "门诊楼三层"),
    ("C-JZ-01", "急诊诊区", TK.CLINIC, "JZK", "急诊楼一层"),
    ("B-XNK", "心血管内科病区", TK.WARD, "XNK", "住院楼八层"),
    ("B-XHNK", "消化内科病区", TK.WARD, "XHNK", "住院楼九层"),
    ("B-PWK", "普通外科病区", TK.WARD, "PWK", "住院楼十层"),
    ("B-GK", "骨科病区", TK.WARD, "GK", "住院楼十一层"),
    ("B-FCK", "妇产科病区", TK.WARD, "FCK", "住院楼五层"),
]

TCM_DEPARTMENTS = [
    ("ZYNK", "中医内科", DK.CLINICAL, None),
    ("ZJK", "针灸推拿科", DK.CLINICAL, None),
    ("ZYGS", "中医骨伤科", DK.CLINICAL, None),
    ("ZYFK", "中医妇科", DK.CLINICAL, None),
    ("ZYF", "中药房", DK.MEDICAL_TECH, None),
    ("JYK", "检验科", DK.MEDICAL_TECH, None),
    ("CWK", "财务科", DK.ADMINISTRATIVE, None),
    ("YWK", "医务科", DK.ADMINISTRATIVE, None),
    ("HLB", "护理部", DK.ADMINISTRATIVE, None),
    ("ZWK", "总务科", DK.ADMINISTRATIVE, None),
]

TCM_TOUCHPOINTS = [
    ("W-GH-01", "挂号收费窗口", TK.WINDOW, "CWK", "门诊楼一层"),
    ("W-ZYF-01", "中药房取药窗口", TK.WINDOW, "ZYF", "门诊楼一层"),
    ("D-CY-01", "出院结算窗口", TK.DISCHARGE, "CWK", "住院楼一层"),
    ("C-ZJ-01", "针灸治疗室", TK.CLINIC, "ZJK", "门诊楼二层"),
    ("B-ZYNK", "中医内科病区", TK.WARD, "ZYNK", "住院楼三层"),
    ("B-ZYGS", "中医骨伤科病区", TK.WARD, "ZYGS", "住院楼四层"),
]

COMMUNITY_DEPARTMENTS = [
    ("QK", "全科诊室", DK.CLINICAL, None),
    ("YFBJ", "预防保健科", DK.CLINICAL, None),
    ("YF", "药房", DK.MEDICAL_TECH, None),
    ("ZHB", "综合办公室", DK.ADMINISTRATIVE, None),
]

COMMUNITY_TOUCHPOINTS = [
    ("W-SF-01", "收费取药窗口", TK.WINDOW, "YF", "一层大厅"),
    ("C-QK-01", "全科诊室", TK.CLINIC, "QK", "一层"),
    ("C-YM-01", "预防接种门诊", TK.CLINIC, "YFBJ", "二层"),
]

INSTITUTIONS = [
    # key, name, short, registration code, level, grade, category, region key, departments, touchpoints,
    # handler departments
    ("rmyy", "锦江示范市第一人民医院", "示范一院", "DEMO-510104-001", InstitutionLevel.TERTIARY,
     InstitutionGrade.A, InstitutionCategory.GENERAL, "district", HOSPITAL_DEPARTMENTS, HOSPITAL_TOUCHPOINTS,
     ["XNK", "CWK"]),
    ("zyy", "锦江示范区中医医院", "示范中医院", "DEMO-510104-002", InstitutionLevel.SECONDARY,
     InstitutionGrade.A, InstitutionCategory.TCM, "district", TCM_DEPARTMENTS, TCM_TOUCHPOINTS, ["ZYNK"]),
    ("sq", "锦江示范区东风社区卫生服务中心", "东风社区", "DEMO-510104-003", InstitutionLevel.GRASSROOTS,
     InstitutionGrade.UNGRADED, InstitutionCategory.COMMUNITY, "district", COMMUNITY_DEPARTMENTS,
     COMMUNITY_TOUCHPOINTS, ["QK"]),
]

STAFF_ROLES = [
    ("admin", "机构管理员", [Role.INSTITUTION_ADMIN]),
    ("officer", "投诉专员", [Role.COMPLAINT_OFFICER]),
    ("handler", "科室负责人", [Role.DEPARTMENT_HANDLER]),
    ("nurse", "随访护士", [Role.FOLLOWUP_NURSE]),
    ("leader", "分管院长", [Role.LEADERSHIP]),
]


def is_loaded() -> bool:
    return db.session.scalar(select(Region.id).where(Region.code == DEMO_REGION_CODE)) is not None


def seed(password: str) -> list[tuple[str, str, str]]:
    """Create the demo region; returns (username, role, where) for every account."""
    actor = "seed-demo"
    province = services.create_region(code=DEMO_REGION_CODE, name="示范省", level=RegionLevel.PROVINCE.value,
                                      parent=None, actor=actor)
    city = services.create_region(code="519901", name="锦江示范市", level=RegionLevel.CITY.value, parent=province,
                                  actor=actor)
    district = services.create_region(code="519902", name="锦江示范区", level=RegionLevel.COUNTY.value, parent=city,
                                      actor=actor)
    regions = {"province": province, "city": city, "district": district}
    accounts: list[tuple[str, str, str]] = []

    def account(username, name, roles, **where):
        user, _ = services.create_staff(username=username, display_name=name, roles=roles, password=password,
                                        actor=actor, **where)
        user.must_change_password = False  # demo accounts are meant to be tried at once
        label = (where.get("institution") or where.get("region"))
        accounts.append((username, ", ".join(str(Role(r).value) for r in roles), label.name if label else "-"))
        return user

    account("platform", "平台管理员", [Role.PLATFORM_ADMIN])
    account("region", "市卫健委管理员", [Role.REGIONAL_ADMIN], region=city)
    for key, name, short, code, level, grade, category, region_key, deps, points, handler_deps in INSTITUTIONS:
        institution = services.create_institution(
            actor=actor, name=name, short_name=short, registration_code=code, level=level.value,
            grade=grade.value, category=category.value, region_id=regions[region_key].id)
        by_code = {}
        for dep_code, dep_name, kind, parent in deps:
            by_code[dep_code] = services.create_department(
                institution, code=dep_code, name=dep_name, kind=kind.value,
                parent=by_code.get(parent) if parent else None, actor=actor)
        for tp_code, tp_name, kind, dep_code, location in points:
            services.create_touchpoint(institution, code=tp_code, name=tp_name, kind=kind.value,
                                       department=by_code[dep_code], location=location, actor=actor)
        for suffix, title, roles in STAFF_ROLES:
            departments = [by_code[c] for c in handler_deps] if Role.DEPARTMENT_HANDLER in roles else []
            account(f"{key}-{suffix}", title, roles, institution=institution, departments=departments)
    return accounts
