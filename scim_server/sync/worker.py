"""The propagation worker: claim marks, converge them, record the outcome. Any number may run.

``run_worker`` is used by ``jsm-scim worker`` (one per process, production) and by ``jsm-scim
serve`` (a background thread). A crash loses nothing: an unfinished mark's lease runs out and
another worker converges it again; every JSM step is idempotent and recorded as it happens.

Beside the claims, each worker keeps (in a keeper thread) the leases of the marks in hand, its
heartbeat and its share of JSM's rate limits (``sync.coordination``), re-queues dead marks once JSM
answers again (every ``sync_dead_retry_s``), and, with ``reconcile_every_s``, reconciles JSM with
the stored state (one worker of all per period).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from jsm_client import JsmClient, JsmError
from scim_server import metrics
from scim_server.db import rowcount, transaction, utcnow
from scim_server.key_expiry import warn_expiring_keys
from scim_server.models.sync import SyncRulesState
from scim_server.settings import Settings
from scim_server.sync import coordination, outbox
from scim_server.sync.applier import PropagationError
from scim_server.sync.converge import Converger, Outcome, all_organization_names, mark_organizations
from scim_server.sync.jsm import JsmCatalog, make_jsm_client
from scim_server.sync.policy import SyncPolicy
from scim_server.sync.rules import Rules, RulesError, RulesProvider

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL_S = 3600.0
#: How often the keeper thread renews leases and beats, at most (a third of the lease if shorter).
KEEPER_INTERVAL_S = 5.0
#: How often the worker looks for dead marks to revive and for a due reconcile.
DUTY_CHECK_INTERVAL_S = 60.0
DEFAULT_LEASE_SECONDS = 120.0
DEFAULT_CLAIM_BATCH = 20
_RULES_ROW = "rules"


@dataclass
class WorkerStats:
    done: int = 0
    failed: int = 0
    blocked: int = 0
    superseded: int = 0
    outcomes: list[str] = field(default_factory=list, repr=False)


class WorkerServices(Protocol):
    """What the worker needs of ``scim_server.services.Services`` (propagation imports no HTTP side)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def session_factory(self) -> sessionmaker[Session]: ...


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def register_queue_metrics(services: WorkerServices) -> None:
    """Expose queue depth, age and dead jobs on /metrics (``scim_server.metrics.register_queue_probe``)."""

    def queue() -> tuple[int, float | None, int]:
        with transaction(services.session_factory) as session:
            depth, oldest = outbox.queue_stats(session)
            return depth, oldest, outbox.status_counts(session)[outbox.DEAD]

    metrics.register_queue_probe(queue)


def apply_rules_change(session_factory: sessionmaker[Session], rules: Rules) -> int:
    """When the rules differ from those last propagated, mark every affected organization.

    Affected = organizations the bridge manages ∪ those groups map to now ∪ domain-rule targets.
    The digest swap is a conditional UPDATE, so exactly one of several workers does the marking.
    Returns how many organizations were marked.
    """
    with transaction(session_factory) as session:
        row = session.get(SyncRulesState, _RULES_ROW)
        if row is not None and row.digest == rules.digest:
            return 0
    try:
        with transaction(session_factory) as session:
            if not _swap_digest(session, rules.digest):
                return 0
            count = mark_organizations(session, all_organization_names(session, rules))
    except IntegrityError:  # another worker inserted the first digest at the same moment
        return 0
    if count:
        log.info("mapping rules changed: %d organizations marked for convergence", count)
    return count


def _swap_digest(session: Session, digest: str) -> bool:
    row = session.get(SyncRulesState, _RULES_ROW)
    if row is None:
        session.add(SyncRulesState(name=_RULES_ROW, digest=digest, updated_at=utcnow()))
        session.flush()
        return True
    result = session.execute(
        update(SyncRulesState)
        .where(SyncRulesState.name == _RULES_ROW, SyncRulesState.digest == row.digest)
        .values(digest=digest, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


class Worker:
    """One worker loop; ``client`` may be shared with the caller (then it is not closed)."""

    def __init__(self, services: WorkerServices, *, client: JsmClient | None = None, rules_provider: RulesProvider | None = None,
                 worker_id: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 claim_batch: int = DEFAULT_CLAIM_BATCH, poll_interval: float = 1.0) -> None:
        self.services = services
        self.settings = services.settings
        self._owns_client = client is None
        self.client = client or make_jsm_client(self.settings)
        self.catalog = JsmCatalog(self.client)
        self.rules_provider = rules_provider or RulesProvider(self.settings)
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self.claim_batch = claim_batch
        self.poll_interval = poll_interval
        self.stats = WorkerStats()
        self._held: list[outbox.Claim] = []
        self._held_lock = threading.Lock()
        self.keeper_interval = min(KEEPER_INTERVAL_S, lease_seconds / 3)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def run(self, stop_event: threading.Event, once: bool = False) -> WorkerStats:
        log.info("sync worker %s started", self.worker_id)
        finished = threading.Event()
        self._keep_once()
        keeper = threading.Thread(target=self._keep, args=(stop_event, finished), name="sync-keeper", daemon=True)
        keeper.start()
        try:
            return self._loop(stop_event, once)
        finally:
            finished.set()
            keeper.join(timeout=10)
            self._leave()

    def _loop(self, stop_event: threading.Event, once: bool) -> WorkerStats:
        next_housekeeping = next_duties = 0.0
        while not stop_event.is_set():
            if time.monotonic() >= next_housekeeping:
                self._housekeeping()
                next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL_S
            if not once and time.monotonic() >= next_duties:
                self._duties()
                next_duties = time.monotonic() + DUTY_CHECK_INTERVAL_S
            try:
                worked = self.step(stop_event)
            except RulesError as exc:
                if once:
                    raise
                log.error("sync paused: %s", exc)
                worked = False
            if not worked:
                if once:
                    break
                stop_event.wait(self.poll_interval)
        log.info("sync worker %s stopped (%s)", self.worker_id, self.stats)
        return self.stats

    # ------------------------------------------------------------ keeper thread

    def _keep(self, stop_event: threading.Event, finished: threading.Event) -> None:
        while not finished.wait(self.keeper_interval) and not stop_event.is_set():
            self._keep_once()

    def _keep_once(self) -> None:
        """Renew the leases in hand (a converge may wait minutes on JSM's rate limits), beat, and
        take this process's share of JSM's limits: one of the live workers."""
        with self._held_lock:
            held = list(self._held)
        try:
            with transaction(self.services.session_factory) as session:
                if held:
                    outbox.extend(session, held, self.worker_id, self.lease_seconds)
                coordination.beat(session, self.worker_id)
                live = coordination.live_workers(session)
            self.client.pacer.set_processes(live)
        except Exception:  # noqa: BLE001 - the next beat tries again; leases have slack
            log.warning("sync worker %s: heartbeat failed", self.worker_id, exc_info=True)

    def _leave(self) -> None:
        try:
            with transaction(self.services.session_factory) as session:
                coordination.leave(session, self.worker_id)
        except Exception:  # noqa: BLE001 - its heartbeat goes stale on its own
            log.debug("sync worker %s: could not remove its heartbeat", self.worker_id, exc_info=True)

    def _hold(self, claims: list[outbox.Claim]) -> None:
        with self._held_lock:
            self._held = list(claims)

    # ------------------------------------------------------------ periodic duties

    def _duties(self) -> None:
        """Revive dead marks once JSM answers again; reconcile when a period is due."""
        try:
            self.revive_dead()
            if self.settings.reconcile_every_s > 0 and coordination.take_duty(
                    self.services.session_factory, "reconcile", self.settings.reconcile_every_s):
                self.reconcile()
        except Exception:  # noqa: BLE001 - duties never stop propagation
            log.exception("sync worker %s: periodic duty failed", self.worker_id)

    def revive_dead(self) -> int:
        """Re-queue the marks dead for ``sync_dead_retry_s`` when JSM answers; how many."""
        after = self.settings.sync_dead_retry_s
        if after <= 0:
            return 0
        with transaction(self.services.session_factory) as session:
            if not outbox.revivable_count(session, after):
                return 0
        try:
            self.client.myself()
        except JsmError as exc:
            log.info("dead jobs wait: JSM does not answer yet (%s)", exc)
            return 0
        with transaction(self.services.session_factory) as session:
            count = outbox.revive(session, after, self.settings.sync_max_attempts)
        if count:
            log.warning("JSM answers again: %d dead job%s re-queued for %d more attempts", count,
                        "s" if count != 1 else "", outbox.REVIVAL_ATTEMPTS)
        return count

    def reconcile(self) -> None:
        """One periodic reconcile (``sync reconcile``): repairs drift, removes only what the bridge owns."""
        from scim_server.sync.reconcile import reconcile

        started = time.monotonic()
        result = reconcile(self.services.session_factory, self.client, self.rules_provider.current(),
                           dry_run=False, batch_size=self.settings.sync_batch_size)
        log.info("periodic reconcile: %d of %d organizations changed, %d refused, in %.1fs",
                 len(result.changes), len(result.plans), len(result.refused), time.monotonic() - started)

    def _housekeeping(self) -> None:
        """Periodic duties of a long-running worker: warn about API keys that expire soon."""
        try:
            with transaction(self.services.session_factory) as session:
                warn_expiring_keys(session, self.settings)
        except Exception:  # never let housekeeping stop propagation
            log.exception("housekeeping failed")

    def step(self, stop_event: threading.Event | None = None) -> bool:
        """Claim one batch and converge it; False when nothing was claimable."""
        rules = self.rules_provider.current()
        apply_rules_change(self.services.session_factory, rules)
        with transaction(self.services.session_factory) as session:
            claims = outbox.claim(session, self.worker_id, self.claim_batch, self.lease_seconds)
        if not claims:
            return False
        converger = Converger(self.services.session_factory, self.client, rules,
                              batch_size=self.settings.sync_batch_size, catalog=self.catalog,
                              policy=SyncPolicy.from_settings(self.settings))
        renewed = time.monotonic()
        remaining = list(claims)
        try:
            while remaining:
                self._hold(remaining)
                if stop_event is not None and stop_event.is_set():
                    self._release(remaining)
                    break
                if time.monotonic() - renewed > self.lease_seconds / 3:
                    self._renew(remaining)
                    renewed = time.monotonic()
                chunk = _leading_users(remaining)
                remaining = remaining[len(chunk):]
                self._process(converger, chunk)
        finally:
            self._hold([])
        return True

    def _process(self, converger: Converger, items: list[outbox.Claim]) -> None:
        """Converge one mark, or a run of user marks together (one read and one write transaction)."""
        try:
            if items[0].kind == outbox.USER:
                results = converger.converge_users([item.entity_id for item in items])
            else:
                results = {items[0].entity_id: converger.converge(items[0].kind, items[0].entity_id)}
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the mark
            results = {item.entity_id: exc for item in items}
        failures: list[tuple[outbox.Claim, Exception]] = []
        finished: list[tuple[outbox.Claim, Outcome]] = []
        for item in items:
            result = results[item.entity_id]
            if isinstance(result, Exception):
                failures.append((item, result))
            else:
                finished.append((item, result))
        with transaction(self.services.session_factory) as session:
            for item, outcome in finished:
                self._finish(session, item, outcome)
        for item, error in failures:
            self._record_failure(item, error)

    def _finish(self, session: Session, item: outbox.Claim, outcome: Outcome) -> None:
        if outcome.blocked:
            outbox.block(session, item, outcome.blocked)
            log.warning("%s %s blocked: %s", item.kind, item.entity_id, outcome.blocked)
            self._count("blocked")
        else:
            self._count("done" if outbox.complete(session, item) else "superseded")

    def _record_failure(self, item: outbox.Claim, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (JsmError, PropagationError)):
            log.error("converging %s %s failed unexpectedly", item.kind, item.entity_id, exc_info=exc)
        with transaction(self.services.session_factory) as session:
            status = outbox.fail(session, item, message, self.settings.sync_max_attempts)
        log.warning("converging %s %s failed (attempt %d, now %s): %s",
                    item.kind, item.entity_id, item.attempts + 1, status, message)
        self._count({outbox.DEAD: "dead", outbox.SUPERSEDED: "superseded"}.get(status, "failed"))

    def _count(self, outcome: str) -> None:
        """Count ``outcome`` (done, superseded, blocked, failed or dead; dead counts as failed)."""
        name = "failed" if outcome == "dead" else outcome
        setattr(self.stats, name, getattr(self.stats, name) + 1)
        metrics.observe_sync_job(outcome)

    def _renew(self, claims: list[outbox.Claim]) -> None:
        with transaction(self.services.session_factory) as session:
            outbox.extend(session, claims, self.worker_id, self.lease_seconds)

    def _release(self, claims: list[outbox.Claim]) -> None:
        with transaction(self.services.session_factory) as session:
            for item in claims:
                outbox.release(session, item)


def _leading_users(claims: list[outbox.Claim]) -> list[outbox.Claim]:
    """The run of user marks at the head of ``claims`` (or just the first mark when it is not a user)."""
    if claims[0].kind != outbox.USER:
        return claims[:1]
    run = []
    for item in claims:
        if item.kind != outbox.USER:
            break
        run.append(item)
    return run


def run_worker(services: WorkerServices, stop_event: threading.Event, once: bool = False, **options: Any) -> WorkerStats:
    """Run a worker until ``stop_event`` is set (or, with ``once``, until nothing is claimable).

    ``options``: ``client``, ``rules_provider``, ``worker_id``, ``lease_seconds``, ``claim_batch``,
    ``poll_interval`` (see ``Worker``).
    """
    worker = Worker(services, **options)
    try:
        return worker.run(stop_event, once=once)
    finally:
        worker.close()


def converge_user_now(services: WorkerServices, user_id: str, *, client: JsmClient | None = None,
                      rules_provider: RulesProvider | None = None) -> str | None:
    """Converge one user and its organizations right away (SAML JIT); returns its JSM accountId.

    Returns ``None`` when the user has no account (inactive, no usable e-mail, unknown) or when JSM
    failed: the user's marks stay queued and the worker finishes the job. Never raises JsmError.
    The marks themselves are left for the worker, which then finds nothing left to do.
    """
    own_client = client is None
    try:
        client = client or make_jsm_client(services.settings)
        rules = (rules_provider or RulesProvider(services.settings)).current()
        converger = Converger(services.session_factory, client, rules, batch_size=services.settings.sync_batch_size,
                              policy=SyncPolicy.from_settings(services.settings))
        outcome = converger.converge_user(user_id)
        for name in sorted(outcome.organizations):
            converger.converge_organization(name)
        return outcome.account_id if not outcome.blocked else None
    except (JsmError, PropagationError, RulesError, ValueError) as exc:
        log.warning("immediate convergence of user %s failed, left to the worker: %s", user_id, exc)
        return None
    finally:
        if own_client and client is not None:
            client.close()
