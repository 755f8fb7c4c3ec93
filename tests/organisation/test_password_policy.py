"""The password policy: a minimum length, no common password (a shipped list, and simple variants of its
entries), not the username, not the user's name; no composition rules (OWASP ASVS 2.1)."""
from __future__ import annotations

import pytest

from organisation import demo
from organisation.passwords import (
    MIN_LENGTH,
    common_passwords,
    generate_initial_password,
    is_common,
    password_problems,
)

COMMON = "这是常见密码"


def test_the_shipped_list_holds_a_few_thousand_passwords_with_the_chinese_favourites():
    known = common_passwords()
    assert len(known) >= 3000
    assert {"123456", "a123456", "woaini1314", "qq123456", "5201314", "1qaz2wsx", "password"} <= known


@pytest.mark.parametrize("password", [
    "123456789012", "woaini1314520", "Woaini5201314", "qq1234567890", "1qaz2wsx3edc", "Password2026!",
    "Zhongguo2026!", "p@ssw0rd12345", "888888888888", "123456789abc", "abc1234567890", "Qwertyuiop123",
    "yiyuan123456", "Admin@123456",
])
def test_common_passwords_and_their_simple_variants_are_refused(ctx, password):
    assert is_common(password)
    assert any(COMMON in problem for problem in password_problems(password))


@pytest.mark.parametrize("password", [
    "correct horse battery staple", "Xk7-ward3-night", "只有中文也可以是好密码吗", "onlyletters-here-long",
    "Kp4x9Tq2Lm7v", "wang2015lili-ward",
])
def test_uncommon_long_passwords_pass_without_composition_rules(ctx, password):
    assert password_problems(password) == []


def test_the_published_demo_password_and_its_variants_are_never_a_new_password(ctx):
    """Everyone who read the README knows it: the demo accounts have it, nobody may choose it."""
    for password in (demo.DEMO_PASSWORD, "Demo2027tingjian", "demo2026tingjian!", "DEMO2026TINGJIAN"):
        assert any("公开的演示密码" in problem for problem in password_problems(password)), password


@pytest.mark.parametrize("password", [
    "woaini1314woaini", "passwordpassword", "abc123abc123", "zhangsan123456",  # common pieces run together
])
def test_common_passwords_run_together_are_refused(ctx, password):
    assert any(COMMON in problem for problem in password_problems(password))


@pytest.mark.parametrize("password", [
    "q1w2e3r4t5y6", "qwertyuiopasdf", "rmyy-leader2026x!", "201212072012", "abcdefghijklmn",
])
def test_keyboard_walks_sequences_dates_and_the_username_are_too_easy(ctx, password):
    assert password_problems(password, username="rmyy-leader", display_name="院领导")


def test_generated_initial_passwords_pass_the_whole_policy(ctx):
    assert all(password_problems(generate_initial_password()) == [] for _ in range(50))


def test_a_password_shorter_than_the_minimum_is_refused(ctx):
    assert MIN_LENGTH == 12
    assert any("至少需要 12 个字符" in p for p in password_problems("Xk7-ward3-n"))  # 11
    assert password_problems("Xk7-ward3-ni") == []  # 12
    assert any("至少需要" in p for p in password_problems("Xk7  -  w3-n"))  # runs of spaces count once


def test_the_username_and_the_users_name_are_refused(ctx):
    assert any("用户名" in p for p in password_problems("Rmyy-Nurse-2026!", username="rmyy-nurse"))
    assert any("姓名" in p for p in password_problems("张 伟的夜班密码2026", display_name="张伟"))
    assert any("姓名" in p for p in password_problems("my-ZhangWei-night", display_name="zhang wei"))


def test_generated_initial_passwords_pass_the_policy(ctx):
    for _ in range(50):
        assert password_problems(generate_initial_password()) == []
