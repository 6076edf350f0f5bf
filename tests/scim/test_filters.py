"""SCIM filters: parsing, rejection, and SQL translation run against SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from scim_server.db import make_engine, make_session_factory
from scim_server.models import Directory, Group, GroupMember, User, UserValue
from scim_server.scim.attributes import ENTERPRISE_SCHEMA, GROUP, USER, USER_SCHEMA, find_attribute
from scim_server.scim.errors import ScimError
from scim_server.scim.filter_ast import And, Comparison, Not, Or, ValuePath
from scim_server.scim.parser import parse_filter
from scim_server.scim.value_filters import value_filter_predicate
from scim_server.store.filter_sql import filter_to_sql, sort_expression

ENT = ENTERPRISE_SCHEMA


# ---------------------------------------------------------------------------------------------
# Test data: rows built through the models
# ---------------------------------------------------------------------------------------------

def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def make_user(session, directory_id: int, key: str, user_name: str, *, values=(), **columns) -> User:
    """A User row with its ``user_values`` rows: ``values`` is ``(attribute, value, type, primary)``."""
    columns.setdefault("created_at", utc(2024, 1, 1))
    columns.setdefault("updated_at", columns["created_at"])
    user = User(id=key, directory_id=directory_id, user_name=user_name, user_name_lower=user_name.lower(),
                document={"userName": user_name}, **columns)
    session.add(user)
    session.flush()
    for attribute, value, kind, primary in values:
        session.add(UserValue(user_id=key, attribute=attribute, value=value, value_lower=value.lower(),
                              type=kind, primary=primary))
    return user


def make_group(session, directory_id: int, key: str, name: str, members=(), **columns) -> Group:
    columns.setdefault("created_at", utc(2024, 1, 1))
    columns.setdefault("updated_at", columns["created_at"])
    group = Group(id=key, directory_id=directory_id, display_name=name, display_name_lower=name.lower(), **columns)
    session.add(group)
    session.flush()
    session.add_all(GroupMember(group_id=key, user_id=member) for member in members)
    return group


@pytest.fixture
def db(database_url):
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        directory = Directory(name="default")
        session.add(directory)
        session.flush()
        d = directory.id
        make_user(session, d, "alice", "Alice@Example.com", display_name="Alice Smith", given_name="Alice",
                  family_name="Smith", formatted_name="Alice Smith", title="Engineer", active=True,
                  external_id="ext-A", employee_number="1", department="R&D", manager_id="carol",
                  locale="en-US", timezone="Europe/Paris", user_type="Employee", preferred_language="en",
                  created_at=utc(2024, 1, 10), updated_at=utc(2024, 6, 1),
                  values=[("emails", "alice@acme.com", "work", True), ("emails", "Alice@Home.org", "home", False),
                          ("phoneNumbers", "+1 555 0100", "work", True)])
        make_user(session, d, "bob", "bob_100%@example.com", display_name="Bob", active=False,
                  external_id="EXT-B", locale="fr-FR", nick_name="Bobby", cost_center="CC1", organization="Acme",
                  division="North", created_at=utc(2024, 3, 1),
                  values=[("emails", "bob@other.com", "work", True), ("emails", "bob@acme.com", "home", False)])
        make_user(session, d, "carol", "carol", display_name='Carol "CJ" Jones', given_name="Carol",
                  nick_name="CJ", active=True, employee_number="3", department="Sales", title="",
                  created_at=utc(2023, 12, 31), values=[("roles", "admin", None, False)])
        make_group(session, d, "g-admins", "Admins", ["alice", "carol"], external_id="gx-1",
                   created_at=utc(2024, 2, 1))
        make_group(session, d, "g-quoted", 'Grp "x"', ["bob"])
        make_group(session, d, "g-empty", "Empty_Group")
    yield factory
    engine.dispose()


def matching(factory, resource_type: str, text: str) -> set[str]:
    model = User if resource_type == USER else Group
    with factory() as session:
        return set(session.scalars(select(model.id).where(filter_to_sql(resource_type, text))))


def check(factory, resource_type: str, cases: list[tuple[str, set[str]]]) -> None:
    failures = [(text, expected, matching(factory, resource_type, text)) for text, expected in cases]
    wrong = [f"{text!r}: expected {sorted(exp)}, got {sorted(got)}" for text, exp, got in failures if exp != got]
    assert not wrong, "\n".join(wrong)


ALL = {"alice", "bob", "carol"}


# ---------------------------------------------------------------------------------------------
# SQL translation on both backends
# ---------------------------------------------------------------------------------------------

def test_every_operator_on_strings(db):
    check(db, USER, [
        ('userName eq "alice@example.com"', {"alice"}),
        ('userName eq "ALICE@EXAMPLE.COM"', {"alice"}),  # caseExact false
        ('userName ne "carol"', {"alice", "bob"}),
        ('userName co "EXAMPLE"', {"alice", "bob"}),
        ('userName sw "al"', {"alice"}),
        ('userName ew ".COM"', {"alice", "bob"}),
        ('userName gt "c"', {"carol"}),
        ('userName ge "bob_100%@example.com"', {"bob", "carol"}),
        ('userName lt "b"', {"alice"}),
        ('userName le "carol"', ALL),
        ('userName pr', ALL),
        ('title pr', {"alice"}),  # carol's empty title is not "present"
        ('title eq "engineer"', {"alice"}),
        ('title ne "Engineer"', {"bob", "carol"}),  # absent and empty values are "not equal"
        ('title eq null', {"bob"}),
        ('displayName co "cj"', {"carol"}),
        ('nickName sw "bob"', {"bob"}),
        ('locale ew "-us"', {"alice"}),
        ('timezone eq "europe/paris"', {"alice"}),
        ('preferredLanguage eq "EN"', {"alice"}),
        ('userType eq "employee"', {"alice"}),
    ])


def test_case_exact_attributes_compare_exactly(db):
    check(db, USER, [
        ('externalId eq "ext-A"', {"alice"}),
        ('externalId eq "EXT-A"', set()),
        ('externalId co "xt-a"', set()),
        ('externalId co "XT-B"', {"bob"}),
        ('externalId sw "EXT"', {"bob"}),
        ('externalId sw "ext"', {"alice"}),
        ('externalId ew "-a"', set()),
        ('externalId ew "-A"', {"alice"}),
        ('externalId ew "longer-than-the-value-A"', set()),
        ('id eq "alice"', {"alice"}),
        ('id eq "ALICE"', set()),
    ])


def test_name_booleans_dates_and_meta(db):
    check(db, USER, [
        ('name.givenName eq "alice"', {"alice"}),
        ('name.familyName sw "Sm"', {"alice"}),
        ('name.formatted co "ce sm"', {"alice"}),
        ('name pr', {"alice", "carol"}),
        ('name[givenName eq "Carol"]', {"carol"}),
        ('active eq true', {"alice", "carol"}),
        ('active eq false', {"bob"}),
        ('active ne true', {"bob"}),
        ('active pr', ALL),
        ('active eq "True"', {"alice", "carol"}),  # boolean sent as a string
        ('meta.created gt "2024-01-01T00:00:00Z"', {"alice", "bob"}),
        ('meta.created lt "2024-01-01T00:00:00+00:00"', {"carol"}),
        ('meta.created ge "2024-03-01T00:00:00Z"', {"bob"}),
        ('meta.created le "2024-01-10T00:00:00Z"', {"alice", "carol"}),
        ('meta.created eq "2024-01-10T00:00:00Z"', {"alice"}),
        ('meta.created gt "2024-01-10T01:00:00+02:00"', {"alice", "bob"}),  # 2024-01-09T23:00Z
        ('meta.lastModified gt "2024-05-01T00:00:00Z"', {"alice"}),
        ('meta.resourceType eq "User"', ALL),
    ])


def test_logic_grouping_and_precedence(db):
    check(db, USER, [
        ('userName eq "carol" or active eq false', {"bob", "carol"}),
        ('active eq true and title pr', {"alice"}),
        # "and" binds tighter than "or" (RFC 7644 §3.4.2.2)
        ('userName sw "bob" or userName eq "carol" and active eq false', {"bob"}),
        ('(userName eq "bob" or userName eq "carol") and active eq true', {"carol"}),
        ('not (active eq true)', {"bob"}),
        ('not (title eq "Engineer")', {"bob", "carol"}),  # NULL-safe negation
        ('not (title pr) and not (userName sw "b")', {"carol"}),
        ('not (not (userName eq "alice@example.com"))', {"alice"}),
        ('((userName eq "alice@example.com"))', {"alice"}),
        ('userName eq "alice@example.com" and (displayName co "smith" or nickName pr)', {"alice"}),
    ])


def test_case_insensitive_names_and_operators(db):
    check(db, USER, [
        ('USERNAME EQ "carol"', {"carol"}),
        ('username Eq "CAROL"', {"carol"}),
        ('Emails[TYPE eq "work" AND Value CO "@ACME.com"]', {"alice"}),
        ('active EQ TRUE', {"alice", "carol"}),
        ('NOT (Active eq True) Or userName eq "alice@example.com"', {"alice", "bob"}),
        ('URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME eq "carol"', {"carol"}),
    ])


def test_multi_valued_attributes_are_exists_queries(db):
    check(db, USER, [
        ('emails eq "bob@acme.com"', {"bob"}),
        ('emails.value eq "ALICE@home.org"', {"alice"}),
        ('emails co "@acme.com"', {"alice", "bob"}),
        ('emails.type eq "work"', {"alice", "bob"}),
        ('emails pr', {"alice", "bob"}),
        ('emails.primary eq true', {"alice", "bob"}),
        ('emails[type eq "work" and value co "@acme.com"]', {"alice"}),  # same value, not any two
        ('emails[type eq "home" and value co "@acme.com"]', {"bob"}),
        ('emails[type eq "work"] and emails[value co "@acme.com"]', {"alice", "bob"}),
        ('emails[not (type eq "work")]', {"alice", "bob"}),
        ('emails[type eq "home" or primary eq true]', {"alice", "bob"}),
        ('not (emails pr)', {"carol"}),
        ('phoneNumbers[type eq "work"]', {"alice"}),
        ('phoneNumbers.value sw "+1"', {"alice"}),
        ('roles eq "ADMIN"', {"carol"}),
        ('roles pr and emails pr', set()),
        ('groups eq "g-admins"', {"alice", "carol"}),
        ('groups[value eq "g-quoted"]', {"bob"}),
        ('groups.display eq "admins"', {"alice", "carol"}),
    ])


def test_enterprise_extension_and_fully_qualified_names(db):
    check(db, USER, [
        (f'{ENT}:employeeNumber eq "1"', {"alice"}),
        (f'{ENT}:department eq "r&d"', {"alice"}),
        (f'{ENT}:department pr', {"alice", "carol"}),
        (f'{ENT}:manager.value eq "carol"', {"alice"}),
        (f'{ENT}:manager pr', {"alice"}),
        (f'{ENT}:manager[value eq "carol"]', {"alice"}),
        (f'{ENT}:manager[value pr].value eq "carol"', {"alice"}),
        (f'{ENT}:costCenter eq "CC1"', {"bob"}),
        (f'{ENT}:organization eq "acme"', {"bob"}),
        (f'{ENT}:division sw "no"', {"bob"}),
        (f'{ENT}:employeeNumber eq 3', {"carol"}),  # a JSON number compared with a string attribute
        (f'{USER_SCHEMA}:userName eq "carol"', {"carol"}),
        (f'{USER_SCHEMA}:name.givenName eq "Carol"', {"carol"}),
    ])


def test_identity_provider_dialects(db):
    """The filters Okta, Entra ID and JumpCloud send (reference/IDP-DIALECTS.md)."""
    check(db, USER, [
        ('userName eq "Alice@Example.com"', {"alice"}),  # Okta, Entra, JumpCloud
        ('userName eq "4f1c6bd6-2a93-4a63-b8e5-9d4a7e4f9c10"', set()),  # Entra's test connection
        ('externalId eq "EXT-B"', {"bob"}),  # Entra
        ('emails[type eq "work"].value eq "alice@acme.com"', {"alice"}),  # Entra
        ('emails[type eq "home"].value eq "alice@acme.com"', set()),  # both on one value
        ('userName eq "carol" and active eq true', {"carol"}),
    ])
    check(db, GROUP, [('displayName eq "Admins"', {"g-admins"})])  # Okta, Entra


def test_group_filters(db):
    check(db, GROUP, [
        ('displayName eq "admins"', {"g-admins"}),
        ('displayName eq "Grp \\"x\\""', {"g-quoted"}),  # escaped quotes
        ('displayName co "\\""', {"g-quoted"}),
        ('externalId eq "gx-1"', {"g-admins"}),
        ('externalId pr', {"g-admins"}),
        ('id eq "g-empty"', {"g-empty"}),
        ('members.value eq "alice"', {"g-admins"}),
        ('members eq "bob"', {"g-quoted"}),
        ('members[value eq "carol"]', {"g-admins"}),
        ('members pr', {"g-admins", "g-quoted"}),
        ('not (members pr)', {"g-empty"}),
        ('members.display eq "bob"', {"g-quoted"}),
        ('members[value eq "alice"] and members[value eq "carol"]', {"g-admins"}),
        ('meta.created gt "2024-01-15T00:00:00Z"', {"g-admins"}),
    ])


def test_like_wildcards_are_literal(db):
    check(db, USER, [
        ('userName co "%"', {"bob"}),
        ('userName co "_"', {"bob"}),
        ('userName sw "_"', set()),
        ('userName ew "%"', set()),
        ('userName co "b_100%"', {"bob"}),
        ('userName co "/"', set()),  # the escape character itself
        ('userName co "\\\\"', set()),
        ('externalId co "%"', set()),
    ])
    check(db, GROUP, [('displayName co "_"', {"g-empty"}), ('displayName sw "%"', set())])


def test_injection_attempts_are_data(db):
    check(db, USER, [
        ('userName eq "x\' OR \'1\'=\'1"', set()),
        ('userName eq "carol\\" or userName pr or userName eq \\""', set()),
        ('displayName eq "Robert\'); DROP TABLE users;--"', set()),
        ('userName co "\'"', set()),
    ])
    assert matching(db, USER, "userName pr") == ALL  # the table is still there


def without(ids: list[str], absent: str) -> list[str]:
    return [i for i in ids if i != absent]


def test_sorting(db):
    def order(sort_by: str, descending: bool = False) -> list[str]:
        expression = sort_expression(USER, sort_by)
        expression = expression.desc() if descending else expression.asc()
        with db() as session:
            return list(session.scalars(select(User.id).order_by(expression, User.id)))

    assert order("userName") == ["alice", "bob", "carol"]
    assert order("USERNAME", descending=True) == ["carol", "bob", "alice"]
    assert order("meta.created") == ["carol", "alice", "bob"]
    # NULL placement differs by backend: compare the users that have a value
    assert without(order(f"{ENT}:employeeNumber"), "bob") == ["alice", "carol"]
    assert without(order("emails"), "carol") == ["alice", "bob"]  # by primary email: alice@acme < bob@other
    assert without(order("emails.value", descending=True), "carol") == ["bob", "alice"]
    assert without(order("emails.type"), "carol") == ["alice", "bob"]


# ---------------------------------------------------------------------------------------------
# Rejections (no database needed)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    'userName eq "a" and unknownAttr eq "x"',  # scim2-filter-parser would drop the unknown part
    'unknown pr',
    'name.unknown eq "x"',
    'userName.sub eq "x"',
    'urn:example:unknown:1.0:User:userName eq "x"',
    f'{ENT}:userName eq "x"',
    'employeeNumber eq "1"',  # extension attributes need their URN
    'emails[unknown eq "x"]',
    'emails[type eq "work" and emails.value eq "x"]',
    'emails[value eq "x"[type eq "y"]]',
    'name[givenName eq "x"] and name[emails eq "x"]',
    'userName eq',
    'userName "x"',
    'userName xx "x"',
    'userName regex "x"',
    'eq "x"',
    '(userName eq "x"',
    'userName eq "x")',
    'userName eq "x" and',
    'userName eq "x" userName eq "y"',
    'not userName eq "x"',
    'userName eq "unterminated',
    'userName eq "bad escape \\q"',
    'userName eq x',
    'userName eq "x" # comment',
    '',
    '   ',
    'active gt true',  # RFC 7644: booleans with gt/ge/lt/le are invalidFilter
    'active co "t"',
    'active eq "yes"',
    'active eq 1',
    'userName eq true',
    'meta.created gt "yesterday"',
    'meta.created co "2024"',
    'name eq "x"',
    'userName gt null',
    '(' * 60 + 'userName pr' + ')' * 60,
    'x509Certificates.value gt "a"',
])
def test_invalid_filters_are_rejected(text):
    with pytest.raises(ScimError) as caught:
        parse_filter(USER, text)
    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidFilter"
    assert caught.value.detail


@pytest.mark.parametrize("resource_type,text,fragment", [
    (USER, 'addresses[type eq "work"]', "addresses"),
    (USER, 'addresses.locality eq "Paris"', "addresses"),
    (USER, 'name.middleName eq "Q"', "name.middleName"),
    (USER, 'password eq "secret"', "password"),
    (USER, 'meta.version eq "W/\\"1\\""', "meta.version"),
    (USER, 'groups.type eq "direct"', "groups.type"),
    (GROUP, 'members.$ref pr', "members.$ref"),
    (GROUP, 'userName eq "x"', "userName"),
])
def test_unindexed_or_foreign_attributes_are_rejected(resource_type, text, fragment):
    with pytest.raises(ScimError) as caught:
        filter_to_sql(resource_type, text)
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidFilter")
    assert fragment in caught.value.detail


@pytest.mark.parametrize("sort_by,scim_type", [
    ("unknown", "invalidPath"),
    ("name", "invalidValue"),
    ("addresses", "invalidValue"),
    ("groups", "invalidValue"),
    ("name.middleName", "invalidValue"),
    ('emails[type eq "work"]', "invalidPath"),
])
def test_unsortable_attributes_are_rejected(sort_by, scim_type):
    with pytest.raises(ScimError) as caught:
        sort_expression(USER, sort_by)
    assert (caught.value.status, caught.value.scim_type) == (400, scim_type)


# ---------------------------------------------------------------------------------------------
# The AST
# ---------------------------------------------------------------------------------------------

def test_precedence_in_the_tree():
    tree = parse_filter(USER, 'userName eq "a" or userName eq "b" and not (active eq true)')
    assert isinstance(tree, Or)
    assert isinstance(tree.right, And) and isinstance(tree.right.right, Not)


def test_literals_are_typed_and_unescaped():
    tree = parse_filter(USER, r'displayName eq "a \"b\" \\ \u00e9 \n"')
    assert tree == Comparison(tree.path, "eq", 'a "b" \\ é \n')
    assert parse_filter(USER, "active eq FALSE").value is False
    assert parse_filter(GROUP, 'displayName eq "eq 5"').value == "eq 5"  # operators inside strings stay text
    created = parse_filter(USER, 'meta.created ge "2024-05-06T07:08:09.5Z"').value
    assert created == dt.datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=dt.timezone.utc)


def test_entra_value_path_with_sub_attribute_is_one_value_path():
    tree = parse_filter(USER, 'emails[type eq "work"].value eq "x@y"')
    assert isinstance(tree, ValuePath) and tree.path.attribute == "emails"
    assert tree.filter.right == Comparison(tree.filter.right.path, "eq", "x@y")
    assert tree.filter.right.path.sub_attribute == "value"


def test_canonical_names_in_the_tree():
    tree = parse_filter(USER, f"{ENT.upper()}:MANAGER.VALUE pr")
    assert (tree.path.schema, tree.path.attribute, tree.path.sub_attribute) == (ENT, "manager", "value")


# ---------------------------------------------------------------------------------------------
# Value-path predicates used by PATCH
# ---------------------------------------------------------------------------------------------

def predicate(resource_type: str, attribute: str, text: str):
    tree = parse_filter(resource_type, f"{attribute}[{text}]")
    return value_filter_predicate(tree.filter, find_attribute(resource_type, tree.path.schema, tree.path.attribute))


def test_value_filter_predicate_on_emails():
    work_at_acme = predicate(USER, "emails", 'type eq "work" and value co "@ACME.com"')
    assert work_at_acme({"type": "work", "value": "a@acme.com"})
    assert work_at_acme({"Type": "WORK", "Value": "a@Acme.com"})  # keys and caseExact=false values
    assert not work_at_acme({"type": "home", "value": "a@acme.com"})
    assert not work_at_acme({"type": "work"})
    assert not work_at_acme("a@acme.com")
    assert predicate(USER, "emails", "primary eq true")({"value": "x", "primary": True})
    assert not predicate(USER, "emails", "primary eq true")({"value": "x"})
    assert predicate(USER, "emails", 'not (type eq "work")')({"value": "x"})
    assert predicate(USER, "emails", "display pr or type pr")({"type": "home"})
    assert predicate(USER, "emails", 'value sw "a" and value ew "z"')({"value": "abcz"})
    assert predicate(USER, "emails", 'value gt "m"')({"value": "n"})


def test_value_filter_predicate_on_members_is_case_exact():
    member = predicate(GROUP, "members", 'value eq "AbC"')
    assert member({"value": "AbC", "display": "x"})
    assert not member({"value": "abc"})
    assert predicate(GROUP, "members", 'value ne "x"')({"value": "y"})


def test_value_filter_predicate_on_enterprise_manager():
    manager = predicate(USER, f"{ENT}:manager", 'value eq "m1"')
    assert manager({"value": "m1"}) and not manager({"value": "m2"})


# ---------------------------------------------------------------------------------------------
# Over HTTP, through the Users and Groups views
# ---------------------------------------------------------------------------------------------

def create_user(client, auth, user_name: str, work_email: str) -> str:
    response = client.post("/scim/v2/Users", headers=auth, json={
        "schemas": [USER_SCHEMA], "userName": user_name, "active": True,
        "emails": [{"value": work_email, "type": "work", "primary": True}],
    })
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def search(client, auth, text: str, resource: str = "Users"):
    return client.get(f"/scim/v2/{resource}", headers=auth, query_string={"filter": text})


def test_filters_over_http(client, auth):
    first = create_user(client, auth, "first@acme.com", "first.work@acme.com")
    create_user(client, auth, "second_50%@acme.com", "second.work@other.com")
    found = search(client, auth, 'emails[type eq "work"].value eq "FIRST.WORK@acme.com"').get_json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == first
    assert search(client, auth, 'USERNAME EQ "First@ACME.com"').get_json()["totalResults"] == 1
    assert search(client, auth, 'userName co "%"').get_json()["totalResults"] == 1
    assert search(client, auth, 'userName eq "nobody@acme.com"').get_json()["totalResults"] == 0
    for bad in ('userName eq "a" and unknownAttr eq "x"', 'userName eq', 'addresses.locality eq "x"', "active gt true"):
        response = search(client, auth, bad)
        assert response.status_code == 400, bad
        assert response.get_json()["scimType"] == "invalidFilter", bad


def test_every_indexed_attribute_is_written_and_filterable(client, auth):
    """One map (store.columns) serves the store and the filters: a value written through POST is found
    by an ``eq`` filter and ordered by ``sortBy`` on each of its attributes."""
    from scim_server.store.columns import USER_DOCUMENT_COLUMNS

    def document(tag: str) -> dict:
        body = {"schemas": [USER_SCHEMA, ENT], "userName": f"{tag}@acme.com", ENT: {}}
        for path in USER_DOCUMENT_COLUMNS:
            section = body if path.schema == USER_SCHEMA else body[ENT]
            if path.sub_attribute:
                section.setdefault(path.attribute, {})[path.sub_attribute] = f"{tag}-{path.sub_attribute}"
            elif path.attribute != "userName":
                section[path.attribute] = f"{tag}-{path.attribute}"
        return body

    ids = {}
    for tag in ("b", "a"):
        response = client.post("/scim/v2/Users", json=document(tag), headers=auth)
        assert response.status_code == 201, response.get_json()
        ids[tag] = response.get_json()["id"]
    for path in USER_DOCUMENT_COLUMNS:
        value = "a@acme.com" if path.attribute == "userName" else f"a-{path.sub_attribute or path.attribute}"
        found = search(client, auth, f'{path} eq "{value}"').get_json()
        assert [r["id"] for r in found["Resources"]] == [ids["a"]], path
        ordered = client.get(f"/scim/v2/Users?sortBy={path}&attributes=id", headers=auth).get_json()
        assert [r["id"] for r in ordered["Resources"]] == [ids["a"], ids["b"]], path
