"""Accounts (clerk, manager, admin) with hashed passwords, and device tokens stored as hashes."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from werkzeug.security import check_password_hash, generate_password_hash

from .domain.errors import Conflict, InvalidInput
from .store import Store

ROLES = ("clerk", "manager", "admin")
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_LENGTH = 8
DEVICE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Checked against when the user does not exist, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def role_at_least(role: str, minimum: str) -> bool:
    return ROLES.index(role) >= ROLES.index(minimum)


def add_user(store: Store, username: str, role: str, password: str, at: datetime) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput("bad_username", "Tên đăng nhập: a-z, 0-9, . _ - (2–32 ký tự) / Username: a-z, 0-9, . _ - (2–32 chars)")
    if role not in ROLES:
        raise InvalidInput("bad_role", f"Vai trò phải là {', '.join(ROLES)} / Role must be one of {', '.join(ROLES)}")
    check_password_strength(password)
    with store.write():
        if store.get_user(username) is not None:
            raise Conflict("user_exists", f"Đã có tài khoản {username} / User {username} already exists")
        store.add_user(username, role, generate_password_hash(password), at)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "weak_password",
            f"Mật khẩu cần ít nhất {MIN_PASSWORD_LENGTH} ký tự / Password needs at least {MIN_PASSWORD_LENGTH} characters",
        )


def authenticate(store: Store, username: str, password: str) -> dict | None:
    """The user's record when the password is right and the account active, else None."""
    user = store.get_user(username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user["password_hash"], password) or user["disabled"]:
        return None
    return user


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def hash_token(token: str) -> str:
    # Tokens are long random strings, so a plain SHA-256 is enough (no need for a slow hash).
    return hashlib.sha256(token.encode()).hexdigest()


def create_device_token(store: Store, device_id: str, at: datetime) -> str:
    """A new token for a device (replacing any earlier one); only its hash is stored."""
    if not DEVICE_ID_PATTERN.fullmatch(device_id):
        raise InvalidInput("bad_device_id", "Mã thiết bị: a-z, 0-9, - (≤ 32) / Device id: a-z, 0-9, - (≤ 32)")
    token = f"mcd_{secrets.token_urlsafe(24)}"
    with store.write():
        store.set_device_token(device_id, hash_token(token), at)
    return token


def device_for_token(store: Store, token: str) -> str | None:
    return store.device_for_token_hash(hash_token(token))
