"""The key planner, as a table of situations: each test id is the sentence it checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from builders import (
    FP_CURRENT,
    FP_PENDING,
    NOW,
    account_name,
    holding,
    issued,
    key_facts,
    key_spec,
    pending,
    previous,
    project_view,
)
from openai_operator.errors import SpecError
from openai_operator.model.conditions import Condition
from openai_operator.model.reasons import Reason
from openai_operator.model.status import Delivery, KeyStatus
from openai_operator.reconcile.actions import (
    Deliver,
    Mint,
    Promote,
    RemoveDestination,
    RestartTargets,
    Revoke,
    UpdateScopes,
    Verify,
)
from openai_operator.reconcile.facts import DestinationState, needs_account_listing
from openai_operator.reconcile.key_plan import follow_up_failed, issue_failed, plan_key, promoted, revoked

pytestmark = pytest.mark.unit


def kinds(plan: Any) -> list[str]:
    return [type(a).__name__ for a in plan.actions]


def ready(status: KeyStatus) -> tuple[str, str] | None:
    c = status.condition("Ready")
    return (c.status, c.reason) if c else None


class TestIssue:
    def test_a_new_key_is_minted_verified_then_delivered_then_promoted(self) -> None:
        plan = plan_key(key_facts(KeyStatus(), destinations={"secret": DestinationState.absent()}))
        assert kinds(plan) == ["Mint", "Verify", "Deliver", "Promote"]
        mint = plan.actions[0]
        assert isinstance(mint, Mint)
        assert mint.pending.service_account_name == account_name(1)
        assert plan.status.pending == mint.pending

    def test_verification_comes_before_every_delivery(self) -> None:
        spec = key_spec(vault={"path": "openai/apps/chat"})
        plan = plan_key(key_facts(KeyStatus(), spec=spec, destinations={
            "secret": DestinationState.absent(), "vault": DestinationState.absent()}))
        order = kinds(plan)
        assert order.index("Verify") < order.index("Deliver")
        assert [a.kind for a in plan.actions if isinstance(a, Deliver)] == ["secret", "vault"]

    def test_a_steady_key_needs_nothing_and_costs_no_listing(self) -> None:
        facts = key_facts()
        assert not needs_account_listing(facts.status)
        plan = plan_key(facts)
        assert plan.actions == ()
        assert ready(plan.status) == ("True", Reason.ISSUED)

    def test_a_rotation_latches_rotating_before_any_side_effect(self) -> None:
        plan = plan_key(key_facts(rotate_token="t1"))
        rotating = plan.status.condition("Rotating")
        assert rotating is not None
        assert (rotating.status, rotating.reason) == ("True", Reason.MANUALLY_TRIGGERED)
        assert plan.status.pending is not None
        assert plan.status.pending.revision == 2

    @pytest.mark.parametrize(
        ("secret", "reason"),
        [
            pytest.param(DestinationState.absent(), Reason.DESTINATION_DRIFT, id="a deleted Secret rotates"),
            pytest.param(holding("hmac-sha256:edited"), Reason.DESTINATION_DRIFT, id="an edited Secret rotates"),
        ],
    )
    def test_rotate_on_destination_drift(self, secret: DestinationState, reason: str) -> None:
        plan = plan_key(key_facts(destinations={"secret": secret}))
        assert plan.issue is not None
        assert plan.issue.reason == reason

    def test_an_unreadable_destination_is_not_drift(self) -> None:
        plan = plan_key(key_facts(destinations={"secret": DestinationState.unreadable("timeout")}))
        assert plan.issue is None

    def test_a_credential_deleted_upstream_rotates(self) -> None:
        plan = plan_key(key_facts(issued(upstream_missing="sa_1")))
        assert plan.issue is not None
        assert plan.issue.reason == Reason.UPSTREAM_KEY_MISSING

    def test_a_stale_upstream_report_of_an_older_credential_does_not_rotate(self) -> None:
        plan = plan_key(key_facts(issued(2, upstream_missing="sa_1")))
        assert plan.issue is None

    def test_a_foreign_destination_is_never_written(self) -> None:
        plan = plan_key(key_facts(KeyStatus(), destinations={"secret": DestinationState.not_ours("not ours")}))
        assert not any(isinstance(a, Mint | Deliver) for a in plan.actions)
        assert ready(plan.status) == ("False", Reason.DESTINATION_CONFLICT)

    def test_a_failing_first_issue_waits_out_its_backoff(self) -> None:
        failed = KeyStatus(failed_attempts=2, last_failure_time=NOW - timedelta(seconds=1), observed_generation=1)
        plan = plan_key(key_facts(failed, destinations={"secret": DestinationState.absent()}))
        assert plan.issue is None
        assert plan.requeue_after is not None
        assert timedelta(0) < plan.requeue_after <= timedelta(seconds=3)

    def test_a_spec_change_skips_the_backoff(self) -> None:
        failed = KeyStatus(failed_attempts=5, last_failure_time=NOW, observed_generation=1)
        plan = plan_key(key_facts(failed, destinations={"secret": DestinationState.absent()}, generation=2))
        assert plan.issue is not None

    def test_scopes_change_in_place_without_a_new_credential(self) -> None:
        plan = plan_key(key_facts(spec=key_spec(scopes=["api.model.read"])))
        assert plan.actions == (UpdateScopes("key_1", ("api.model.read",)),)


class TestInterruptedIssue:
    def test_an_intent_without_an_account_id_lists_and_deletes_the_leftover_then_reissues_same_revision(
        self,
    ) -> None:
        status = KeyStatus(pending=pending(1, minted=False, reason=Reason.ISSUING))
        assert needs_account_listing(status)
        plan = plan_key(key_facts(status, destinations={"secret": DestinationState.absent()},
                                  listed=[("sa_x", account_name(1)), ("sa_other", account_name(1, name="other"))]))
        assert plan.actions[0] == Revoke("sa_x", "leftover", known_name=account_name(1), follow_up=False)
        mint = plan.actions[1]
        assert isinstance(mint, Mint)
        assert mint.pending.revision == 1

    def test_another_installations_account_of_the_same_name_is_left_alone(self) -> None:
        status = KeyStatus(pending=pending(1, minted=False, reason=Reason.ISSUING))
        plan = plan_key(key_facts(status, destinations={"secret": DestinationState.absent()},
                                  listed=[("sa_theirs", account_name(1, instance="other"))]))
        assert not any(isinstance(a, Revoke) for a in plan.actions)

    def test_a_minted_credential_no_destination_holds_is_deleted_and_issued_again(self) -> None:
        plan = plan_key(key_facts(issued(pending=pending(2))))
        assert plan.actions[0] == Revoke("sa_2", "pending", key_id="key_2", follow_up=False), \
            "no name from status: the executor reads it back before deleting"
        assert isinstance(plan.actions[1], Mint)

    def test_a_credential_every_destination_holds_is_promoted_without_a_new_issue(self) -> None:
        """The promotion's status patch was lost: promote what the destinations hold, mint nothing."""
        plan = plan_key(key_facts(issued(pending=pending(2)), destinations={"secret": holding(FP_PENDING)}))
        assert kinds(plan) == ["Promote"]

    def test_a_partly_delivered_credential_is_held_until_its_successor_is_everywhere(self) -> None:
        spec = key_spec(vault={"path": "openai/apps/chat"})
        facts = key_facts(issued(pending=pending(2)), spec=spec,
                          destinations={"secret": holding(FP_PENDING), "vault": holding(FP_CURRENT)})
        plan = plan_key(facts)
        assert not any(isinstance(a, Revoke) for a in plan.actions)
        assert previous(2, None) in plan.status.previous
        mint = plan.actions[0]
        assert isinstance(mint, Mint)
        assert mint.pending.revision == 3

    def test_while_a_destination_cannot_be_read_nothing_pending_is_revoked_or_promoted(self) -> None:
        plan = plan_key(key_facts(issued(pending=pending(2)),
                                  destinations={"secret": DestinationState.unreadable("vault sealed")}))
        assert not any(isinstance(a, Revoke | Promote | Mint) for a in plan.actions)


class TestRevocation:
    def test_previous_credentials_are_revoked_only_after_their_grace(self) -> None:
        due, waiting = previous(0, NOW - timedelta(seconds=1)), previous(1, NOW + timedelta(minutes=5))
        plan = plan_key(key_facts(issued(2, previous=(due, waiting))))
        assert [a.service_account_id for a in plan.actions if isinstance(a, Revoke)] == ["sa_0"]
        assert plan.requeue_after == timedelta(minutes=5)

    def test_held_credentials_are_never_revoked(self) -> None:
        plan = plan_key(key_facts(issued(2, previous=(previous(1, None),))))
        assert not any(isinstance(a, Revoke) for a in plan.actions)

    def test_due_revocations_run_even_when_the_spec_is_invalid(self) -> None:
        facts = key_facts(issued(2, previous=(previous(1, NOW),)))
        facts = replace(facts, spec=None, spec_error=SpecError("spec.rotation.timeZone", "not a zone"))
        plan = plan_key(facts)
        assert [type(a) for a in plan.actions] == [Revoke]
        assert ready(plan.status) == ("False", Reason.INVALID_SPEC)

    def test_due_revocations_run_even_when_policy_refuses_the_key(self) -> None:
        plan = plan_key(key_facts(issued(2, previous=(previous(1, NOW),)), project=project_view(
            allowedNamespaces={"names": ["elsewhere"]})))
        assert Revoke("sa_1", "previous", key_id="key_1") in plan.actions

    def test_promotion_starts_the_grace_of_the_old_and_of_held_credentials(self) -> None:
        facts = key_facts(issued(pending=pending(3), previous=(previous(2, None),)), rotate_token="t")
        after = promoted(facts.status, facts, {"secret": Delivery("chat", FP_PENDING)})
        grace = timedelta(hours=1)
        assert after.revision == 3
        assert after.pending is None
        assert {(p.service_account_id, p.revoke_at) for p in after.previous} == {("sa_2", NOW + grace),
                                                                              ("sa_1", NOW + grace)}
        assert after.rotate_token == "t"

    def test_the_leak_response_revokes_every_older_credential_in_the_promoting_pass(self) -> None:
        """Not at the next pass (which could be a resync away): right after the promotion."""
        plan = plan_key(key_facts(issued(2, previous=(previous(1, NOW + timedelta(hours=1)),)), revoke_token="leak"))
        names = kinds(plan)
        assert names[-3:] == ["Promote", "Revoke", "Revoke"]
        assert {(a.service_account_id, a.why) for a in plan.actions if isinstance(a, Revoke)} == {
            ("sa_1", "previous"), ("sa_2", "previous")}

    def test_the_leak_response_revokes_the_old_credential_at_promotion(self) -> None:
        p = replace(pending(2), revoke_immediately=True, reason=Reason.COMPROMISED)
        facts = key_facts(issued(pending=p))
        after = promoted(facts.status, facts, {"secret": Delivery("chat", FP_PENDING)})
        assert after.previous == (previous(1, NOW),)


class TestRefusal:
    def refused(self, status: KeyStatus) -> Any:
        return plan_key(key_facts(status, project=project_view(allowedNamespaces={"names": ["elsewhere"]})))

    def test_a_refused_key_keeps_its_credential_for_one_grace_period_with_a_warning(self) -> None:
        plan = self.refused(issued())
        assert plan.actions == ()
        assert ready(plan.status) == ("False", Reason.NAMESPACE_NOT_ALLOWED)
        assert plan.status.refused_since == NOW
        assert plan.requeue_after == timedelta(hours=1)
        assert [n.reason for n in plan.notes] == [Reason.NAMESPACE_NOT_ALLOWED]

    def test_after_the_grace_it_is_removed_from_every_destination_then_revoked(self) -> None:
        plan = self.refused(issued(refused_since=NOW - timedelta(hours=2)))
        assert plan.actions == (RemoveDestination("secret", "chat"),
                                Revoke("sa_1", "current", key_id="key_1", follow_up=False))

    def test_a_refused_key_without_a_credential_plans_no_admin_call(self) -> None:
        plan = self.refused(KeyStatus())
        assert plan.actions == ()

    def test_more_keys_than_max_keys_are_refused(self) -> None:
        plan = plan_key(key_facts(KeyStatus(), project=project_view(maxKeys=2), other_keys_holding=2))
        assert ready(plan.status) == ("False", Reason.KEY_QUOTA_EXCEEDED)
        assert plan.actions == ()


class TestFollowUps:
    def test_restart_targets_follow_a_new_revision_once(self) -> None:
        spec = key_spec(rotation={"every": "24h", "restartTargets": [{"kind": "Deployment", "name": "web"}]})
        plan = plan_key(key_facts(issued(restarted_revision=0), spec=spec))
        assert RestartTargets(1) in plan.actions
        plan = plan_key(key_facts(issued(restarted_revision=1), spec=spec))
        assert not any(isinstance(a, RestartTargets) for a in plan.actions)

    def test_a_failed_follow_up_degrades_without_touching_the_credential(self) -> None:
        facts = key_facts()
        after = follow_up_failed(facts.status, facts, Reason.RESTART_FAILED, "forbidden")
        degraded = after.condition("Degraded")
        assert degraded is not None
        assert (degraded.status, degraded.reason) == ("True", Reason.RESTART_FAILED)
        assert (after.key_id, after.revision) == (facts.status.key_id, facts.status.revision)

    def test_a_degraded_key_is_retried_on_its_own_clock(self) -> None:
        degraded = Condition("Degraded", "True", Reason.REVOCATION_FAILED, "x", NOW - timedelta(seconds=8), 1)
        status = issued(conditions=(*issued().conditions, degraded))
        plan = plan_key(key_facts(status))
        assert plan.requeue_after == timedelta(seconds=8)

    def test_a_failed_rotation_keeps_the_key_ready_and_counts_the_failure(self) -> None:
        facts = key_facts(issued(pending=pending(2)))
        after = issue_failed(facts.status, facts, Reason.VERIFICATION_FAILED, "401")
        assert ready(after) == ("True", Reason.ISSUED)
        assert after.failed_attempts == 1

    def test_a_revoked_previous_credential_leaves_status(self) -> None:
        status = issued(2, previous=(previous(1, NOW),))
        assert revoked(status, Revoke("sa_1", "previous"), NOW).previous == ()


def test_every_issue_ends_in_a_promotion_after_verification() -> None:
    for facts in (key_facts(KeyStatus(), destinations={"secret": DestinationState.absent()}),
                  key_facts(rotate_token="x"), key_facts(revoke_token="y")):
        plan = plan_key(facts)
        order = kinds(plan)
        after = order[order.index("Promote") + 1:]
        assert set(after) <= {"Revoke", "RestartTargets"}, "only the leak response's revocations and restarts follow"
        assert ("Revoke" in after) == (facts.revoke_token is not None)
        assert order.index("Mint") < order.index("Verify") < order.index("Deliver") < order.index("Promote")
        assert isinstance(plan.actions[order.index("Verify")], Verify)


def test_a_spec_edit_that_needs_no_new_credential_still_advances_observed_generation() -> None:
    """Found by the chaos test: scopes or rotation edits left status.observedGeneration behind."""
    plan = plan_key(key_facts(spec=key_spec(scopes=["api.model.read"]), generation=7))
    assert plan.status.observed_generation == 7


def test_a_project_that_is_not_ready_never_costs_a_key_its_credential() -> None:
    """An Admin API outage makes the project not Ready; keys stop getting new credentials but keep theirs."""
    from openai_operator.model.specs import KeyPolicy
    from openai_operator.reconcile.policy import ProjectView

    not_ready = ProjectView("team", "proj_1", False, KeyPolicy())
    plan = plan_key(key_facts(issued(refused_since=NOW - timedelta(days=1)), project=not_ready))
    assert not any(isinstance(a, Revoke | RemoveDestination) for a in plan.actions)
    assert ready(plan.status) == ("False", Reason.PROJECT_NOT_READY)
    assert plan.status.refused_since is None
