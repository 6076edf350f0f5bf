"""Propagation of stored SCIM state to JSM (outbox, planner, differ, worker, reconcile)."""
