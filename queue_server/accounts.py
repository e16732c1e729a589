"""Accounts (clerk, manager, admin) with hashed passwords, and device tokens stored as hashes."""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from werkzeug.security import check_password_hash, generate_password_hash

from .domain.errors import Conflict, InvalidInput, NotFound
from .domain.timeutil import DEFAULT_TIMEZONE, local_day
from .store import Store

ROLES = ("clerk", "manager", "admin")
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_LENGTH = 8
# The login form accepts at most this many characters (api/auth.py LoginIn).
MAX_PASSWORD_LENGTH = 256
MIN_DISTINCT_CHARACTERS = 5
# Passwords tried first by anyone guessing, in Vietnamese offices as anywhere; compared
# case-insensitively and with spaces removed.
COMMON_PASSWORDS = frozenset({
    "12345678", "123456789", "1234567890", "87654321", "11111111", "00000000", "12341234", "123123123",
    "password", "password1", "password123", "passw0rd", "qwertyuiop", "qwerty123", "abc12345", "abcd1234",
    "iloveyou", "admin123", "administrator", "matkhau", "matkhau1", "matkhau123", "matkhau@123", "motcua123",
    "vietnam", "vietnam123", "hanoi123", "saigon123", "anhyeuem", "emyeuanh", "123456aa", "aa123456",
    "changeme", "welcome1", "letmein1", "12345678a", "a12345678",
})
DEVICE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Password hashes (werkzeug's scrypt) computed at once: each holds 32 MiB while it runs, so a
# crowd signing in together at opening time (11 at once took a server from ~100 to 380 MB) waits
# its turn for a few tens of milliseconds instead of multiplying the server's memory.
HASHES_AT_ONCE = 2
_hashing = threading.BoundedSemaphore(HASHES_AT_ONCE)


def _hash(password: str) -> str:
    with _hashing:
        return generate_password_hash(password)


def _matches(password_hash: str, password: str) -> bool:
    with _hashing:
        return check_password_hash(password_hash, password)


# Checked against when the user does not exist, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hash("not-a-real-password")


def role_at_least(role: str, minimum: str) -> bool:
    return ROLES.index(role) >= ROLES.index(minimum)


@dataclass(frozen=True)
class AccountChange:
    """What the append-only history keeps of a change to an account: never a password or a hash."""

    username: str
    change: str  # added, role_changed, disabled, enabled, password_reset
    role: str
    disabled: bool
    previous_role: str | None = None


def add_user(
    store: Store, username: str, role: str, password: str, at: datetime, *, actor: str | None = None, tz: ZoneInfo | None = None
) -> None:
    """A new enabled account; recorded in the history with `actor` (None: the command line)."""
    _check_username(username)
    _check_role(role)
    check_password_strength(password, username)
    password_hash = _hash(password)  # slow on purpose: not while holding the write lock
    with store.write():
        if store.get_user(username) is not None:
            raise Conflict("user_exists", f"Đã có tài khoản {username} / User {username} already exists")
        store.add_user(username, role, password_hash, at)
        _record(store, at, tz, AccountChange(username, "added", role, False), actor)


def check_password_strength(password: str, username: str | None = None) -> None:
    """Refuse what a guesser tries first: short, repetitive, common, or the username itself."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "weak_password",
            f"Mật khẩu cần ít nhất {MIN_PASSWORD_LENGTH} ký tự / Password needs at least {MIN_PASSWORD_LENGTH} characters",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            "weak_password",
            f"Mật khẩu tối đa {MAX_PASSWORD_LENGTH} ký tự / Password must be at most {MAX_PASSWORD_LENGTH} characters",
        )
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        raise InvalidInput(
            "weak_password",
            f"Mật khẩu cần ít nhất {MIN_DISTINCT_CHARACTERS} ký tự khác nhau"
            f" / Password needs at least {MIN_DISTINCT_CHARACTERS} different characters",
        )
    folded = "".join(password.lower().split())
    if folded in COMMON_PASSWORDS:
        raise InvalidInput("weak_password", "Mật khẩu quá phổ biến, dễ đoán / Password too common, easy to guess")
    if username and username.lower() in password.lower():
        raise InvalidInput("weak_password", "Mật khẩu không được chứa tên đăng nhập / Password must not contain the username")


def _check_username(username: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput("bad_username", "Tên đăng nhập: a-z, 0-9, . _ - (2–32 ký tự) / Username: a-z, 0-9, . _ - (2–32 chars)")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput("bad_role", f"Vai trò phải là {', '.join(ROLES)} / Role must be one of {', '.join(ROLES)}")


def _record(store: Store, at: datetime, tz: ZoneInfo | None, change: AccountChange, actor: str | None) -> None:
    zone = tz or ZoneInfo(DEFAULT_TIMEZONE)
    store.append_history(at, local_day(at, zone), f"user_{change.change}", change.username, change, actor)


def account_view(user: dict) -> dict:
    """What the accounts page sees of an account (never the password hash)."""
    return {"username": user["username"], "role": user["role"], "disabled": bool(user["disabled"]), "created_at": user["created_at"]}


def list_accounts(store: Store) -> list[dict]:
    return [account_view(user) for user in store.list_users()]


def create_account(
    store: Store, username: str, role: str, password: str | None, *, actor: str | None, at: datetime, tz: ZoneInfo
) -> tuple[dict, str | None]:
    """Add an account; without a password one is generated. Returns (account, generated
    password or None): a generated password is shown this once and never stored in clear."""
    _check_username(username)
    generated = _generate_for(username) if password is None else None
    add_user(store, username, role, generated or password, at, actor=actor, tz=tz)
    user = store.get_user(username)
    assert user is not None
    return account_view(user), generated


def update_account(
    store: Store, username: str, *, role: str | None = None, disabled: bool | None = None, actor: str | None, at: datetime, tz: ZoneInfo
) -> dict:
    """Change an account's role and/or disable or re-enable it.

    The last enabled admin can never be demoted or disabled (nobody could manage accounts
    any more), and an admin cannot do either to their own account (a slip of the hand
    would lock them out). Disabling ends the account's sessions at once.
    """
    if role is not None:
        _check_role(role)
    with store.write():
        user = _existing(store, username)
        demoting = role is not None and role != "admin" and user["role"] == "admin"
        disabling = disabled is True and not user["disabled"]
        if (demoting or disabling) and user["role"] == "admin" and not user["disabled"] and store.count_enabled_admins() <= 1:
            raise Conflict(
                "last_admin",
                "Đây là quản trị viên cuối cùng còn hoạt động: không thể hạ quyền hay khoá"
                " / This is the last enabled admin: it cannot be demoted or disabled",
                username=username,
            )
        if (demoting or disabling) and username == actor:
            raise Conflict(
                "own_account",
                "Không thể tự hạ quyền hay tự khoá tài khoản của mình; nhờ quản trị viên khác"
                " / You cannot demote or disable your own account; ask another admin",
                username=username,
            )
        current_role, current_disabled = user["role"], bool(user["disabled"])
        if role is not None and role != current_role:
            store.set_user_role(username, role)
            _record(store, at, tz, AccountChange(username, "role_changed", role, current_disabled, previous_role=current_role), actor)
            current_role = role
        if disabled is not None and disabled != current_disabled:
            store.set_user_disabled(username, disabled)
            # Ended for good: re-enabling later does not bring an old session back.
            store.end_sessions(username)
            current_disabled = disabled
            change = "disabled" if disabled else "enabled"
            _record(store, at, tz, AccountChange(username, change, current_role, current_disabled), actor)
        updated = store.get_user(username)
    assert updated is not None
    return account_view(updated)


def reset_password(
    store: Store, username: str, password: str | None, *, actor: str | None, at: datetime, tz: ZoneInfo
) -> tuple[str | None, int]:
    """Give an account a new password (generated when None) and end its sessions.

    Returns (the generated password or None, the account's new session epoch: the caller
    re-signs its own session with it when the admin reset their own password)."""
    _existing(store, username)  # 404 before a password is judged
    generated = _generate_for(username) if password is None else None
    new_password = generated or password
    check_password_strength(new_password, username)
    password_hash = _hash(new_password)
    with store.write():
        user = _existing(store, username)
        store.set_password(username, password_hash)
        epoch = store.end_sessions(username)
        _record(store, at, tz, AccountChange(username, "password_reset", user["role"], bool(user["disabled"])), actor)
    return generated, epoch


def _generate_for(username: str) -> str:
    """A random password that passes the strength check for this username (a random one
    can, rarely, contain a short username)."""
    while True:
        password = generate_password()
        try:
            check_password_strength(password, username)
        except InvalidInput:
            continue
        return password


def _existing(store: Store, username: str) -> dict:
    user = store.get_user(username)
    if user is None:
        raise NotFound("unknown_user", f"Không có tài khoản {username} / Unknown user {username}")
    return user


def authenticate(store: Store, username: str, password: str) -> dict | None:
    """The user's record when the password is right and the account active, else None."""
    user = store.get_user(username)
    if user is None:
        _matches(_DUMMY_HASH, password)
        return None
    if not _matches(user["password_hash"], password) or user["disabled"]:
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
