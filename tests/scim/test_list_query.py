"""The list parameters' shortcut (no marshmallow for what nearly every request sends) gives exactly
what the schema gives, and leaves everything else, errors included, to the schema."""
from __future__ import annotations

import pytest

from schemas.messages import LIST_QUERY, load_list_query, load_message
from scim_server.scim.errors import ScimError

SAME = [
    {},
    {"filter": 'userName eq "a@example.com"'},
    {"filter": "   "},
    {"filter": ""},
    {"Filter": 'userName eq "a"'},
    {"filter": 'userName eq "a"', "count": "5"},
    {"attributes": "userName, emails"},
    {"excludedAttributes": "groups"},
    {"startIndex": "3", "count": "0"},
    {"sortBy": "userName", "sortOrder": " Descending "},
    {"unknown": "x"},
]


@pytest.mark.parametrize("query", SAME, ids=[str(q) for q in SAME])
def test_the_shortcut_gives_what_the_schema_gives(query: dict[str, str]) -> None:
    assert load_list_query(dict(query)) == load_message(LIST_QUERY, dict(query), "invalidValue")


@pytest.mark.parametrize("query", [{"count": "many"}, {"sortOrder": "sideways"}, {"startIndex": "x", "filter": "a"}])
def test_bad_parameters_are_still_refused(query: dict[str, str]) -> None:
    with pytest.raises(ScimError) as caught:
        load_list_query(query)
    assert caught.value.status == 400 and caught.value.scim_type == "invalidValue"


def test_the_answer_is_a_fresh_dict_each_time() -> None:
    first = load_list_query({})
    first["filter"] = "changed"
    assert load_list_query({})["filter"] is None
