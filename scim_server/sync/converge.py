"""Converging one marked entity (user, group or organization) from its desired state to JSM.

Units and order (see docs/propagation.md): a *user* converge ensures the user's JSM account and
marks the organizations whose membership of that account must change; a *group* converge marks
the organizations it maps to now and mapped to before; an *organization* converge diffs the full
desired membership against what the bridge applied and sends batched calls. Workers claim user
marks first, so an initial push costs one call per user and a few per organization.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy.orm import Session, sessionmaker

from jsm_client import Customer, JsmBadRequest, JsmClient, JsmConflict, JsmNotFound, JsmUnavailable
from scim_server.db import transaction
from scim_server.models.sync import JsmAccount
from scim_server.store.marks import mark_organization
from scim_server.sync import facts, outbox, ownership, planner, state
from scim_server.sync.applier import Applier, ApplyReport, GuardManaged, PropagationError, log_effect
from scim_server.sync.differ import AppliedOrganization, OrganizationPlan, diff_organization
from scim_server.sync.jsm import JsmCatalog
from scim_server.sync.names import organization_key
from scim_server.sync.planner import UserFacts
from scim_server.sync.policy import SyncPolicy
from scim_server.sync.rules import Rules

log = logging.getLogger(__name__)

#: An organization converge heals at most twice (JSM lost the organization, then member accounts)
#: before a third, final round; whatever is still refused then is a problem, not a loop.
HEALING_ROUNDS = (False, False, True)


class AccountNotFound(PropagationError):
    """JSM has an account for the e-mail (it refuses to create another) but no lookup returns it."""

    def __init__(self, email: str) -> None:
        super().__init__(
            f"JSM already has an account for {email!r} but neither user search nor any service desk's customer "
            "search returns it (typical of an Atlassian account whose profile hides its e-mail). In JSM, add "
            f"{email} as a customer of one of the service desks (project settings > Customers > Add customers), "
            "or make the account's e-mail visible; then run `jsm-scim sync retry`")


@dataclass(frozen=True)
class Outcome:
    """Result of converging one entity: ``blocked`` holds why it cannot be converged as is."""

    account_id: str | None = None
    blocked: str | None = None
    organizations: frozenset[str] = frozenset()


class Converger:
    def __init__(self, session_factory: sessionmaker[Session], client: JsmClient, rules: Rules,
                 *, batch_size: int = 50, catalog: JsmCatalog | None = None, policy: SyncPolicy | None = None) -> None:
        self.session_factory = session_factory
        self.client = client
        self.rules = rules
        self.policy = policy or SyncPolicy()
        self.catalog = catalog or JsmCatalog(client)
        self.applier = Applier(session_factory, client, self.catalog, batch_size, self.policy)

    def converge(self, kind: str, entity_id: str) -> Outcome:
        if kind == outbox.USER:
            return self.converge_user(entity_id)
        if kind == outbox.GROUP:
            return self.converge_group(entity_id)
        if kind == outbox.ORGANIZATION:
            report = self.converge_organization(entity_id)
            return Outcome(blocked="; ".join(report.problems) or None)
        raise PropagationError(f"unknown mark kind {kind!r}")

    # ------------------------------------------------------------------------------ users

    def converge_user(self, user_id: str) -> Outcome:
        """Ensure the account of an active user; mark organizations whose membership must change."""
        outcome = self.converge_users([user_id])[user_id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def converge_users(self, user_ids: list[str]) -> dict[str, Outcome | Exception]:
        """``converge_user`` for a batch: one read and one write transaction around the JSM calls.

        A JSM failure affects only its own user (returned as the exception, not raised).
        """
        with transaction(self.session_factory) as session:
            users = facts.load_users(session, user_ids)
            known = state.accounts_of(session, user_ids)
            groups = facts.group_names_of_users(session, list(users))
            wanting = self._wanting_accounts(users)
            accounts = {uid: self._recorded_account(session, users[uid], email) for uid, email in wanting.items()}
        results: dict[str, Outcome | Exception] = self._revoke_deleted(user_ids, users, known)
        refused: dict[str, str] = {}
        created: dict[str, tuple[Customer, bool]] = {}
        outage: JsmUnavailable | None = None  # JSM down or too slow: fail the rest at once, visibly
        for user_id, email in wanting.items():
            if accounts[user_id] is not None:
                continue
            if outage is not None:
                results[user_id] = outage
                continue
            try:
                created[user_id] = self._create_or_find(email, planner.customer_display_name(users[user_id], email))
            except JsmBadRequest as exc:  # JSM refuses this e-mail: only a change of the user can help
                refused[user_id] = f"JSM refused to create a customer for {email!r}: {exc.message}"
            except AccountNotFound as exc:  # only the admin can help: visible, not retried forever
                refused[user_id] = str(exc)
            except Exception as exc:  # noqa: BLE001 - recorded on this user's mark by the caller
                results[user_id] = exc
                outage = exc if isinstance(exc, JsmUnavailable) else None
        with transaction(self.session_factory) as session:
            for user_id, message in self._foreign_accounts(session, users, accounts, created).items():
                refused[user_id] = message
                accounts[user_id] = None
                created.pop(user_id, None)
                if user_id in known:  # recorded before this guard existed: the other directory keeps it
                    state.forget_account(session, user_id)
            for user_id, (customer, was_created) in created.items():
                previous = known[user_id].email if user_id in known else None
                self._save_account(session, users[user_id], wanting[user_id], customer, was_created,
                                   previous=previous)
                accounts[user_id] = customer.account_id
            pending = [uid for uid in user_ids if uid not in results]
            held = state.organizations_by_account(
                session, [a for uid in pending for a in (accounts.get(uid), _account_id(known.get(uid)))]
            )
            owners = ownership.owners_of(session, {
                grant.organization for uid in pending if uid in users
                for grant in planner.user_grants(self.rules, users[uid], groups.get(uid, []))})
            for user_id in pending:
                results[user_id] = self._user_outcome(users.get(user_id), groups.get(user_id, []),
                                                      accounts.get(user_id), _account_id(known.get(user_id)), held,
                                                      refused.get(user_id), owners)
            touched = set().union(*(r.organizations for r in results.values() if isinstance(r, Outcome)))
            mark_organizations(session, touched)
        return results

    def _revoke_deleted(self, user_ids: list[str], users: dict[str, UserFacts], known: dict[str, JsmAccount]
                        ) -> dict[str, Outcome | Exception]:
        """With ``revoke_portal_access_on_delete``: revoke the portal-only access of the accounts the
        bridge created for users deleted in the IdP (irreversible through the API: only an admin in
        Atlassian Administration can grant it again). Returns the failures by user."""
        if not self.policy.revoke_portal_access_on_delete:
            return {}
        failures: dict[str, Outcome | Exception] = {}
        for user_id in user_ids:
            account = known.get(user_id)
            if user_id in users or account is None or not account.created_by_bridge:
                continue
            try:
                self.client.revoke_portal_only_access(account.account_id)
                log.info("revoked the portal-only access of %s (user %s deleted)", account.account_id, user_id)
            except JsmNotFound:
                pass  # JSM no longer has the account: nothing left to revoke
            except Exception as exc:  # noqa: BLE001 - recorded on this user's mark by the caller
                failures[user_id] = exc
        return failures

    @staticmethod
    def _foreign_accounts(session: Session, users: dict[str, UserFacts], accounts: dict[str, str | None],
                          created: dict[str, tuple[Customer, bool]]) -> dict[str, str]:
        """Users whose JSM account (one per e-mail in JSM) already belongs to a user of another
        directory: ``user id -> why``. Such a user gets no account and no access, so one directory
        can never put another directory's customer into its organizations. A directory keeps an
        account it recorded first; of two older records the lower directory id keeps it."""
        wanted = {uid: account for uid, account in accounts.items() if account is not None}
        wanted.update({uid: customer.account_id for uid, (customer, _) in created.items()})
        holders = state.account_holders(session, wanted.values())
        names = facts.directory_names(session)
        found: dict[str, str] = {}
        for user_id, account_id in wanted.items():
            user = users[user_id]
            recorded = user_id in {uid for uid, _ in holders.get(account_id, [])}
            others = [d for uid, d in holders.get(account_id, []) if d != user.directory_id
                      and (not recorded or d < user.directory_id)]
            if others:
                found[user_id] = (f"the JSM account of {planner.account_email(user)!r} already belongs to a user "
                                  f"of directory {names.get(others[0], others[0])}; claim the e-mail domain for one "
                                  "directory (jsm-scim directories set) or remove the duplicate user")
        return found

    @staticmethod
    def _wanting_accounts(users: dict[str, UserFacts]) -> dict[str, str]:
        """Active users with a usable e-mail: those who must have a JSM account."""
        wanting = {}
        for user_id, user in users.items():
            email = planner.account_email(user)
            if user.active and email is not None:
                wanting[user_id] = email
        return wanting

    def _user_outcome(self, user: UserFacts | None, groups: list[str], account_id: str | None,
                      previous_account: str | None, held: dict[str, set[str]], refused: str | None,
                      owners: planner.Owners) -> Outcome:
        """The organizations where this user's membership differs from what the bridge applied.

        A user without access (deleted, inactive, blocked) keeps its previous account id here, so
        the memberships the bridge granted to that account are revoked.
        """
        blocked = refused or (_no_email_reason(user) if user is not None and planner.account_email(user) is None
                              else None)
        has_access = user is not None and user.active and blocked is None
        account_id = account_id if has_access else previous_account
        wanted = (planner.user_organizations(self.rules, user, groups, owners)
                  if has_access and user is not None else set())
        held_now = held.get(account_id, set()) if account_id else set()
        held_before = held.get(previous_account, set()) if previous_account and previous_account != account_id else set()
        changed = ((wanted - held_now) if account_id else set()) | (held_now - wanted) | held_before
        return Outcome(account_id if has_access else None, blocked=blocked, organizations=frozenset(changed))

    def ensure_account(self, user: UserFacts, email: str) -> str:
        """The user's JSM account for ``email``: recorded, else created, else (on conflict) found.

        Create-first costs one call for a new customer (find-first would cost two); a conflict
        means the e-mail already has an account, which is then looked up and adopted.
        """
        with transaction(self.session_factory) as session:
            account_id = self._recorded_account(session, user, email)
            previous = state.account_of(session, user.id)
            previous_email = previous.email if previous else None
        if account_id is not None:
            return account_id
        customer, created = self._create_or_find(email, planner.customer_display_name(user, email))
        with transaction(self.session_factory) as session:
            foreign = self._foreign_accounts(session, {user.id: user}, {}, {user.id: (customer, created)})
            if foreign:
                raise PropagationError(foreign[user.id])
            self._save_account(session, user, email, customer, created, previous=previous_email)
        return customer.account_id

    def _recorded_account(self, session: Session, user: UserFacts, email: str) -> str | None:
        """The recorded account when it was made for ``email``; notes a display name JSM cannot take."""
        account = state.account_of(session, user.id)
        if account is None or account.email.casefold() != email.casefold():
            return None
        display_name = planner.customer_display_name(user, email)
        if state.note_desired_display_name(session, user.id, display_name):
            log.warning("JSM cannot rename customer %s; display name %r recorded but not applied",
                        account.account_id, display_name)
        return account.account_id

    def _save_account(self, session: Session, user: UserFacts, email: str, customer: Customer, created: bool,
                      *, previous: str | None) -> None:
        if previous is not None and previous.casefold() != email.casefold():
            log.warning("user %s changed e-mail; JSM cannot change a customer's e-mail, so access moves "
                        "to account %s (the old account is kept)", user.id, customer.account_id)
        if created:
            log_effect("customer created", f"user {user.id}", "POST /rest/servicedeskapi/customer",
                       user.directory or str(user.directory_id), account_id=customer.account_id)
        state.save_account(session, user_id=user.id, directory_id=user.directory_id, email=email,
                           account_id=customer.account_id,
                           display_name=customer.display_name or planner.customer_display_name(user, email),
                           created=created)

    def _create_or_find(self, email: str, display_name: str) -> tuple[Customer, bool]:
        try:
            return self.client.create_customer(email, display_name), True
        except JsmConflict as exc:
            found = exc.existing or self.client.find_customer_by_email(email)
            if found is None:
                raise AccountNotFound(email) from exc
            return found, False

    # ----------------------------------------------------------------------------- groups

    def converge_group(self, group_id: str) -> Outcome:
        """Mark the organization the group maps to now and those it mapped to before."""
        with transaction(self.session_factory) as session:
            group = facts.load_group(session, group_id)
            target = planner.organization_for_group(self.rules, group.display_name, group.directory) if group else None
            now = {ownership.canonical_name(session, target)} if target else set()
            affected = now | state.group_targets(session, group_id)
            mark_organizations(session, affected)
            state.set_group_targets(session, group_id, now)
        return Outcome(organizations=frozenset(affected))

    # ---------------------------------------------------------------------- organizations

    def plan_organization(self, name: str) -> tuple[planner.DesiredOrganization, dict[str, UserFacts]]:
        with transaction(self.session_factory) as session:
            return plan_from_store(session, self.rules, name)

    def converge_organization(self, name: str) -> ApplyReport:
        """Diff and apply; when JSM lost the organization or member accounts the bridge recorded,
        heal (recreate them) and run another round (``HEALING_ROUNDS``), so the job ends with JSM
        as desired."""
        with transaction(self.session_factory) as session:
            canonical = ownership.canonical_name(session, name)
            if canonical != name:  # another spelling of a known organization: converge that one
                mark_organizations(session, [canonical])
                return ApplyReport()
        report = ApplyReport()
        try:
            self._converge_rounds(name, report)
        except GuardManaged as exc:  # a visible conflict, not a job failing forever
            with transaction(self.session_factory) as session:
                ownership.record_guard_conflict(session, name, str(exc))
        return report

    def _converge_rounds(self, name: str, report: ApplyReport) -> None:
        for final in HEALING_ROUNDS:
            desired, users = self.plan_organization(name)
            with transaction(self.session_factory) as session:
                accounts = state.accounts_matching(session, desired.members)
                applied = state.applied_organization(session, name)
            accounts.update(self.accounts_for_new_members(desired, users, accounts))
            plan = diff_organization(planner.resolve_accounts(desired, accounts), applied,
                                     keep_deleted=self.policy.keep_deleted_organizations)
            if plan.empty:
                break
            if not self.apply_round(plan, applied, report, final=final, name=name):
                break

    def apply_round(self, plan: OrganizationPlan, applied: AppliedOrganization | None, report: ApplyReport, *, final: bool,
                    name: str) -> bool:
        """Apply one plan into ``report``; True when JSM lost something and another round is due."""
        outcome = self.applier.apply(plan, applied)
        missing, outcome.missing_accounts = outcome.missing_accounts, set()
        lost = outcome.organization_lost
        outcome.organization_lost = False
        report.merge(outcome)
        if missing:
            replaced, problems = self.heal_accounts(missing, name, final=final)
            report.accounts_replaced += replaced
            report.problems.extend(problems)
        if final and lost:
            raise PropagationError(f"JSM organization {name!r} disappeared again while it was being recreated")
        return (bool(missing) or lost) and not final

    def heal_accounts(self, account_ids: set[str], organization: str | None, *, final: bool = False
                      ) -> tuple[int, list[str]]:
        """Accounts JSM refused as members of ``organization`` (or, with ``None``, that JSM's user
        lookup does not show): create each user's customer again, or adopt the one JSM has for the
        e-mail, and record it. Returns (accounts replaced, problems left).

        Creating is also the test: JSM answers a conflict while it still has an account for the
        e-mail, and the recorded one is then kept unless a lookup finds another. The organizations
        the old accounts were in are marked, so their memberships move to the new accounts.
        """
        with transaction(self.session_factory) as session:
            rows = state.accounts_with_ids(session, account_ids)
            users = facts.load_users(session, [row.user_id for row in rows])
        where = f" as a member of {organization!r}" if organization else ""
        problems: list[str] = []
        replaced: dict[str, tuple[UserFacts, str, Customer, bool]] = {}
        for row in rows:
            user = users.get(row.user_id)
            if user is None:  # a deleted user needs no account
                continue
            if final:
                problems.append(f"JSM still refuses account {row.account_id} ({row.email}){where}")
                continue
            try:
                customer, created = self._create_or_find(row.email, planner.customer_display_name(user, row.email))
            except (JsmBadRequest, AccountNotFound) as exc:
                problems.append(str(exc))
                continue
            if customer.account_id == row.account_id:
                if organization:
                    problems.append(f"JSM refuses account {row.account_id} ({row.email}){where} although it has it")
                continue
            log.warning("JSM no longer has account %s of %s; %s %s", row.account_id, row.email,
                        "created" if created else "adopted", customer.account_id)
            replaced[row.account_id] = (user, row.email, customer, created)
        if replaced:
            with transaction(self.session_factory) as session:
                foreign = self._foreign_accounts(session, {u.id: u for u, *_ in replaced.values()}, {},
                                                 {u.id: (c, made) for u, _, c, made in replaced.values()})
                problems.extend(foreign.values())
                replaced = {old: entry for old, entry in replaced.items() if entry[0].id not in foreign}
                held = state.forget_missing_accounts(session, replaced)
                for user, email, customer, created in replaced.values():
                    self._save_account(session, user, email, customer, created, previous=None)
                mark_organizations(session, held - {organization or ""})
        return len(replaced), problems

    def accounts_for_new_members(self, desired: planner.DesiredOrganization, users: dict[str, UserFacts],
                                  accounts: dict[str, str]) -> dict[str, str]:
        """Create accounts for desired members that have none yet and no pending user mark.

        A member whose user mark is pending is left to that mark: another worker may be creating
        its account right now, and the user's converge marks this organization again once the
        account exists. A member JSM refuses (400) is left out here; its own user mark carries
        the error.
        """
        missing = [user_id for user_id in desired.members if user_id not in accounts]
        if not missing:
            return {}
        with transaction(self.session_factory) as session:
            queued = outbox.pending_users(session, missing)
        created: dict[str, str] = {}
        for user_id in missing:
            if user_id in queued:
                continue
            email = desired.members[user_id]
            try:
                created[user_id] = self.ensure_account(users[user_id], email)
            except (JsmBadRequest, PropagationError) as exc:
                log.warning("organization %r: member %s left out: %s", desired.name, user_id, exc)
        return created


def plan_from_store(session: Session, rules: Rules, name: str, *, record: bool = True
                    ) -> tuple[planner.DesiredOrganization, dict[str, UserFacts]]:
    """The planner's desired state of organization ``name`` from stored users and groups.

    Only the directories the organization belongs to count (its owner, or those it is shared
    with); an organization nobody owns yet becomes the property of the first directory leading
    there (``planner.first_owner``). Leads of other directories are refused and recorded as
    conflicts. ``record=False`` (a dry run) decides the same way but writes nothing.
    """
    groups = facts.candidate_groups(session, rules, name)
    candidates = facts.domain_candidates(session, rules, name)
    found = planner.leads(rules, name, groups, candidates)
    owners = ownership.owners_of(session, [name])
    shared = rules.shared.get(organization_key(name))
    if owners.owner(name) is None and found:
        first = planner.first_owner([lead for lead in found if shared is None or lead.directory in shared])
        if first is not None:
            owners = (ownership.record_owner(session, name, first) if record
                      else planner.Owners({organization_key(name): (name, first)}))
    owner = owners.owner(name)
    allowed = shared if shared is not None else frozenset({owner} if owner else ())
    refused = [(lead, why) for lead in found if lead.directory not in allowed
               and (why := planner.refusal(rules, owners, name, lead.directory)) is not None]
    if record:
        ownership.record_conflicts(session, name, refused)
    mapped = planner.mapped_groups(rules, name, groups, allowed)
    members = facts.members_of_groups(session, [g.id for g in mapped])
    established = state.managed_organization(session, name) is not None
    desired = planner.plan_organization(rules, name, mapped, members, candidates, allowed, established)
    users = {u.id: u for group_users in members.values() for u in group_users}
    users.update({u.id: u for u in candidates})
    return desired, users


def all_organization_names(session: Session, rules: Rules) -> set[str]:
    """Every organization the bridge manages, some stored group maps to, or a domain rule targets
    (by their recorded spelling)."""
    owners = ownership.all_owners(session)
    produced = {planner.organization_for_group(rules, g.display_name, g.directory) for g in facts.all_groups(session)}
    domain_targets = set(rules.domains.values()) | {o for own in rules.directories.values() for o in own.domains.values()}
    names = {owners.canonical(n) for n in (produced | domain_targets) if n}
    return state.managed_organization_names(session) | names


def _account_id(account: JsmAccount | None) -> str | None:
    return account.account_id if account is not None else None


def _no_email_reason(user: UserFacts) -> str:
    return (f"user {user.user_name!r} has no usable e-mail address (no emails value and userName is not "
            "an e-mail): a JSM customer needs one")


def mark_organizations(session: Session, names: Iterable[str]) -> int:
    count = 0
    for name in sorted(set(names)):
        mark_organization(session, name)
        count += 1
    return count
