"""Demo complaints: a living complaint office for `flask seed-demo`, and 100,000 cases for the benchmark.

Seed 004 asks for "一体化患者投诉服务中心 … 健全并落实患者投诉、接待、受理、处理、反馈制度，
规范处理程序，建立医患矛盾纠纷事件台账管理制度"; the demo fills that office with plausible
cases from every channel and category, in every status, with their timeline, departments,
replies, feedback, rectifications (整改) and refunds, so that the queues, case pages, the
ledger and the statistics have something true-looking to show.

Cases are simulated one by one (receipt → acceptance → routing → reply draft → approval →
sending → closing → feedback, each step at a plausible working-hour time) and cut at
``now``: whatever would happen later has not happened yet, so recent cases are still open and
a few old ones are overdue. Deadlines are counted with complaints.deadlines (the official
calendar, the day of receipt not counted).

They are written with bulk inserts, not through the services (which audit and notify per
case): COPY on PostgreSQL, executemany elsewhere. Case numbers follow the intake's format
and the per-institution counters are moved past them, so that cases registered later keep
counting from there. Complainants are invented (names and phone numbers are not real).
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Table, func, select

from complaints import deadlines
from complaints.models import (
    CaseCounter,
    CaseDepartment,
    CaseEvent,
    CasePause,
    Complaint,
    ComplaintSettings,
    DeclineReason,
    Feedback,
    Rectification,
    Refund,
    Reply,
    Status,
)
from core.db import utcnow
from core.extensions import db
from core.i18n import local_timezone
from organisation.models import Department, Institution, Role, StaffRole, StaffUser, Touchpoint

try:  # the complaints' concerned departments (涉及科室), when the intake's table exists
    from complaints.models.cases import complaint_concerned_department as CONCERNED
except ImportError:  # pragma: no cover - older model
    CONCERNED = None

ACTOR = "seed-demo"


# What patients complain about ------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    subject: str
    description: str
    wish: str
    departments: tuple[str, ...]     # department codes, most likely first
    touchpoint: str | None = None
    measure: str = ""                # what the hospital did (reply and rectification)


TEMPLATES: dict[str, list[Template]] = {
    "attitude": [
        Template("挂号窗口工作人员态度生硬", "上午九点多在门诊挂号收费窗口咨询医保报销流程，工作人员很不耐烦，问了两遍就说“自己看墙上”，"
                 "感觉很不被尊重。", "希望窗口人员改进服务态度，并给我一个解释。", ("CWK", "MZB"), "W-GH-01",
                 "对当事窗口人员进行批评教育，组织收费窗口开展文明用语和医保政策培训"),
        Template("夜班护士呼叫后迟迟不来，语气很冲", "父亲住院期间晚上输液快完了，按呼叫铃二十多分钟才有护士过来，来了以后还说“催什么催”。",
                 "希望护理部加强教育，改善夜班服务。", ("HLB", "XNK", "XHNK", "PWK", "GK"), None,
                 "护理部约谈当班护士，调整夜班人力排班，病区开展呼叫响应时间专项检查"),
        Template("儿科医生问诊太快，不解释病情", "孩子发烧带到儿科门诊，医生看了不到两分钟就开了化验单，问孩子情况严不严重也不回答。",
                 "希望医生能耐心解释病情和用药。", ("EK",), "C-EK-01", "科室组织医患沟通培训，门诊增加高峰时段出诊医生"),
        Template("药房发药不交代用法用量", "在门诊西药房取药，工作人员把药往窗口一放就叫下一个，没有交代用法，回家发现两种药不知道怎么吃。",
                 "希望药房发药时说明用法用量。", ("YJK",), "W-YF-01", "药房落实发药交代制度，增设用药咨询窗口"),
        Template("出院结算来回跑了三趟", "办理出院结算时窗口说资料不全，让回病区补，病区又让回窗口，来回跑了三趟，老人在大厅等了两个多小时。",
                 "希望一次性告知所需材料，不要推诿。", ("RYGL", "CWK"), "D-CY-01",
                 "出院结算实行一次性告知清单，病区与结算窗口建立材料交接核对机制"),
        Template("导诊人员指路不耐烦", "第一次来医院不熟悉，问导诊台放射科在哪，工作人员头也没抬随手一指。",
                 "希望导诊人员热情一些。", ("MZB",), None, "门诊部对导诊人员进行服务规范培训并纳入月度考核"),
    ],
    "charges": [
        Template("住院费用清单有重复收费", "出院后核对费用清单，发现同一天的静脉输液费收了两次，护理费也比实际住院天数多一天。",
                 "请核实并退还多收的费用。", ("CWK", "RYGL"), "D-CY-01", "财务科逐项核对住院费用，退还重复收取的费用，并对计费人员进行培训"),
        Template("CT 检查费用与告知的不一致", "做 CT 前医生说三百多元，缴费时却收了五百多，窗口说是增强检查，但医生没有告诉我要做增强。",
                 "希望说明收费依据，多收的退还。", ("FSK", "CWK"), "W-FS-01", "放射科落实检查项目及费用事前告知，财务科复核收费"),
        Template("医保报销比例比上次低很多", "这次住院医保报销的比例比上次低很多，窗口解释不清楚，只说是系统算的。",
                 "希望给出详细的报销明细和解释。", ("CWK",), "W-GH-02", "医保办提供费用结算明细并逐项解释，窗口增设医保政策咨询"),
        Template("取消检查后退费迟迟未到账", "检查取消后申请了退费，已经过去两周还没到账，打电话询问也没人说得清楚。",
                 "尽快办理退费。", ("CWK",), None, "财务科优化退费流程，退费办理时限压缩至 3 个工作日，并短信告知进度"),
        Template("药品价格比药店贵", "同样的药在医院买比外面药店贵了十几块钱，怀疑乱收费。", "希望核实药品价格。", ("YJK", "CWK"), "W-YF-01",
                 "药剂科核对药品价格执行情况，向患者说明集中采购价格政策"),
    ],
    "quality_safety": [
        Template("术后伤口感染，换药不及时", "父亲在普外科做完手术后第五天伤口红肿流脓，换药不及时，担心感染扩散。",
                 "请尽快组织会诊处理，并说明原因。", ("PWK", "YWK"), "B-PWK", "医务科组织会诊调整治疗方案，科室开展术后切口管理质控检查"),
        Template("两次化验结果相差很大", "同一天抽血化验两次，血糖结果相差很大，第一次的报告明显有问题，医生据此加了药量。",
                 "请核查检验流程，给出说法。", ("JYK", "YWK"), "W-CX-01", "检验科复核标本和仪器质控记录，完善异常结果复检制度"),
        Template("输液后过敏，医生半小时才到", "输液后全身起疹子，叫了护士半小时医生才来处理，非常担心。", "要求查明原因，加强用药观察。",
                 ("XNK", "HLB", "YWK"), "B-XNK", "科室对用药不良反应处置流程进行复盘，加强输液巡视"),
        Template("急诊胸痛等了一个多小时", "老人胸痛到急诊，分诊后等了一个多小时才看上医生，期间病情加重。",
                 "希望急诊改进分诊和候诊管理。", ("JZK", "YWK"), "C-JZ-01", "急诊科落实胸痛患者优先分诊，高峰时段增派医生"),
        Template("骨科术后康复指导不到位", "母亲骨科术后出院时没有人讲康复注意事项，回家后不敢下地，又回来复诊两次。",
                 "希望加强出院指导。", ("GK", "HLB"), "B-GK", "病区完善出院康复指导单，出院前由责任护士逐项讲解"),
    ],
    "environment": [
        Template("病区卫生间不干净有异味", "住院楼卫生间地面湿滑，垃圾桶满了也没人清理，味道很大。", "希望增加保洁频次。", ("ZWK",), None,
                 "总务科督促保洁公司增加巡查保洁频次，并在卫生间张贴保洁记录"),
        Template("排队进停车场排了一个小时", "周一上午送老人来看病，排队进停车场排了一个小时，错过了预约时间。",
                 "希望改善停车管理，增加临时车位。", ("ZWK", "BWK"), None, "高峰时段增派车辆疏导人员，开放临时停车区"),
        Template("住院餐饭菜是凉的", "住院期间饭菜送到就是凉的，一周都是同样几个菜，老人吃不下。", "希望改进膳食质量。", ("ZWK",), None,
                 "营养食堂更换保温餐车，调整菜谱每周轮换"),
        Template("门诊电梯一周坏了两次", "门诊楼电梯这周坏了两次，老人只能爬楼梯上三楼。", "尽快维修，保障老人出行。", ("ZWK",), None,
                 "联系维保单位全面检修电梯，故障期间安排专人引导老人使用备用电梯"),
        Template("自助机经常故障，没有人指导", "挂号自助机总是卡住，旁边没有工作人员指导，只能回到人工窗口重新排队。",
                 "希望安排人员指导并及时维修。", ("MZB", "ZWK"), None, "门诊大厅安排志愿者指导自助机使用，建立故障报修响应机制"),
    ],
    "ethics": [
        Template("医生让到院外指定药店买药", "医生开完处方后让到医院外面某药店买药，说那里有货，怀疑有利益关系。", "请调查核实。",
                 ("YWK",), None, "医务科调查核实，重申禁止指定院外购药的规定"),
        Template("检查排队时有人被带着插队", "排队做 B 超时，看到有人被工作人员直接带进去插队，排队的人都很有意见。",
                 "希望公平对待每位患者。", ("FSK", "MZB"), None, "医技科室实行叫号系统排队，禁止人为插队，设立监督电话"),
        Template("怀疑有工作人员收受患者家属财物", "看到有工作人员收了病人家属送的购物卡，风气不好。", "希望医院严肃处理。", ("YWK",), None,
                 "纪检部门调查核实，开展医德医风专题教育"),
    ],
    "security": [
        Template("夜间病房有陌生人进出推销", "晚上病房有陌生人进来推销保健品，还翻看床头柜，很不安全。", "加强病区门禁管理。", ("BWK",),
                 None, "保卫科加强夜间巡查，病区落实门禁和探视登记"),
        Template("电动车在医院门口被盗", "停在医院门口的电动车被盗，保安说监控看不清。", "希望调取监控并加强巡逻。", ("BWK",), None,
                 "保卫科配合公安机关调取监控，增设停车区监控探头"),
    ],
    "other": [
        Template("专家号太难挂", "网上预约专家号一放号就没了，现场也挂不到，跑了三次都没看上。", "希望增加号源。", ("MZB",), None,
                 "门诊部调整专家出诊安排，增加号源并预留部分现场号"),
        Template("检验报告手机上查不到", "化验报告要到医院现场自助机打印，手机上查不到，外地来看病很不方便。", "希望开通线上查询。",
                 ("JYK", "MZB"), None, "信息科开通微信公众号检验报告查询"),
        Template("门诊标识不清楚，找科室找了很久", "门诊楼标识不清楚，找放射科找了二十多分钟。", "希望完善导诊标识。", ("MZB",), None,
                 "门诊部全面梳理导视标识，增设楼层指引"),
    ],
}

CATEGORY_WEIGHTS = {"attitude": 30, "charges": 16, "quality_safety": 12, "environment": 16, "ethics": 5,
                    "security": 4, "other": 12}
CHANNEL_WEIGHTS = {"walk_in": 24, "phone": 24, "self_service": 20, "hotline_12345": 12, "letter": 4, "email": 5,
                   "survey_alert": 11}
DECLINE_WEIGHTS = {DeclineReason.REPEATED: 35, DeclineReason.IN_MEDIATION: 20, DeclineReason.IN_COURT: 15,
                   DeclineReason.BEFORE_AUTHORITY: 15, DeclineReason.NO_SUBJECT: 12, DeclineReason.CRIMINAL: 3}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国兰玉红梅志文斌海燕颖凤鹏宇欣怡浩然子涵雨轩晨"
SATISFACTION_WEIGHTS = {"satisfied": 55, "basically": 30, "unsatisfied": 15}


# The institution's people and places ---------------------------------------------------

@dataclass
class Office:
    """Who works the complaints of one institution, and where cases can go."""

    institution: Institution
    prefix: str
    departments: dict[str, int]           # code -> id
    clinical: list[int]
    touchpoints: dict[str, int]
    categories: dict[str, int]            # category code -> id
    officer: tuple[int | None, str]
    reviewer: tuple[int | None, str]      # approves what the officer drafted (someone else)
    handler: tuple[int | None, str]
    handler_departments: set[int]

    def department_for(self, template: Template, rng: random.Random) -> int:
        present = [self.departments[c] for c in template.departments if c in self.departments]
        if present and rng.random() < 0.85:
            return present[0] if rng.random() < 0.7 else rng.choice(present)
        return rng.choice(self.clinical or list(self.departments.values()))

    def drafter(self, department_id: int) -> tuple[int | None, str]:
        return self.handler if department_id in self.handler_departments and self.handler[0] else self.officer


def _staff_with(institution: Institution, *roles: Role) -> list[StaffUser]:
    return list(db.session.scalars(
        select(StaffUser).join(StaffRole, StaffRole.staff_id == StaffUser.id)
        .where(StaffUser.institution_id == institution.id, StaffUser.active.is_(True), StaffRole.role.in_(roles))
        .order_by(StaffUser.id)).unique())


def office_for(institution: Institution) -> Office:
    from complaints.intake import default_categories

    categories = {c.code: c.id for c in default_categories(actor=ACTOR)}
    departments = {d.code: d.id for d in db.session.scalars(
        select(Department).where(Department.institution_id == institution.id, Department.active.is_(True)))}
    clinical = [d.id for d in db.session.scalars(
        select(Department).where(Department.institution_id == institution.id, Department.active.is_(True),
                                 Department.kind == "clinical"))]
    touchpoints = {t.code: t.id for t in db.session.scalars(
        select(Touchpoint).where(Touchpoint.institution_id == institution.id, Touchpoint.active.is_(True)))}
    officers = _staff_with(institution, Role.COMPLAINT_OFFICER) + _staff_with(institution, Role.INSTITUTION_ADMIN)
    handlers = _staff_with(institution, Role.DEPARTMENT_HANDLER)
    officer = (officers[0].id, officers[0].username) if officers else (None, ACTOR)
    reviewer = next(((u.id, u.username) for u in officers if u.id != officer[0]), officer)
    handler = (handlers[0].id, handlers[0].username) if handlers else (None, ACTOR)
    settings = db.session.get(ComplaintSettings, institution.id)
    return Office(institution, (settings.case_prefix if settings else "") or "TS", departments, clinical,
                  touchpoints, categories, officer, reviewer, handler,
                  set(handlers[0].department_ids) if handlers else set())


# One simulated case ----------------------------------------------------------------------

@dataclass
class Case:
    values: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    departments: list[dict[str, Any]] = field(default_factory=list)
    concerned: list[int] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    rectifications: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    pauses: list[dict[str, Any]] = field(default_factory=list)


class _Later(Exception):
    """The next step of a case would happen after ``now``: the simulation stops there."""


def _weighted(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _phone(rng: random.Random) -> str:
    return rng.choice(("139", "138", "137", "136", "135", "158", "159", "188", "187", "186", "177", "199")) + \
        f"{rng.randrange(10**8):08d}"


def _local(day: date, hour: float) -> datetime:
    tz = local_timezone()
    return (datetime.combine(day, time.min, tzinfo=tz) + timedelta(hours=hour)).astimezone(UTC)


def _working_day(day: date, n: int) -> date:
    return deadlines.add_working_days(day, n)[0]


def _due(received_at: datetime, days: int, rule: str, *, trace: bool,
         pauses: list[tuple[datetime, datetime | None]] = (), now: datetime | None = None) -> dict[str, Any]:
    """The deadline columns: with the full trace for the demo, just the dates for the benchmark's bulk."""
    if trace:
        d = deadlines.compute_deadline(received_at, days, rule=rule, pauses=pauses, now=now)
        return {"due_date": d.due_date, "due_at": d.due_at, "deadline_provisional": d.provisional,
                "deadline_trace": d.to_json(), "deadline_rule": rule, "working_days": days}
    due_date, provisional = deadlines.add_working_days(received_at.astimezone(local_timezone()).date(), days)
    due_at = (datetime.combine(due_date, time.min, tzinfo=local_timezone()) + timedelta(days=1)).astimezone(
        UTC)
    return {"due_date": due_date, "due_at": due_at, "deadline_provisional": provisional, "deadline_trace": {},
            "deadline_rule": rule, "working_days": days}


def reply_body(template: Template, institution: Institution) -> str:
    return (f"您好！关于您反映的“{template.subject}”一事，{institution.name}高度重视，投诉管理部门已会同相关科室调查核实。"
            f"经核实，您反映的情况基本属实，我们向您致以诚挚的歉意。针对该问题，医院已{template.measure or '进行整改'}。"
            "感谢您对我院工作的监督和支持，如有其他意见和建议，欢迎随时联系患者服务中心。")


HOLD_RECENT = (Status.REGISTERED.value, Status.ACCEPTED.value, Status.IN_HANDLING.value, Status.TRANSFERRED.value,
               Status.REPLY_DRAFTED.value, Status.REPLY_APPROVED.value, Status.REPLIED.value)


def pick_hold(rng: random.Random, received_at: datetime, now: datetime) -> str | None:
    """Some cases stop at a given status (the desk's work in hand): recent ones anywhere, older ones reopened."""
    age = (now - received_at).days
    if age <= 12 and rng.random() < 0.45:
        return rng.choice(HOLD_RECENT)
    if 20 <= age <= 60 and rng.random() < 0.03:
        return Status.REOPENED.value
    return None


def simulate(rng: random.Random, office: Office, received_at: datetime, now: datetime, *,
             trace: bool = True, phones: list[str] | None = None, hold: str | None = None) -> Case:
    """One case from receipt to wherever it has got by ``now`` (or to the status ``hold``, if it gets there)."""
    category = _weighted(rng, CATEGORY_WEIGHTS)
    template = rng.choice(TEMPLATES[category])
    channel = _weighted(rng, CHANNEL_WEIGHTS)
    lead = office.department_for(template, rng)
    if phones and rng.random() < 0.08:
        phone = rng.choice(phones[-40:])  # a repeat complainant: the same number again, soon after
    else:
        phone = _phone(rng) if rng.random() < 0.92 else None
        if phone and phones is not None:
            phones.append(phone)
    officer_id, officer_label = office.officer
    values: dict[str, Any] = {
        "institution_id": office.institution.id, "channel": channel,
        "channel_ref": f"12345-{received_at:%Y%m%d}{rng.randrange(10**5):05d}" if channel == "hotline_12345" else "",
        "received_at": received_at,
        "first_contact_id": None if channel in ("self_service", "survey_alert") else officer_id,
        "category_id": office.categories.get(category),
        "touchpoint_id": office.touchpoints.get(template.touchpoint) if template.touchpoint else None,
        "subject": template.subject, "description": template.description, "wish": template.wish,
        "staff_involved": "", "complainant_name": _person(rng), "complainant_phone": phone,
        "complainant_relation": "self" if rng.random() < 0.7 else "family", "status": Status.REGISTERED.value,
        "lead_department_id": None, "safety_emergency": category == "quality_safety" and rng.random() < 0.3,
        "decline_reason": None, "decline_notice": "", "settlement_note": "", "deadline_rule": None,
        "working_days": None, "due_at": None, "due_date": None, "deadline_provisional": False, "deadline_trace": {},
        "paused_since": None, "pause_reason": None, "first_response_at": None, "replied_at": None,
        "closed_at": None, "resolved": None, "satisfaction": None, "reopened_count": 0, "lookup_code_hash": "",
        "version": 1, "created_at": received_at, "updated_at": received_at,
    }
    # A simulated emergency was notified when it happened: the notice sweep owes it nothing.
    values["emergency_notified_at"] = received_at if values["safety_emergency"] else None
    case = Case(values)
    case.concerned.append(lead)
    tz = local_timezone()
    state: dict[str, Any] = {"status": Status.REGISTERED.value, "at": received_at,
                             "held": hold == Status.REGISTERED.value}

    def step(at: datetime, action: str, to: str | None = None, *, actor=office.officer, note: str = "",
             data: dict[str, Any] | None = None) -> datetime:
        if at > now or (to and state["held"]):
            raise _Later
        before = state["status"]
        if to:
            state["status"] = to
            state["held"] = to == hold
        state["at"] = at
        case.events.append({"at": at, "actor_id": actor[0], "actor_label": actor[1], "action": action,
                            "from_status": before if to else None, "to_status": to, "note": note,
                            "data": data or {}})
        return at

    def later(at: datetime, low_hours: float, high_hours: float) -> datetime:
        """Some hours after ``at``, moved into office hours (staff act by day; complainants at any time)."""
        moved = (at + timedelta(hours=rng.uniform(low_hours, high_hours))).astimezone(tz)
        if moved.hour < 8:
            moved = moved.replace(hour=8, minute=rng.randrange(60))
        elif moved.hour >= 18:
            moved = (moved + timedelta(days=1)).replace(hour=8, minute=rng.randrange(60))
        return moved.astimezone(UTC)

    def on_working_day(day: date, low: float = 8.5, high: float = 17.0) -> datetime:
        return _local(day, rng.uniform(low, high))

    try:
        step(received_at, "registered", data={"channel": channel, "category": category})
        kind = rng.random() if hold is None else 1.0
        if kind < 0.05:  # declined (不予受理): a legal reason and the notice
            reason = _weighted(rng, DECLINE_WEIGHTS)
            at = step(later(received_at, 0.5, 20), "decline", Status.DECLINED.value, note=str(reason.label),
                      data={"reason": reason.value})
            values.update(decline_reason=reason.value, decline_notice=_decline_notice(reason), first_response_at=at,
                          closed_at=at)
            return _finish(case, state)
        if kind < 0.17:  # settled on the spot (当场办结)
            at = step(received_at + timedelta(minutes=rng.uniform(10, 50)), "settle", Status.SETTLED.value, note="当场向投诉人解释并致歉，投诉人表示理解。")
            values.update(settlement_note="当场核实情况，向投诉人解释并致歉，投诉人表示理解，不再追究。",
                          first_response_at=at, replied_at=at, closed_at=at, resolved=True)
            return _finish(case, state)

        complex_case = rng.random() < 0.15
        co = None
        if complex_case:
            others = [d for d in office.departments.values() if d != lead]
            co = rng.choice(others) if others else None
            complex_case = co is not None
        days = 10 if complex_case else 5
        rule = "complex" if complex_case else "standard"
        accepted = step(later(received_at, 0.3, 20), "accept", Status.ACCEPTED.value)
        values.update(_due(received_at, days, rule, trace=trace, now=now))
        step(accepted, "deadline_set", note=f"办理期限：{values['due_date'].isoformat()}（{days} 个工作日）",
             data={"due_date": values["due_date"].isoformat(), "rule": rule})
        assigned = later(accepted, 0.2, 12)
        wrong = None
        if rng.random() < 0.07 or hold == Status.TRANSFERRED.value:  # first routed elsewhere, then transferred
            wrong = rng.choice([d for d in office.departments.values() if d not in (lead, co)] or [None])
        first = wrong or lead
        step(assigned, "assign", Status.IN_HANDLING.value, data={"department": first})
        values["lead_department_id"] = first
        case.departments.append({"department_id": first, "role": "lead", "assigned_at": assigned,
                                 "due_at": values["due_at"], "active": True})
        receipt_day = received_at.astimezone(tz).date()
        if co is not None:
            case.concerned.append(co)
            co_due = _local(_working_day(receipt_day, 6), 24)
            co_row = {"department_id": co, "role": "co", "assigned_at": assigned, "due_at": co_due, "active": True}
            case.departments.append(co_row)
        if wrong is not None:
            transferred = step(later(assigned, 2, 24), "transfer", Status.TRANSFERRED.value,
                               actor=office.drafter(wrong), note="非本科室职责范围，申请转办。",
                               data={"from": wrong, "to": lead})
            case.departments[0]["active"] = False
            case.departments.append({"department_id": lead, "role": "lead", "assigned_at": transferred,
                                     "due_at": values["due_at"], "active": True})
            values["lead_department_id"] = lead
            step(later(transferred, 1, 30), "receive", Status.IN_HANDLING.value, actor=office.drafter(lead),
                 note="已接收转办。")
        if co is not None:
            answered = on_working_day(_working_day(receipt_day, rng.randint(2, 6)))
            if answered <= now:
                co_row.update(answer="本科室已配合调查，相关情况已书面反馈主办科室。", answered_at=answered,
                              answered_by_id=office.officer[0])
        # When the reply is drafted: mostly within the deadline, some late.
        late = rng.random() < 0.12 and hold is None
        # A case held at a later status must get there: its reply comes within three working days.
        soon = rng.randint(1, 3) if hold is not None else rng.randint(1, days - 1)
        reply_day = _working_day(receipt_day, days + rng.randint(1, 4) if late else soon)
        drafter = office.drafter(lead)
        reviewer = office.reviewer if drafter == office.officer else office.officer
        drafted = max(on_working_day(reply_day, 8.5, 14), state["at"] + timedelta(minutes=30))
        if drafted > now and state["status"] == Status.IN_HANDLING.value and rng.random() < 0.1:
            _pause(case, rng, state["at"], now, received_at, days, rule, trace)
        number = 1
        body = reply_body(template, office.institution)
        if rng.random() < 0.1 and hold != Status.REPLY_DRAFTED.value:  # the first draft goes back
            step(drafted, "draft_reply", Status.REPLY_DRAFTED.value, actor=drafter)
            case.replies.append(_reply(1, body, "submitted", drafter, drafted))
            returned = step(later(drafted, 1, 4), "return_reply", Status.IN_HANDLING.value, actor=reviewer,
                            note="请补充整改措施和完成时限。")
            case.replies[-1].update(status="returned", reviewed_by_id=reviewer[0], reviewed_at=returned,
                                    review_note="请补充整改措施和完成时限。")
            drafted = later(returned, 2, 20)
            number = 2
        step(drafted, "draft_reply", Status.REPLY_DRAFTED.value, actor=drafter)
        case.replies.append(_reply(number, body, "submitted", drafter, drafted))
        approved = step(later(drafted, 0.5, 6), "approve_reply", Status.REPLY_APPROVED.value, actor=reviewer)
        case.replies[-1].update(status="approved", reviewed_by_id=reviewer[0], reviewed_at=approved)
        sent = step(later(approved, 0.2, 3), "send_reply", Status.REPLIED.value)
        case.replies[-1].update(status="sent", sent_at=sent, sent_via="sms" if phone else "letter")
        values.update(first_response_at=sent, replied_at=sent)
        _outcomes(case, rng, office, template, category, lead, sent, now)
        closed_at = step(later(sent, 20, 96), "close", Status.CLOSED.value,
                         note="" if rng.random() < 0.87 else "投诉人诉求超出医院处理范围，已告知其他解决途径。")
        resolved = case.events[-1]["note"] == ""
        values.update(closed_at=closed_at, resolved=resolved)
        case.events[-1]["data"] = {"resolved": resolved}
        # The one-question satisfaction link after closing; an unhappy answer sometimes reopens the case (重办).
        link = {"created_at": closed_at, "expires_at": closed_at + timedelta(days=7), "comment": "",
                "new_facts": False, "reopened": False, "link_sent_at": closed_at + timedelta(minutes=5)}
        case.feedback.append(link)
        reopen = hold == Status.REOPENED.value
        answered = closed_at + timedelta(hours=rng.uniform(2, 120))
        if not reopen and (answered > link["expires_at"] or rng.random() > 0.68):
            raise _Later
        answer = "unsatisfied" if reopen else _weighted(rng, SATISFACTION_WEIGHTS)
        step(answered, "feedback_answered", actor=(None, "complainant"), data={"answer": answer})
        link.update(answered_at=answered, answer=answer)
        values["satisfaction"] = answer
        if answer != "unsatisfied" or (not reopen and rng.random() > 0.4):
            raise _Later
        link.update(comment="问题没有真正解决，科室只是口头道歉。", new_facts=True, reopen_status="requested")
        reopened = step(later(answered, 2, 30), "reopen", Status.REOPENED.value,
                        note="投诉人对处理结果不满意，重新办理。")
        link.update(reopen_status="accepted", reopened=True, reopen_decided_by_id=office.officer[0],
                    reopen_decided_at=reopened)
        values.update(reopened_count=1, closed_at=None, resolved=None)
        values.update(_due(reopened, days, rule, trace=trace, now=now))
        step(later(reopened, 0.2, 30), "resume", Status.IN_HANDLING.value,
             note=f"重新办理期限：{values['due_date'].isoformat()}")
        redrafted = step(later(reopened, 20, 90), "draft_reply", Status.REPLY_DRAFTED.value, actor=drafter)
        case.replies.append(_reply(len(case.replies) + 1, body, "submitted", drafter, redrafted))
        approved = step(later(redrafted, 0.5, 5), "approve_reply", Status.REPLY_APPROVED.value, actor=reviewer)
        case.replies[-1].update(status="approved", reviewed_by_id=reviewer[0], reviewed_at=approved)
        sent = step(later(approved, 0.2, 2), "send_reply", Status.REPLIED.value)
        case.replies[-1].update(status="sent", sent_at=sent, sent_via="sms" if phone else "letter")
        values["replied_at"] = sent
    except _Later:
        pass
    return _finish(case, state)


def _decline_notice(reason: DeclineReason) -> str:
    try:
        from complaints.handling import default_decline_notice
    except ImportError:  # pragma: no cover - handling not installed
        return str(reason.label)
    return default_decline_notice(reason)


def _reply(number: int, body: str, status: str, drafter: tuple[int | None, str], at: datetime) -> dict[str, Any]:
    return {"number": number, "body": body, "status": status, "drafted_by_id": drafter[0], "drafted_at": at,
            "review_note": "", "sent_via": ""}


def _pause(case: Case, rng: random.Random, since: datetime, now: datetime, received_at: datetime, days: int,
           rule: str, trace: bool) -> None:
    """The case waits for the complainant's material: the clock stands still from ``started``."""
    started = max(since, now - timedelta(hours=rng.uniform(6, 72)))
    case.values.update(paused_since=started, pause_reason="awaiting_material")
    case.pauses.append({"reason": "awaiting_material", "started_at": started, "ended_at": None,
                        "started_by_id": case.events[-1]["actor_id"]})
    case.events.append({"at": started, "actor_id": case.events[-1]["actor_id"], "actor_label": case.events[-1]["actor_label"],
                        "action": "paused", "from_status": None, "to_status": None,
                        "note": "待投诉人补充就诊记录和票据，暂停计时。", "data": {"reason": "awaiting_material"}})
    case.values.update(_due(received_at, days, rule, trace=trace, pauses=[(started, None)], now=now))


def _outcomes(case: Case, rng: random.Random, office: Office, template: Template, category: str, lead: int,
              sent: datetime, now: datetime) -> None:
    """Rectifications (整改, 挂账销号) and, for price complaints, refunds."""
    tz = local_timezone()
    if category != "security" and rng.random() < 0.35:
        owner = office.drafter(lead)
        verifier = office.reviewer if owner == office.officer else office.officer
        due = sent.astimezone(tz).date() + timedelta(days=rng.choice((14, 21, 30)))
        row = {"institution_id": office.institution.id, "department_id": lead,
               "action": template.measure or "针对投诉反映的问题制定整改措施并落实。", "owner_id": owner[0] or office.officer[0],
               "due_date": due, "status": "open", "evidence": "", "created_at": sent}
        age = (now - sent).days
        if age > 7 and rng.random() < 0.8:
            done = sent + timedelta(days=rng.uniform(3, min(age, 25)))
            row.update(status="done", evidence="整改措施已落实，相关培训记录和检查记录已存档。", done_at=done, done_by_id=row["owner_id"])
            if done + timedelta(days=2) < now and rng.random() < 0.75:
                row.update(status="verified", verified_by_id=verifier[0], verified_at=done + timedelta(days=rng.uniform(1, 5)))
        if row["owner_id"] is not None:
            case.rectifications.append(row)
    if category == "charges" and rng.random() < 0.55:
        amount = Decimal(rng.randrange(1500, 90000)) / 100
        requester = office.drafter(lead)
        requested = sent - timedelta(hours=rng.uniform(2, 20))
        row = {"institution_id": office.institution.id, "amount": amount, "reason": "经核实存在重复计费，按规定退还多收费用。",
               "status": "requested", "requested_by_id": requester[0] or office.officer[0], "requested_at": requested,
               "decision_note": "", "payment_ref": ""}
        roll = rng.random()
        if roll < 0.9:
            row.update(status="approved", decided_by_id=office.reviewer[0], decided_at=requested + timedelta(hours=3))
            if roll < 0.75 and requested + timedelta(days=2) < now:
                row.update(status="completed", completed_at=requested + timedelta(days=rng.uniform(1, 3)),
                           completed_by_id=office.officer[0], payment_ref=f"TF{requested:%Y%m%d}{rng.randrange(10**4):04d}")
        elif roll < 0.95:
            row.update(status="rejected", decided_by_id=office.reviewer[0], decided_at=requested + timedelta(hours=5),
                       decision_note="经核实收费符合规定，已向投诉人说明。")
        if row["requested_by_id"] is not None:
            case.refunds.append(row)


def _finish(case: Case, state: dict[str, Any]) -> Case:
    values = case.values
    values["status"] = state["status"]
    values["updated_at"] = max(e["at"] for e in case.events)
    values["version"] = 1 + sum(1 for e in case.events if e["to_status"])
    # Rows that need a member of staff are left out where the institution has none.
    case.replies = [r for r in case.replies if r["drafted_by_id"] is not None]
    case.rectifications = [r for r in case.rectifications if r["owner_id"] is not None]
    case.refunds = [r for r in case.refunds if r["requested_by_id"] is not None]
    return case


# Writing many rows fast ------------------------------------------------------------------

def _table(model_or_table: Any) -> Table:
    return getattr(model_or_table, "__table__", model_or_table)


def _defaults(table: Table) -> dict[str, Callable[[], Any]]:
    """Python-side column defaults (COPY bypasses them, so they are filled in here)."""
    found = {}
    for column in table.columns:
        default = column.default
        if default is None or column.primary_key:
            continue
        if default.is_callable:
            found[column.name] = (lambda d=default: d.arg(None))
        elif default.is_scalar:
            found[column.name] = (lambda v=default.arg: v)
    return found


def write_rows(model_or_table: Any, rows: list[dict[str, Any]], *, batch: int = 5000) -> int:
    """Insert plain dicts in bulk: COPY on PostgreSQL, executemany elsewhere. Python-side defaults are applied."""
    if not rows:
        return 0
    table = _table(model_or_table)
    defaults = _defaults(table)
    given = set().union(*(row.keys() for row in rows))
    names = [c.name for c in table.columns if c.name in given or c.name in defaults]

    def value(row: dict[str, Any], name: str) -> Any:
        if name in row:
            return row[name]
        return defaults[name]() if name in defaults else None

    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        columns = ", ".join(f'"{n}"' for n in names)
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        with raw.cursor() as cursor:
            with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row([json.dumps(value(row, n), ensure_ascii=False) if n in json_columns
                                    else value(row, n) for n in names])
        return len(rows)
    for start in range(0, len(rows), batch):
        db.session.execute(table.insert(), [{n: value(row, n) for n in names} for row in rows[start:start + batch]])
    return len(rows)


def _reserve_ids(count: int) -> list[int]:
    """Complaint ids for rows inserted with explicit ids (children need them first)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return list(db.session.scalars(db.text(
            "SELECT nextval(pg_get_serial_sequence('complaint', 'id')) FROM generate_series(1, :n)"), {"n": count}))
    start = (db.session.scalar(select(func.max(Complaint.id))) or 0) + 1
    return list(range(start, start + count))


def _numbers(office: Office, cases: list[Case]) -> None:
    """Case numbers in receipt order per year, continuing (and then moving) the intake's counters."""
    tz = local_timezone()
    counters = {row.year: row for row in db.session.scalars(
        select(CaseCounter).where(CaseCounter.institution_id == office.institution.id))}
    last: dict[int, int] = {year: row.last_number for year, row in counters.items()}
    for case in sorted(cases, key=lambda c: c.values["received_at"]):
        year = case.values["received_at"].astimezone(tz).year
        last[year] = last.get(year, 0) + 1
        case.values["case_number"] = f"{office.prefix}{year}-{last[year]:05d}"
    for year, number in last.items():
        if year in counters:
            counters[year].last_number = number
        else:
            db.session.add(CaseCounter(institution_id=office.institution.id, year=year, last_number=number))
    db.session.flush()


def write_cases(cases: list[Case]) -> int:
    """Insert simulated cases and everything that hangs off them."""
    if not cases:
        return 0
    ids = _reserve_ids(len(cases))
    children: dict[Any, list[dict[str, Any]]] = {CaseDepartment: [], CaseEvent: [], Reply: [], Feedback: [],
                                                 Rectification: [], Refund: [], CasePause: []}
    concerned = []
    for cid, case in zip(ids, cases):
        case.values["id"] = cid
        for model, rows in ((CaseDepartment, case.departments), (CaseEvent, case.events), (Reply, case.replies),
                            (Feedback, case.feedback), (Rectification, case.rectifications),
                            (Refund, case.refunds), (CasePause, case.pauses)):
            children[model].extend({**row, "complaint_id": cid} for row in rows)
        concerned.extend({"complaint_id": cid, "department_id": d} for d in dict.fromkeys(case.concerned))
    write_rows(Complaint, [c.values for c in cases])
    for model, rows in children.items():
        write_rows(model, rows)
    if CONCERNED is not None:
        write_rows(CONCERNED, concerned)
    db.session.flush()
    return len(cases)


# The demo and the benchmark ----------------------------------------------------------------

def _received_times(rng: random.Random, n: int, *, days: int, now: datetime,
                    recent_share: float = 0.0) -> list[datetime]:
    """``n`` receipt times over the last ``days`` days (``recent_share`` of them in the last 30 days): working
    hours, fewer at weekends, none in the future."""
    tz = local_timezone()
    today = now.astimezone(tz).date()
    times = []
    while len(times) < n:
        day = today - timedelta(days=rng.randrange(min(days, 30) if rng.random() < recent_share else days))
        if day.weekday() >= 5 and rng.random() < 0.6:
            continue
        at = _local(day, rng.triangular(7.5, 20.5, 10))
        if at < now - timedelta(minutes=20):
            times.append(at)
    return sorted(times)


def seed_cases(n_per_institution: int = 300, seed: int = 2026, *, institutions: Iterable[Institution] | None = None,
               days: int = 200, now: datetime | None = None) -> int:
    """Demo cases for every active institution (a third as many for grassroots ones); returns how many."""
    now = now or utcnow()
    if institutions is None:
        institutions = db.session.scalars(select(Institution).where(Institution.active.is_(True))
                                          .order_by(Institution.id)).all()
    total = 0
    for institution in institutions:
        rng = random.Random(f"{seed}:{institution.registration_code}")
        office = office_for(institution)
        n = n_per_institution if institution.level != "grassroots" else max(n_per_institution // 3, 1)
        phones: list[str] = []
        # A third arrived in the last month: the demo office has work in hand, not only an archive.
        times = _received_times(rng, n, days=days, now=now, recent_share=0.33)
        holds = [pick_hold(rng, at, now) for at in times]
        # Every status on show: the most recent cases stop at each open status once, an older one is reopened.
        # (old enough to have got there: a week covers the 5 working days of a reply)
        recent = [i for i, at in enumerate(times) if 7 <= (now - at).days <= 12]
        for k, status in enumerate(HOLD_RECENT):
            if recent:
                holds[recent[k * len(recent) // len(HOLD_RECENT)]] = status
        older = [i for i, at in enumerate(times) if 20 <= (now - at).days <= 60]
        if older:
            holds[older[len(older) // 2]] = Status.REOPENED.value
        cases = [simulate(rng, office, at, now, phones=phones, hold=hold) for at, hold in zip(times, holds)]
        _numbers(office, cases)
        total += write_cases(cases)
    return total


def generate_bulk(institution: Institution, n: int = 100_000, *, seed: int = 7, years: float = 3.0,
                  recent_share: float = 0.0, batch: int = 10_000, now: datetime | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """``n`` cases in one institution for the benchmark, spread evenly over ``years`` years, written in batches.

    100,000 cases over three years is about 90 a day, a very large hospital; about one in a hundred is open.
    ``recent_share`` puts that share of them in the last 30 days instead (a backlog: more open cases).
    """
    now = now or utcnow()
    rng = random.Random(seed)
    office = office_for(institution)
    phones: list[str] = []
    times = _received_times(rng, n, days=int(365 * years), now=now, recent_share=recent_share)
    written = 0
    for chunk in _chunks(times, batch):
        cases = [simulate(rng, office, at, now, trace=False, phones=phones, hold=pick_hold(rng, at, now))
                 for at in chunk]
        if len(phones) > 5000:
            del phones[:-5000]
        _numbers(office, cases)
        written += write_cases(cases)
        if progress:
            progress(written)
    return written


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
