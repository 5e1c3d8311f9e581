"""The local FerretDB build finds documents by _id through its index, also under a condition.

FerretDB 1.24 as released scans the whole collection for both (see FERRETDB_EDITS in
aimms_deploy/stack/ferretdb.py); every version-guarded write and outbox claim is such a lookup.
"""

import uuid

import pytest
from pymongo import AsyncMongoClient

from .conftest import Infrastructure


async def test_lookups_by_id_use_the_index_even_beside_other_conditions(infrastructure: Infrastructure) -> None:
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri)
    database = client[f"lookups_{uuid.uuid4().hex[:8]}"]
    try:
        if "ferretdbVersion" not in await client.admin.command("buildInfo"):
            pytest.skip("a real MongoDB: its planner is not the one being checked")
        await database["docs"].insert_many([{"_id": f"d{i}", "version": 1} for i in range(20)])
        for query in ({"_id": "d17"}, {"_id": "d17", "version": 1}):
            explained = await database.command("explain", {"find": "docs", "filter": query})
            [step] = explained["queryPlanner"]["Plan"]
            assert "USING INDEX" in step, (query, step)
        # The other conditions still decide: FerretDB checks them on what the index found.
        guarded = await database["docs"].update_one({"_id": "d17", "version": 2}, {"$set": {"version": 3}})
        assert guarded.matched_count == 0
        assert (await database["docs"].update_one({"_id": "d17", "version": 1}, {"$inc": {"version": 1}})).matched_count
        assert await database["docs"].find_one({"_id": "d17", "version": 2}) == {"_id": "d17", "version": 2}
    finally:
        await client.drop_database(database.name)
        await client.close()
