"""Stores the isolation tests share: a SQLite store on a file, every item of a store with its
timestamps, and a store seeded with a few items."""

import sqlite3

import pytest
from langgraph.store.base import BaseStore

SqliteStore = pytest.importorskip("langgraph.store.sqlite").SqliteStore


def sqlite_store(path, **kwargs) -> BaseStore:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn, **kwargs)
    store.setup()
    return store


def everything(store: BaseStore) -> dict:
    """Every item of ``store``: (namespace, key) -> (value, created_at, updated_at)."""
    return {
        (item.namespace, item.key): (item.value, item.created_at, item.updated_at)
        for namespace in store.list_namespaces(limit=1000)
        for item in store.search(namespace, limit=1000, refresh_ttl=False)
        if item.namespace == namespace
    }


def seeded(store: BaseStore) -> BaseStore:
    store.put(("docs",), "a", {"kind": "note", "n": 1})
    store.put(("docs",), "b", {"kind": "todo", "n": 2})
    store.put(("docs", "old"), "c", {"kind": "note", "n": 3})
    store.put(("users", "ada"), "profile", {"name": "Ada"})
    return store
