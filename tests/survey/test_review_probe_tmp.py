"""TEMPORARY probe (deleted after review)."""
import io, itertools
import pytest
from flask import url_for
from sqlalchemy import select
from core.extensions import db
from organisation.models import Department, Touchpoint, StaffUser
from survey.models import *  # noqa
from survey import qr
from tests.survey.conftest import staff_login, touchpoint, survey_path
from tests.factories import demo_institution

ODD = ["page=99999999999999999999", "page=-5", "page=abc", "q=%00", "q=%ff%fe", "department_id=abc",
       "department_id=99999999999999999999", "date_from=0001-01-01", "date_from=2020-13-45", "status=%00",
       "version=99999999999999999999", "template_id=%00", "year=99999999999999", "month=9999-99",
       "flagged=zzz", "channel=zzz", "score=zzz", "touchpoint_id=1e9", "actor=%00", "target_id=%00",
       "action=%00", "date_to=2999-12-31", "template_id=99999999999999999999999", "year=abc", "kind=zzz"]

def objs(rmyy, builtin_templates):
    tp = touchpoint(rmyy, "W-GH-01")
    code = qr.ensure_code(tp, actor="t")
    dep = tp.department
    staff = db.session.scalar(select(StaffUser).where(StaffUser.username == "rmyy-nurse"))
    tmpl = builtin_templates["WIN"]
    return dict(department_id=dep.id, touchpoint_id=tp.id, staff_id=staff.id, template_id=tmpl.id,
                version_id=tmpl.published.id, region_id=1, kind="png", fmt="csv", token_id=1, alert_id=1,
                response_id=1, discharge_id=1, batch_id=1)

def test_probe_gets(app, client, rmyy, builtin_templates):
    o = objs(rmyy, builtin_templates)
    staff_login(client, "platform")
    bad = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static",) or rule.endpoint.startswith("patient") or rule.endpoint.startswith("complaints"):
            continue
        args = {}
        for a in rule.arguments:
            if a == "institution_id": args[a] = rmyy.id
            elif a in o: args[a] = o[a]
            else: args[a] = "x"
        try:
            with app.test_request_context():
                base = url_for(rule.endpoint, **args)
        except Exception as e:
            print("skip", rule, e); continue
        for q in ODD:
            r = client.get(base + ("&" if "?" in base else "?") + q)
            r.get_data(); r.close()
            if r.status_code >= 500:
                bad.append((base, q, r.status_code))
    print("\n".join(map(str, bad)))
    assert not bad

def test_probe_posts(app, client, rmyy, builtin_templates):
    o = objs(rmyy, builtin_templates)
    staff_login(client, "platform")
    bad = []
    payloads = [{}, {"name": "\x00", "code": "\x00", "q": "x"}, {"template_id": "abc", "department_id": "99999999999999999999", "size": "99999999999999999999"},
                {k: "\x00" for k in ["name","code","display_name","username","note","title","label","outcome","kind","level","category","grade","region_id","parent_id","department_id","location","alert_threshold","followup_days","roles","submission_id","contact_phone","dimensions","intro","items-0-code","items-0-text","items-0-type","items-0-options","items-0-show_if","template_id","size","registration_code","short_name","current_password","new_password","confirm"]},
                {"title":"T","dimensions":"D|d|nan","items-0-code":"Q1","items-0-type":"scale5","items-0-text":"t","items-0-dimension":"D"},
                {"title":"T","dimensions":"D|d|1e999","items-0-code":"Q1","items-0-type":"scale5","items-0-text":"t","items-0-dimension":"D"},
                {"title":"T","items-0-code":"Q1","items-0-type":"single","items-0-text":"t","items-0-options":"a|A|nan\nb|B|1"},
                {"title":"T","items-0-code":"Q1","items-0-type":"scale5","items-0-text":"t","items-1-code":"Q2","items-1-type":"text","items-1-text":"t2","items-1-show_if":"Q1<=abc"},
                {"alert_threshold":"nan","followup_days":"1e99","contact_retention_days":"99999999999999999999","link_valid_days":"5","min_fill_seconds":"inf","repeat_window_minutes":"5","staff_min_group":"5"},
                {"file": (io.BytesIO(b"\xff\xfe\x00\x00garbage\x00"), "x.csv"), "kind": "departments"},
                {"file": (io.BytesIO(b"PK\x03\x04garbage"), "x.xlsx"), "kind": "staff"},
                {"file": (io.BytesIO("病区/科室编码,出院日期,患者姓名,联系电话,住院号\nB-XNK,2026-01-01,\x00,13800000000,1\n".encode()), "x.csv"), "kind": "departments"},
                {"file": (io.BytesIO("code,name,kind\nA\x00,n\x00,临床\n".encode()), "x.csv"), "kind": "departments"},
                ]
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint.startswith("patient") or rule.endpoint.startswith("complaints") or rule.endpoint.startswith("api") or rule.endpoint.startswith("auth.logout"):
            continue
        args = {}
        for a in rule.arguments:
            if a == "institution_id": args[a] = rmyy.id
            elif a in o: args[a] = o[a]
            else: args[a] = "x"
        with app.test_request_context():
            base = url_for(rule.endpoint, **args)
        for p in payloads:
            p2 = {k: ((io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v) for k, v in p.items()}
            r = client.post(base, data=p2, content_type="multipart/form-data")
            if r.status_code >= 500:
                bad.append((base, list(p)[:3], r.status_code))
            staff_login(client, "platform")
    print("\n".join(map(str, bad)))
    assert not bad
