"""Where each user's objects live in storage."""

import hashlib


def user_prefix(user_id: str) -> str:
    """The storage folder of one user: a hash, so ids never shape paths or leak in URLs."""
    return "users/" + hashlib.sha256(user_id.encode()).hexdigest()[:24]
