"""Writes that coincide are sent together, and each caller still learns its own outcome."""

import asyncio

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import DuplicateKeyError

from aimms_shared.mongo import GroupedWrites

from .conftest import Infrastructure

pytestmark = pytest.mark.integration


class WriteCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.documents: list[int] = []  # documents per insert command
        self.updates: list[int] = []  # statements per update command

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert":
            self.documents.append(len(event.command["documents"]))
        if event.command_name == "update":
            self.updates.append(len(event.command["updates"]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_coinciding_writes_go_together_and_only_the_duplicate_fails(
    infrastructure: Infrastructure, namespace: str
) -> None:
    commands = WriteCommands()
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri, event_listeners=[commands])
    people = client[namespace]["people"]
    await people.create_index("email", unique=True)
    await people.insert_one({"_id": "existing", "email": "taken@x.org"})
    commands.documents.clear()
    inserts = GroupedWrites(people)
    try:
        documents = [{"_id": f"p{i}", "email": f"p{i}@x.org"} for i in range(30)]
        documents[7]["email"] = "taken@x.org"
        outcomes = await asyncio.gather(*(inserts.insert(d) for d in documents), return_exceptions=True)

        assert [i for i, outcome in enumerate(outcomes) if outcome is not None] == [7]
        assert isinstance(outcomes[7], DuplicateKeyError)
        assert sorted(await people.distinct("_id")) == sorted(["existing"] + [f"p{i}" for i in range(30) if i != 7])
        assert commands.documents == [30]  # issued together, written together

        # While one write is on its way, what comes meanwhile waits for it and then goes in one write.
        first = asyncio.ensure_future(inserts.insert({"_id": "first", "email": "first@x.org"}))
        await asyncio.sleep(0)  # its write has started
        await asyncio.gather(first, *(inserts.insert({"_id": f"q{i}", "email": f"q{i}@x.org"}) for i in range(5)))
        assert commands.documents[1:] == [1, 5]

        await inserts.insert({"_id": "later", "email": "later@x.org"})  # a lone insert goes at once
        assert commands.documents[-1] == 1 and await people.count_documents({"_id": "later"}) == 1

        # Updates the same way, each to its own document.
        await asyncio.gather(*(inserts.update(f"p{i}", {"$set": {"seen": i}}) for i in range(10, 20)))
        assert commands.updates == [10]
        assert {d["_id"]: d["seen"] async for d in people.find({"seen": {"$exists": True}})} == {
            f"p{i}": i for i in range(10, 20)
        }
    finally:
        await client.drop_database(namespace)
        await client.close()
