"""The private store layer a rollout writes into (``isolation.LayeredStore``) over the user's
store, in memory and SQLite, sync and async: reads see the user's items, writes stay in the
layer, batches, namespaces, TTLs and semantic search behave as over one store."""

import asyncio

import pytest
from langgraph.store.memory import InMemoryStore

from gepa_graph.integrations.langgraph.isolation import LayeredStore
from tests.store_helpers import everything, seeded, sqlite_store


@pytest.fixture(params=["memory", "sqlite"])
def base(request, tmp_path):
    if request.param == "memory":
        return seeded(InMemoryStore())
    return seeded(sqlite_store(str(tmp_path / "user.db")))


def test_reads_see_the_user_store_and_writes_stay_in_the_layer(base):
    before = everything(base)
    layer = LayeredStore(base)
    assert layer.get(("docs",), "a").value == {"kind": "note", "n": 1}
    layer.put(("docs",), "a", {"kind": "note", "n": 10})
    layer.put(("docs",), "d", {"kind": "todo", "n": 4})
    layer.delete(("docs",), "b")
    assert layer.get(("docs",), "a").value["n"] == 10
    assert layer.get(("docs",), "b") is None
    assert layer.get(("docs",), "d").value["n"] == 4
    assert {i.key for i in layer.search(("docs",), limit=10)} == {"a", "c", "d"}
    assert {i.key for i in layer.search(("docs",), filter={"kind": "note"})} == {"a", "c"}
    assert [i.key for i in layer.search(("docs",), filter={"n": {"$gte": 4}})] == ["a", "d"]
    keys = [i.key for i in layer.search(("docs",), limit=10)]
    assert [i.key for i in layer.search(("docs",), limit=2, offset=1)] == keys[1:3]
    assert everything(base) == before  # the user's store is as it was
    assert LayeredStore(base).get(("docs",), "d") is None  # another rollout sees none of it


def test_list_namespaces_sees_the_layered_view(base):
    layer = LayeredStore(base)
    layer.put(("memories", "ada"), "m1", {"content": "tea"})
    layer.delete(("users", "ada"), "profile")  # the namespace's only item
    layer.delete(("docs",), "a")  # ("docs",) keeps "b"
    assert layer.list_namespaces() == [("docs",), ("docs", "old"), ("memories", "ada")]
    assert layer.list_namespaces(prefix=("docs",)) == [("docs",), ("docs", "old")]
    assert layer.list_namespaces(suffix=("ada",)) == [("memories", "ada")]
    assert layer.list_namespaces(max_depth=1) == [("docs",), ("memories",)]
    assert layer.list_namespaces(limit=1, offset=1) == [("docs", "old")]
    assert ("users", "ada") in base.list_namespaces()


def test_a_batch_reads_before_it_writes_and_async_honours_the_layer():
    base = seeded(InMemoryStore())
    layer = LayeredStore(base)

    async def run():
        await layer.aput(("docs",), "a", {"n": 99})
        got = await layer.aget(("docs",), "a")
        found = await layer.asearch(("docs",), filter={"n": 99})
        await layer.adelete(("docs",), "b")
        spaces = await layer.alist_namespaces(prefix=("docs",))
        return got.value, [i.key for i in found], await layer.aget(("docs",), "b"), spaces

    assert asyncio.run(run()) == ({"n": 99}, ["a"], None, [("docs",), ("docs", "old")])
    from langgraph.store.base import GetOp, PutOp

    results = layer.batch([PutOp(("x",), "k", {"v": 1}), GetOp(("x",), "k")])
    assert results == [None, None]  # the get saw the state before the batch's put
    assert layer.get(("x",), "k").value == {"v": 1}
    assert base.get(("docs",), "a").value == {"kind": "note", "n": 1}
    assert base.get(("x",), "k") is None


def test_reads_do_not_refresh_the_user_store_ttls(tmp_path):
    path = str(tmp_path / "ttl.db")
    store = sqlite_store(path, ttl={"default_ttl": 60, "refresh_on_read": True})
    store.put(("docs",), "a", {"n": 1})
    rows = "SELECT prefix, key, value, expires_at, updated_at FROM store ORDER BY key"
    before = store.conn.execute(rows).fetchall()
    layer = LayeredStore(store)
    layer.get(("docs",), "a")
    layer.search(("docs",))
    layer.put(("docs",), "b", {"n": 2}, ttl=5)  # a TTL is accepted where the store takes one
    assert store.conn.execute(rows).fetchall() == before


def test_semantic_search_ranks_the_layer_items_with_the_store_embeddings():
    from langchain_core.embeddings import Embeddings

    class Letters(Embeddings):
        """Counts of a few letters: texts sharing letters are similar."""

        def embed_documents(self, texts):
            return [self.embed_query(t) for t in texts]

        def embed_query(self, text):
            return [text.count(c) + 0.01 for c in "aeiost"]

    base = InMemoryStore(index={"dims": 6, "embed": Letters(), "fields": ["text"]})
    base.put(("docs",), "x", {"text": "zzz"})
    layer = LayeredStore(base)
    layer.put(("docs",), "y", {"text": "tea toast"})
    ranked = layer.search(("docs",), query="tea toast", limit=2)
    assert [i.key for i in ranked] == ["y", "x"] and ranked[0].score > ranked[1].score
    assert base.search(("docs",), query="tea", limit=5)[0].key == "x"  # the user's: only x
