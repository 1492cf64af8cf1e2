"""Staff identity: accounts with argon2id passwords, roles, API tokens (``policy_push.web.auth`` puts
them in front of every route)."""

from .accounts import TOKEN_PREFIX, LoginResult, Principal, StaffDirectory, split_token
from .roles import ROLE_LABELS, Role

__all__ = ["ROLE_LABELS", "TOKEN_PREFIX", "LoginResult", "Principal", "Role", "StaffDirectory", "split_token"]
