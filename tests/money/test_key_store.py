"""One key store: both stores issue the same records under one prefix, older keys still authenticate,
and the admin API publishes exactly the record's fields."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from sqlalchemy.engine import Engine

from execution_platform.gateway.auth import Authenticator
from execution_platform.gateway.routes.admin import KeyInfo
from execution_platform.storage.keys import KEY_PREFIX, KeyRepository, MemoryKeyStore, VirtualKey, hash_key
from execution_platform.storage.tables import virtual_keys


@pytest.mark.parametrize("store", ["memory", "sql"])
def test_both_stores_issue_the_same_records(store: str, engine: Engine) -> None:
    keys = MemoryKeyStore() if store == "memory" else KeyRepository(engine)
    key, secret = keys.create(name="ci", budget_usd=2.0, scopes=["metrics"])
    assert KEY_PREFIX == "sk-ep-" and secret.startswith("sk-ep-") and key.key_prefix == secret[:12]
    assert key.budget_period == "total" and key.scopes == ["metrics"]
    found = keys.get_by_hash(hash_key(secret))
    assert isinstance(found, VirtualKey) and found.id == key.id and not found.revoked
    with pytest.raises(ValueError, match="scope"):
        keys.create(scopes=["admin"])
    assert keys.revoke(key.id) and not keys.revoke(key.id)
    assert [k.to_dict()["revoked"] for k in keys.list()] == [True]


def test_a_key_issued_with_the_older_prefix_still_authenticates(engine: Engine) -> None:
    repo = KeyRepository(engine)
    old_secret = "ep-" + "x" * 43  # what the in-memory store used to issue
    with engine.begin() as conn:
        record = VirtualKey(id="key_old", key_hash=hash_key(old_secret), key_prefix=old_secret[:12],
                            personas=["coder"], scopes=["metrics"])
        conn.execute(virtual_keys.insert().values(**asdict(record)))
    principal = Authenticator("master-key-0123456789", repo).authenticate(old_secret)
    assert principal.kind == "virtual" and principal.key_id == "key_old"
    assert principal.personas == ("coder",) and principal.has_scope("metrics")


def test_admin_key_schema_is_the_record_without_its_hash() -> None:
    key, _ = MemoryKeyStore().create(name="n")
    assert set(KeyInfo.model_fields) == set(key.to_dict())
    assert "key_hash" not in KeyInfo.model_fields
