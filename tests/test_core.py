"""Testes do núcleo Raft puro, uma regra da Figura 2 por teste.

Os nomes seguem as regras do artigo de Raft (Ongaro e Ousterhout, 2014); os
testes no fim cobrem erros que implementações reais cometeram.
"""

import random
import unittest

from raft_distribuido import (AppendEntries, AppendEntriesReply, LogEntry, RaftCore,
                              RequestVote, RequestVoteReply, Role)

ELECTION_MIN = 0.3
ELECTION_MAX = 0.6


def make_core(node_id="a", peers=("b", "c"), now=0.0, seed=1, **kwargs):
    return RaftCore(node_id, list(peers), rng=random.Random(seed), now=now,
                    election_timeout_min=ELECTION_MIN, election_timeout_max=ELECTION_MAX,
                    heartbeat_interval=0.05, **kwargs)


def entries(*terms, start=1):
    """Entradas com os termos dados, a partir do índice `start`."""
    return [LogEntry(term=term, index=start + offset, command={"op": "put", "key": "k",
                                                                "value": start + offset})
            for offset, term in enumerate(terms)]


def append(term, prev_index, prev_term, new_entries=(), commit=0, leader="b"):
    return AppendEntries(term=term, leader_id=leader, prev_log_index=prev_index,
                         prev_log_term=prev_term, entries=list(new_entries),
                         leader_commit=commit)


def elect(core, now=1.0):
    """Leva `core` a líder: deixa o timer vencer e entrega os votos."""
    ready = core.tick(now)
    requests = [message for _, message in ready.messages if isinstance(message, RequestVote)]
    assert requests, "o nó não iniciou eleição"
    for peer in core.peers[:core.majority() - 1]:
        ready = core.handle_request_vote_reply(
            peer, requests[0], RequestVoteReply(term=core.current_term, vote_granted=True), now)
    assert core.role == Role.LEADER
    return ready


def messages_to(ready, peer, kind=AppendEntries):
    return [message for target, message in ready.messages
            if target == peer and isinstance(message, kind)]


class AllServersRulesTest(unittest.TestCase):
    """Regras para todos os servidores (Figura 2, §5.1)."""

    def test_higher_term_in_request_makes_follower(self):
        core = make_core()
        elect(core)
        core.handle_request_vote(RequestVote(term=5, candidate_id="c", last_log_index=0,
                                             last_log_term=0), 1.1)
        self.assertEqual(core.role, Role.FOLLOWER)
        self.assertEqual(core.current_term, 5)

    def test_higher_term_in_reply_makes_follower(self):
        core = make_core()
        ready = elect(core)
        request = messages_to(ready, "b")[0]
        ready = core.handle_append_entries_reply(
            "b", request, AppendEntriesReply(term=9, success=False), 1.1)
        self.assertEqual(core.role, Role.FOLLOWER)
        self.assertEqual(core.current_term, 9)
        self.assertIsNone(core.voted_for)
        self.assertTrue(ready.hard_state_changed)

    def test_committed_entries_are_handed_out_once_in_order(self):
        core = make_core()
        core.handle_append_entries("b", append(1, 0, 0, entries(1, 1, 1)), 0.1)
        ready = core.handle_append_entries("b", append(1, 3, 1, commit=2), 0.2)
        self.assertEqual([entry.index for entry in ready.committed], [1, 2])
        ready = core.handle_append_entries("b", append(1, 3, 1, commit=3), 0.3)
        self.assertEqual([entry.index for entry in ready.committed], [3])
        ready = core.handle_append_entries("b", append(1, 3, 1, commit=3), 0.4)
        self.assertEqual(ready.committed, [])


class FollowerRulesTest(unittest.TestCase):
    def test_follower_campaigns_after_election_timeout(self):
        core = make_core()
        self.assertEqual(core.tick(ELECTION_MIN - 0.01).messages, [])
        ready = core.tick(ELECTION_MAX + 0.01)
        self.assertEqual(core.role, Role.CANDIDATE)
        self.assertEqual(len(messages_to(ready, "b", RequestVote)), 1)

    def test_valid_append_entries_resets_election_timer(self):
        core = make_core()
        for step in range(1, 40):
            now = step * 0.1
            core.handle_append_entries("b", append(1, 0, 0), now)
            core.tick(now)
        self.assertEqual(core.role, Role.FOLLOWER)


class CandidateRulesTest(unittest.TestCase):
    def test_candidate_increments_term_votes_for_itself_and_asks_all(self):
        core = make_core()
        ready = core.tick(1.0)
        self.assertEqual(core.current_term, 1)
        self.assertEqual(core.voted_for, "a")
        self.assertTrue(ready.hard_state_changed)
        for peer in ("b", "c"):
            request = messages_to(ready, peer, RequestVote)[0]
            self.assertEqual((request.term, request.candidate_id), (1, "a"))

    def test_candidate_with_majority_becomes_leader(self):
        core = make_core()
        elect(core)
        self.assertEqual(core.leader_id, "a")

    def test_candidate_steps_down_on_append_from_new_leader(self):
        core = make_core()
        core.tick(1.0)
        core.handle_append_entries("b", append(1, 0, 0, leader="b"), 1.1)
        self.assertEqual(core.role, Role.FOLLOWER)
        self.assertEqual(core.leader_id, "b")

    def test_candidate_starts_new_election_after_timeout(self):
        core = make_core()
        core.tick(1.0)
        core.tick(1.0 + ELECTION_MAX + 0.01)
        self.assertEqual(core.role, Role.CANDIDATE)
        self.assertEqual(core.current_term, 2)

    def test_single_node_elects_itself(self):
        core = make_core(peers=())
        ready = core.tick(1.0)
        self.assertEqual(core.role, Role.LEADER)
        self.assertEqual([entry.index for entry in ready.committed], [1])


class LeaderRulesTest(unittest.TestCase):
    def test_new_leader_appends_noop_and_sends_it(self):
        core = make_core()
        ready = elect(core)
        self.assertEqual(core.last_log_index, 1)
        self.assertIsNone(core.log[0].command)
        request = messages_to(ready, "b")[-1]
        self.assertEqual([entry.index for entry in request.entries], [1])

    def test_leader_sends_heartbeats_when_idle(self):
        core = make_core()
        ready = elect(core)
        for peer in ("b", "c"):
            core.handle_append_entries_reply(peer, messages_to(ready, peer)[-1],
                                             AppendEntriesReply(1, True, match_index=1), 1.0)
        ready = core.tick(1.06)
        self.assertEqual(len(messages_to(ready, "b")), 1)
        self.assertEqual(messages_to(ready, "b")[0].entries, [])

    def test_leader_commits_when_majority_replicates_current_term(self):
        core = make_core()
        ready = elect(core)
        ready = core.handle_append_entries_reply("b", messages_to(ready, "b")[-1],
                                                 AppendEntriesReply(1, True, match_index=1), 1.0)
        self.assertEqual(core.commit_index, 1)
        self.assertEqual([entry.index for entry in ready.committed], [1])

    def test_propose_on_follower_returns_no_proposal(self):
        core = make_core()
        ready = core.propose({"op": "put", "key": "x", "value": 1}, 0.1)
        self.assertIsNone(ready.proposal)
        self.assertEqual(core.last_log_index, 0)

    def test_propose_appends_and_reports_index_and_term(self):
        core = make_core()
        elect(core)
        ready = core.propose({"op": "put", "key": "x", "value": 1}, 1.0)
        self.assertEqual(ready.proposal, (2, 1))
        self.assertEqual(ready.log_writes[-1][0], "append")

    def test_conflict_hint_skips_term_leader_does_not_have(self):
        leader = make_core(log=entries(1, 1, 2, 2, 2, 3), current_term=5)
        ready = elect(leader)
        probe = messages_to(ready, "b")[-1]
        # O seguidor tem termo 4 a partir do índice 3, e o líder não tem esse
        # termo: ele pula direto para o primeiro índice do termo no seguidor.
        ready = leader.handle_append_entries_reply(
            "b", probe, AppendEntriesReply(leader.current_term, False, conflict_term=4,
                                           conflict_index=3), 1.0)
        self.assertEqual(leader.next_index["b"], 3)
        retry = messages_to(ready, "b")[-1]
        self.assertEqual(retry.prev_log_index, 2)

    def test_conflict_hint_jumps_after_leaders_last_entry_of_term(self):
        leader = make_core(log=entries(1, 1, 2, 2, 2, 3), current_term=5)
        ready = elect(leader)
        probe = messages_to(ready, "b")[-1]
        leader.handle_append_entries_reply(
            "b", probe, AppendEntriesReply(leader.current_term, False, conflict_term=2,
                                           conflict_index=3), 1.0)
        self.assertEqual(leader.next_index["b"], 6)


class RequestVoteReceiverTest(unittest.TestCase):
    """Receptor de RequestVote, regras 1 e 2 (Figura 2, §5.2, §5.4.1)."""

    def test_rule1_reject_older_term(self):
        core = make_core(current_term=3)
        ready = core.handle_request_vote(RequestVote(2, "b", 0, 0), 0.1)
        self.assertFalse(ready.reply.vote_granted)
        self.assertEqual(ready.reply.term, 3)

    def test_rule2_grant_when_not_voted_and_log_up_to_date(self):
        core = make_core(log=entries(1, 2), current_term=2)
        ready = core.handle_request_vote(RequestVote(3, "b", 2, 2), 0.1)
        self.assertTrue(ready.reply.vote_granted)
        self.assertEqual(core.voted_for, "b")
        self.assertTrue(ready.hard_state_changed)

    def test_rule2_deny_second_candidate_same_term(self):
        core = make_core()
        core.handle_request_vote(RequestVote(1, "b", 0, 0), 0.1)
        ready = core.handle_request_vote(RequestVote(1, "c", 0, 0), 0.2)
        self.assertFalse(ready.reply.vote_granted)

    def test_rule2_repeated_request_from_same_candidate_granted_again(self):
        core = make_core()
        core.handle_request_vote(RequestVote(1, "b", 0, 0), 0.1)
        ready = core.handle_request_vote(RequestVote(1, "b", 0, 0), 0.2)
        self.assertTrue(ready.reply.vote_granted)

    def test_rule2_deny_candidate_with_older_last_term(self):
        core = make_core(log=entries(1, 3), current_term=3)
        ready = core.handle_request_vote(RequestVote(4, "b", 5, 2), 0.1)
        self.assertFalse(ready.reply.vote_granted)
        self.assertEqual(core.current_term, 4)

    def test_rule2_deny_candidate_with_shorter_log_same_term(self):
        core = make_core(log=entries(1, 3, 3), current_term=3)
        ready = core.handle_request_vote(RequestVote(4, "b", 2, 3), 0.1)
        self.assertFalse(ready.reply.vote_granted)


class AppendEntriesReceiverTest(unittest.TestCase):
    """Receptor de AppendEntries, regras 1 a 5 (Figura 2, §5.3)."""

    def test_rule1_reject_older_term(self):
        core = make_core(current_term=3)
        ready = core.handle_append_entries("b", append(2, 0, 0), 0.1)
        self.assertFalse(ready.reply.success)
        self.assertEqual(ready.reply.term, 3)
        self.assertIsNone(core.leader_id)

    def test_rule2_reject_missing_prev_entry_with_hint(self):
        core = make_core(log=entries(1, 1))
        ready = core.handle_append_entries("b", append(2, 5, 2), 0.1)
        self.assertFalse(ready.reply.success)
        self.assertEqual(ready.reply.conflict_index, 3)
        self.assertEqual(ready.reply.conflict_term, 0)

    def test_rule2_reject_prev_term_mismatch_with_first_index_of_term(self):
        core = make_core(log=entries(1, 2, 2, 2))
        ready = core.handle_append_entries("b", append(3, 4, 3), 0.1)
        self.assertFalse(ready.reply.success)
        self.assertEqual(ready.reply.conflict_term, 2)
        self.assertEqual(ready.reply.conflict_index, 2)

    def test_rule3_conflicting_entry_truncates_suffix(self):
        core = make_core(log=entries(1, 1, 1))
        ready = core.handle_append_entries("b", append(2, 1, 1, entries(2, start=2)), 0.1)
        self.assertTrue(ready.reply.success)
        self.assertEqual([entry.term for entry in core.log], [1, 2])
        self.assertEqual(ready.log_writes[0], ("truncate", 2))

    def test_rule4_appends_new_entries(self):
        core = make_core()
        ready = core.handle_append_entries("b", append(1, 0, 0, entries(1, 1)), 0.1)
        self.assertTrue(ready.reply.success)
        self.assertEqual(core.last_log_index, 2)
        self.assertEqual(ready.reply.match_index, 2)

    def test_rule5_commit_index_is_min_of_leader_commit_and_last_new(self):
        core = make_core()
        core.handle_append_entries("b", append(1, 0, 0, entries(1, 1, 1), commit=10), 0.1)
        self.assertEqual(core.commit_index, 3)


class PitfallTest(unittest.TestCase):
    """Erros que implementações reais de Raft já cometeram."""

    def test_vote_not_granted_twice_after_restart(self):
        core = make_core()
        core.handle_request_vote(RequestVote(6, "b", 0, 0), 0.1)
        restarted = make_core(current_term=core.current_term, voted_for=core.voted_for,
                              log=core.log, seed=2)
        ready = restarted.handle_request_vote(RequestVote(6, "c", 0, 0), 0.1)
        self.assertFalse(ready.reply.vote_granted)

    def test_vote_not_granted_after_becoming_candidate(self):
        core = make_core()
        core.tick(1.0)
        ready = core.handle_request_vote(RequestVote(1, "b", 0, 0), 1.01)
        self.assertFalse(ready.reply.vote_granted)
        self.assertEqual(core.voted_for, "a")

    def test_stale_vote_reply_from_older_term_not_counted(self):
        core = make_core()
        first = core.tick(1.0)
        old_request = messages_to(first, "b", RequestVote)[0]
        core.tick(1.0 + ELECTION_MAX + 0.01)
        self.assertEqual(core.current_term, 2)
        core.handle_request_vote_reply("b", old_request, RequestVoteReply(1, True), 1.7)
        self.assertEqual(core.role, Role.CANDIDATE)

    def test_duplicate_vote_from_same_voter_counted_once(self):
        core = make_core(peers=("b", "c", "d", "e"))
        ready = core.tick(1.0)
        request = messages_to(ready, "b", RequestVote)[0]
        for _ in range(3):
            core.handle_request_vote_reply("b", request, RequestVoteReply(1, True), 1.01)
        self.assertEqual(core.role, Role.CANDIDATE)
        core.handle_request_vote_reply("c", request, RequestVoteReply(1, True), 1.02)
        self.assertEqual(core.role, Role.LEADER)

    def test_figure8_old_term_entry_not_committed_by_count(self):
        # Líder do termo 4 com a entrada 2 do termo 2 em si e em b (maioria de 3
        # em 5 contando c); nenhuma entrada do termo 4 replicada ainda.
        leader = make_core(peers=("b", "c", "d", "e"), log=entries(1, 2), current_term=3)
        ready = leader.tick(1.0)
        request = messages_to(ready, "b", RequestVote)[0]
        for peer in ("b", "c"):
            ready = leader.handle_request_vote_reply(peer, request,
                                                     RequestVoteReply(4, True), 1.0)
        self.assertEqual(leader.role, Role.LEADER)
        self.assertEqual(leader.current_term, 4)
        # Os seguidores confirmam só até o índice 2 (termo 2), sem o no-op.
        for peer in ("b", "c"):
            probe = AppendEntries(4, "a", 2, 2, [], 0)
            leader.in_flight[peer] = None
            leader.handle_append_entries_reply(peer, probe,
                                               AppendEntriesReply(4, True, match_index=2), 1.1)
        self.assertEqual(leader.commit_index, 0)
        # Quando o no-op do termo 4 chega à maioria, 2 e 3 ficam comprometidas.
        for peer in ("b", "c"):
            sent = AppendEntries(4, "a", 2, 2, [leader.entry_at(3)], 0)
            leader.handle_append_entries_reply(peer, sent,
                                               AppendEntriesReply(4, True, match_index=3), 1.2)
        self.assertEqual(leader.commit_index, 3)

    def test_duplicate_shorter_append_does_not_truncate(self):
        core = make_core()
        core.handle_append_entries("b", append(2, 0, 0, entries(2, 2, 2)), 0.1)
        ready = core.handle_append_entries("b", append(2, 1, 2, entries(2, start=2)), 0.2)
        self.assertTrue(ready.reply.success)
        self.assertEqual(core.last_log_index, 3)
        self.assertEqual(ready.log_writes, [])
        ready = core.handle_append_entries("b", append(2, 1, 2), 0.3)
        self.assertEqual(core.last_log_index, 3)
        self.assertEqual(ready.reply.match_index, 1)

    def test_next_index_never_below_one(self):
        leader = make_core(log=entries(1), current_term=1)
        ready = elect(leader)
        probe = messages_to(ready, "b")[-1]
        self.assertEqual(probe.prev_log_index, 1)
        ready = leader.handle_append_entries_reply(
            "b", probe, AppendEntriesReply(2, False, conflict_index=1), 1.0)
        self.assertEqual(leader.next_index["b"], 1)
        retry = messages_to(ready, "b")[-1]
        self.assertEqual(retry.prev_log_index, 0)
        # A mesma rejeição chega de novo, atrasada: nada muda.
        leader.handle_append_entries_reply(
            "b", probe, AppendEntriesReply(2, False, conflict_index=1), 1.01)
        self.assertEqual(leader.next_index["b"], 1)
        # Uma rejeição absurda da sondagem em prev=0 também não desce abaixo de 1.
        leader.handle_append_entries_reply(
            "b", retry, AppendEntriesReply(2, False, conflict_index=0), 1.02)
        self.assertGreaterEqual(leader.next_index["b"], 1)

    def test_stale_rejection_does_not_move_next_index_back(self):
        leader = make_core(log=entries(1, 1, 1), current_term=1)
        ready = elect(leader)
        probe = messages_to(ready, "b")[-1]
        leader.handle_append_entries_reply(
            "b", probe, AppendEntriesReply(2, True, match_index=4), 1.0)
        self.assertEqual(leader.match_index["b"], 4)
        leader.handle_append_entries_reply(
            "b", probe, AppendEntriesReply(2, False, conflict_index=1), 1.01)
        self.assertEqual(leader.next_index["b"], 5)
        self.assertEqual(leader.match_index["b"], 4)

    def test_rejected_vote_does_not_reset_election_timer(self):
        core = make_core(log=entries(30), current_term=30)
        deadline = core.election_deadline
        core.handle_request_vote(RequestVote(31, "b", 5, 29), deadline - 0.01)
        self.assertEqual(core.election_deadline, deadline)
        core.tick(deadline + 0.001)
        self.assertEqual(core.role, Role.CANDIDATE)

    def test_follower_commit_clamped_to_checked_entries(self):
        # A tem uma entrada 10 velha do termo 1; o líder novo só conferiu até 9.
        core = make_core(log=entries(*([1] * 10)), current_term=1)
        ready = core.handle_append_entries("b", append(2, 9, 1, commit=11), 0.1)
        self.assertTrue(ready.reply.success)
        self.assertEqual(core.commit_index, 9)
        self.assertEqual([entry.index for entry in ready.committed][-1], 9)

    def test_follower_with_empty_log_clamps_commit(self):
        core = make_core()
        ready = core.handle_append_entries("b", append(2, 0, 0, commit=50), 0.1)
        self.assertEqual(core.commit_index, 0)
        self.assertTrue(ready.reply.success)

    def test_restart_term_not_below_last_log_term(self):
        core = make_core(current_term=0, log=entries(1, 5))
        self.assertEqual(core.current_term, 5)
        ready = core.tick(1.0)
        self.assertEqual(core.current_term, 6)
        self.assertEqual(messages_to(ready, "b", RequestVote)[0].last_log_term, 5)


class ReadIndexTest(unittest.TestCase):
    def test_read_waits_for_majority_ack(self):
        core = make_core()
        ready = elect(core)
        for peer in ("b", "c"):
            core.handle_append_entries_reply(peer, messages_to(ready, peer)[-1],
                                             AppendEntriesReply(1, True, match_index=1), 1.0)
        ready = core.request_read("r1", 1.01)
        self.assertEqual(ready.reads_ready, [])
        probe = messages_to(ready, "b")[-1]
        ready = core.handle_append_entries_reply("b", probe,
                                                 AppendEntriesReply(1, True, match_index=1), 1.02)
        self.assertEqual(ready.reads_ready, [("r1", 1)])

    def test_deposed_leader_fails_pending_reads(self):
        core = make_core()
        elect(core)
        core.request_read("r1", 1.01)
        ready = core.handle_request_vote(RequestVote(5, "b", 9, 9), 1.02)
        self.assertEqual(ready.reads_failed, ["r1"])

    def test_isolated_leader_steps_down_by_check_quorum(self):
        core = make_core()
        elect(core)
        now = 1.0
        while now < 3.0 and core.role == Role.LEADER:
            now += 0.05
            core.tick(now)
        self.assertEqual(core.role, Role.FOLLOWER)
        self.assertIsNone(core.leader_id)


if __name__ == "__main__":
    unittest.main()
