"""Masking personal data for lists, logs and messages (PIPL: show the least that does the job)."""
from __future__ import annotations


def mask_name(name: str | None) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***: the family name only, never how long the rest is beyond three."""
    name = (name or "").strip()
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    return name[0] + "*" * min(len(name) - 1, 3)


def mask_phone(phone: str | None) -> str:
    """13912345678 → 139****5678: enough to tell people apart, useless to dial."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    if len(phone) <= 7:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"


def mask_address(address: str | None) -> str:
    """A phone number or an e-mail address masked: 139****5678, z***@example.cn; other text as it is."""
    address = (address or "").strip()
    if "@" in address:
        name, _, domain = address.partition("@")
        return f"{name[:1]}***@{domain}"
    if sum(ch.isdigit() for ch in address) >= 7:
        return mask_phone(address)
    return address
