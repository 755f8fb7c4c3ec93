"""How the audit log names what organisation records: regions, institutions, units, staff and sign-ins
(core.audit.register_audit_labels; every action passed to core.audit.record here has its label)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from organisation.models import (
    DeliveryChannel,
    DepartmentKind,
    InstitutionCategory,
    InstitutionGrade,
    InstitutionLevel,
    RegionLevel,
    Role,
    TouchpointKind,
)

ACTIONS = {
    "institution.update_complaint_contact": _l("修改投诉联系电话和地址"),
    "region.create": _l("新建区域"), "region.update": _l("修改区域"),
    "region.activate": _l("启用区域"), "region.deactivate": _l("停用区域"),
    "institution.create": _l("新建机构"), "institution.update": _l("修改机构信息"),
    "institution.activate": _l("启用机构"), "institution.deactivate": _l("停用机构"),
    "department.create": _l("新建科室"), "department.update": _l("修改科室"),
    "department.activate": _l("启用科室"), "department.deactivate": _l("停用科室"),
    "touchpoint.create": _l("新建服务点"), "touchpoint.update": _l("修改服务点"),
    "touchpoint.activate": _l("启用服务点"), "touchpoint.deactivate": _l("停用服务点"),
    "staff.create": _l("新建人员账号"), "staff.update": _l("修改人员信息"),
    "staff_user.activate": _l("启用人员账号"), "staff_user.deactivate": _l("停用人员账号"),
    "staff.reset_password": _l("重置密码"), "staff.change_password": _l("修改密码"), "staff.unlock": _l("解除登录限制"),
    "staff.login": _l("登录"), "staff.logout": _l("退出登录"), "staff.login_failed": _l("登录失败"),
    "staff.login_second_factor_failed": _l("两步验证码错误"), "staff.totp_setup": _l("开始设置两步验证"),
    "staff.totp_enable": _l("开启两步验证"), "staff.totp_disable": _l("关闭两步验证"),
    "staff.totp_reset": _l("重置两步验证"),
    "staff.session_expired": _l("登录会话超时结束"), "staff_session.purge": _l("清理过期的登录会话记录"),
    "notifier.update": _l("修改消息推送设置"), "notifier.test": _l("发送测试消息"),
}

TARGETS = {"region": _l("行政区域"), "institution": _l("医疗机构"), "department": _l("科室"),
           "touchpoint": _l("服务点"), "staff_user": _l("人员账号")}

KEYS = {
    "complaint_phone": _l("投诉电话"), "complaint_address": _l("投诉接待地址"),
    "code": _l("编码"), "name": _l("名称"), "kind": _l("类型"),
    ("region", "code"): _l("行政区划代码"), ("region", "level"): _l("层级"),
    ("institution", "name"): _l("机构名称"), "short_name": _l("简称"), "registration_code": _l("登记号"),
    ("institution", "level"): _l("等级"), "grade": _l("等次"), ("institution", "category"): _l("类别"),
    "region_id": _l("所属区域"),
    ("department", "parent_id"): _l("上级科室"), "department_id": _l("所属科室"), "location": _l("位置"),
    "display_name": _l("姓名"), "roles": _l("角色"), "departments": _l("负责科室"),
    ("institution", "changed"): _l("修改的项目"), ("institution", "channel"): _l("渠道"),
    ("staff_user", "reason"): _l("原因"), ("system", "count"): _l("数量"),
}

VALUES = {
    ("region", "level"): RegionLevel, ("institution", "level"): InstitutionLevel, "grade": InstitutionGrade,
    ("institution", "category"): InstitutionCategory, ("department", "kind"): DepartmentKind,
    ("touchpoint", "kind"): TouchpointKind, "roles": Role,
    ("institution", "channel"): DeliveryChannel,
    ("staff_user", "reason"): {"idle": _l("长时间未操作"), "lifetime": _l("超过登录时限")},
}

# Actors that are not staff members: the demo loader, and a failed sign-in (no one is signed in yet).
ACTORS = {"seed-demo": _l("演示数据"), "login": _l("登录页"), "session": _l("登录会话管理")}
