"""The four templates shipped ready to use (item sets from the national survey's dimensions).

Item codes are permanent: trends and exports join on them across versions.
Wording follows the national inpatient questionnaire where it is known; the
answer-to-score conversions are data (see definitions.py), so a hospital can
adopt the official rule when the 操作手册 is at hand.
"""
from __future__ import annotations

from survey.definitions import FREQ4, MULTI, SCALE5, SINGLE, TEXT, YESNO, na_option


def _scored(*pairs: tuple[str, str, float]) -> list[dict]:
    return [{"value": v, "label": label, "score": score, "na": False} for v, label, score in pairs]


def bip4(negative_strong: str, negative: str, positive: str, positive_strong: str) -> list[dict]:
    return _scored(("1", negative_strong, 0.0), ("2", negative, 33.33), ("3", positive, 66.67),
                   ("4", positive_strong, 100.0))


YES3 = _scored(("1", "否", 0.0), ("2", "部分是", 50.0), ("3", "完全是", 100.0))
REC4 = _scored(("1", "肯定不会", 0.0), ("2", "可能不会", 33.33), ("3", "可能会", 66.67), ("4", "肯定会", 100.0))
SATISFIED4 = bip4("非常不满意", "比较不满意", "比较满意", "非常满意")


def item(code, item_type, text, **extra):
    return {"code": code, "type": item_type, "text": text, **extra}


WINDOW = {
    "title": "窗口服务评价",
    "intro": "您的评价匿名提交，帮助我们改进服务。",
    "dimensions": [],
    "items": [
        item("WIN_OVERALL", SCALE5, "您对本次窗口服务满意吗？", required=True, role="overall"),
        item("WIN_REASON", MULTI, "哪里需要改进？（可多选）", show_if={"item": "WIN_OVERALL", "max_score": 50},
             options=[{"value": v, "label": label} for v, label in [
                 ("R_WAIT", "等候时间长"), ("R_ATTITUDE", "态度不好"), ("R_PROCESS", "流程不清"),
                 ("R_SKILL", "业务不熟"), ("R_FEE", "收费有疑问"), ("R_ENV", "环境拥挤"), ("R_OTHER", "其他")]]),
        item("WIN_COMMENT", TEXT, "您还想告诉我们什么？（选填）", max_length=300),
        item("WIN_CONTACT", YESNO, "需要我们联系您吗？", contact=True),
    ],
}

OUTPATIENT = {
    "title": "门诊就医体验调查",
    "intro": "请根据您今天的就诊经历作答，约需 2 分钟，匿名提交。",
    "dimensions": [
        {"code": "REGISTRATION", "name": "挂号流程", "weight": 1},
        {"code": "COMMUNICATION", "name": "医患沟通", "weight": 1},
        {"code": "PRIVACY", "name": "隐私保护", "weight": 1},
        {"code": "ENVIRONMENT", "name": "就医环境", "weight": 1},
        {"code": "CHARGES", "name": "费用", "weight": 1},
    ],
    "items": [
        item("OPD_REG_EASE", SINGLE, "挂号（含预约）方便吗？", dimension="REGISTRATION",
             options=bip4("非常不方便", "比较不方便", "比较方便", "非常方便")),
        item("OPD_PAY_EASE", SINGLE, "缴费、取药、预约检查是否方便？", dimension="REGISTRATION",
             options=bip4("非常不方便", "比较不方便", "比较方便", "非常方便")),
        item("OPD_DOC_LISTEN", SINGLE, "医生是否尊重并仔细倾听您讲话？", dimension="COMMUNICATION", options=YES3),
        item("OPD_DOC_EXPLAIN", SINGLE, "医生是否用您听得懂的方式解释病情和治疗？", dimension="COMMUNICATION",
             options=YES3),
        item("OPD_STAFF_RESPECT", SINGLE, "护士等其他工作人员是否礼貌、尊重您？", dimension="COMMUNICATION",
             options=YES3),
        item("OPD_PRIVACY", SINGLE, "就诊和检查时，您的隐私是否得到保护？", dimension="PRIVACY", options=YES3),
        item("OPD_CLEAN", SINGLE, "候诊区、诊室和卫生间是否干净？", dimension="ENVIRONMENT",
             options=bip4("非常不干净", "比较不干净", "比较干净", "非常干净")),
        item("OPD_SIGNAGE", SINGLE, "院内路标和指示是否清楚？", dimension="ENVIRONMENT",
             options=bip4("非常不清楚", "比较不清楚", "比较清楚", "非常清楚")),
        item("OPD_COST_EXPLAIN", SINGLE, "自费或较贵的项目，是否事先向您说明？", dimension="CHARGES",
             options=YES3 + [na_option("NA", "没有此类项目")]),
        item("OPD_WAIT", SINGLE, "从到达诊室门口到见到医生，大约等了多久？", options=[
            {"value": v, "label": label} for v, label in [
                ("W15", "15 分钟以内"), ("W30", "15–30 分钟"), ("W60", "30–60 分钟"), ("W60P", "1 小时以上")]]),
        item("OPD_INTEGRITY", YESNO, "就诊过程中，是否有人向您索要红包或推销药品？", alert_values=["yes"]),
        item("OPD_OVERALL", SCALE5, "总的来说，您对这次门诊就医满意吗？", required=True, role="overall"),
        item("OPD_RECOMMEND", SINGLE, "亲友需要看病时，您会推荐这家医院吗？", role="recommend", options=REC4),
        item("OPD_COMMENT", TEXT, "您对我们还有什么意见或建议？（选填）", max_length=500),
        item("OPD_CONTACT", YESNO, "需要我们联系您吗？", contact=True),
    ],
}

INPATIENT = {
    "title": "住院患者满意度调查",
    "intro": "感谢您在住院期间对我们的信任。请根据这次住院经历作答，约需 3 分钟，匿名提交。",
    "dimensions": [
        {"code": "ADMISSION", "name": "入出院手续", "weight": 1},
        {"code": "NURSING", "name": "护理服务", "weight": 1},
        {"code": "DOCTORS", "name": "医生服务", "weight": 1},
        {"code": "ENVIRONMENT", "name": "病房环境", "weight": 1},
        {"code": "FOOD", "name": "膳食", "weight": 1},
        {"code": "DISCHARGE", "name": "出院指导", "weight": 1},
        {"code": "CHARGES", "name": "费用", "weight": 1},
    ],
    "items": [
        item("IPD_ADMIT_DISCH", SINGLE, "您觉得办理入院、出院手续复杂吗？", dimension="ADMISSION",
             options=bip4("非常复杂", "比较复杂", "比较简便", "非常简便")),
        item("IPD_NURSE_LISTEN", FREQ4, "住院期间，护士是否尊重您并仔细倾听您讲话？", dimension="NURSING"),
        item("IPD_NURSE_EXPLAIN", FREQ4, "护士是否用您听得懂的方式解释问题？", dimension="NURSING"),
        item("IPD_CALL_HELP", FREQ4, "您按床头呼叫铃后，是否及时得到帮助？", dimension="NURSING",
             options=[na_option("NA", "我没按过呼叫铃")]),
        item("IPD_DOC_LISTEN", FREQ4, "医生是否尊重您并仔细倾听您讲话？", dimension="DOCTORS"),
        item("IPD_DOC_EXPLAIN", FREQ4, "医生是否用您听得懂的方式解释问题？", dimension="DOCTORS"),
        item("IPD_PAIN", FREQ4, "疼痛难忍时，医务人员是否尽力帮您缓解？", dimension="DOCTORS",
             options=[na_option("NA", "我没有疼痛")]),
        item("IPD_MED_NAME", FREQ4, "每次用药前，医务人员是否告诉您药物的名称和作用？", dimension="DOCTORS",
             options=[na_option("NA", "我不知道")]),
        item("IPD_CLEAN", FREQ4, "病房和卫生间是否清洁、无异味？", dimension="ENVIRONMENT"),
        item("IPD_QUIET", FREQ4, "晚上病房附近是否安静？", dimension="ENVIRONMENT"),
        item("IPD_FOOD", SINGLE, "您对医院的饭菜满意吗？", dimension="FOOD",
             options=SATISFIED4 + [na_option("NA", "没有在医院用餐")]),
        item("IPD_DISCH_INFO", SINGLE, "出院时，是否告诉您如何用药、何时复诊、需警惕哪些症状？",
             dimension="DISCHARGE", options=YES3),
        item("IPD_COST_EXPLAIN", SINGLE, "住院费用是否向您解释清楚？", dimension="CHARGES", options=YES3),
        item("IPD_INTEGRITY", YESNO, "住院期间，是否有人向您或家属索要红包或物品？", alert_values=["yes"]),
        item("IPD_PROXY", SINGLE, "本问卷由谁填写？", options=[
            {"value": "SELF", "label": "患者本人"}, {"value": "FAMILY", "label": "家属代填"}]),
        item("IPD_OVERALL", SCALE5, "总的来说，您对这次住院满意吗？", required=True, role="overall"),
        item("IPD_RECOMMEND", SINGLE, "您会向亲友推荐这家医院吗？", role="recommend", options=REC4),
        item("IPD_COMMENT", TEXT, "您对我们还有什么意见或建议？（选填）", max_length=500),
        item("IPD_CONTACT", YESNO, "需要我们联系您吗？", contact=True),
    ],
}

STAFF = {
    "title": "医务人员执业感受调查",
    "intro": "本问卷匿名，结果只按 5 人以上的群体汇总展示，任何人都看不到您个人的答案。",
    "dimensions": [
        {"code": "WORKLOAD", "name": "工作负荷", "weight": 1},
        {"code": "PAY", "name": "薪酬福利", "weight": 1},
        {"code": "MANAGEMENT", "name": "管理与协作", "weight": 1},
        {"code": "SAFETY", "name": "执业安全与环境", "weight": 1},
        {"code": "DEVELOPMENT", "name": "职业发展", "weight": 1},
    ],
    "items": [
        item("STF_WORKLOAD", SCALE5, "您对目前的工作量和工作强度满意吗？", dimension="WORKLOAD"),
        item("STF_SCHEDULE", SCALE5, "您对排班和休假安排满意吗？", dimension="WORKLOAD"),
        item("STF_PAY", SCALE5, "您对薪酬福利满意吗？", dimension="PAY"),
        item("STF_PAY_FAIR", SINGLE, "绩效分配是否公平、透明？", dimension="PAY",
             options=bip4("非常不公平", "比较不公平", "比较公平", "非常公平")),
        item("STF_MANAGEMENT", SCALE5, "您对科室和医院的管理满意吗？", dimension="MANAGEMENT"),
        item("STF_COLLEAGUES", SCALE5, "您对同事之间的协作满意吗？", dimension="MANAGEMENT"),
        item("STF_SAFETY", SINGLE, "您在工作中的人身安全有保障吗？", dimension="SAFETY",
             options=bip4("完全没有保障", "不太有保障", "比较有保障", "非常有保障")),
        item("STF_ENV_EQUIP", SCALE5, "您对工作环境和设备满意吗？", dimension="SAFETY"),
        item("STF_DEVELOP", SCALE5, "您对培训、进修和晋升机会满意吗？", dimension="DEVELOPMENT"),
        item("STF_OVERALL", SCALE5, "总的来说，您对在本院工作满意吗？", required=True, role="overall"),
        item("STF_STAY", SINGLE, "两年内您会继续留在本院工作吗？", options=REC4),
        item("STF_REC_WORK", SINGLE, "您会推荐亲友来本院工作吗？", options=REC4),
        item("STF_REC_CARE", SINGLE, "亲友需要看病时，您会推荐他们来本院吗？", role="recommend", options=REC4),
        item("STF_ROLE", SINGLE, "您的岗位", options=[
            {"value": v, "label": label} for v, label in [
                ("DOCTOR", "医生"), ("NURSE", "护士"), ("TECH", "医技"), ("ADMIN", "行政后勤"), ("OTHER", "其他")]]),
        item("STF_COMMENT", TEXT, "您对医院有什么意见或建议？（选填）", max_length=1000),
    ],
}

# code -> (audience, name, definition)
BUILTIN = {
    "WIN": ("window", "窗口即时评价", WINDOW),
    "OPD": ("outpatient", "门诊患者满意度", OUTPATIENT),
    "IPD": ("inpatient", "住院患者满意度（含出院回访）", INPATIENT),
    "STF": ("staff", "医务人员满意度", STAFF),
}

# Which shipped template a touchpoint gets by default, by its kind.
DEFAULT_FOR_TOUCHPOINT = {"window": "WIN", "clinic": "OPD", "ward": "IPD", "discharge": "IPD", "other": "WIN"}
