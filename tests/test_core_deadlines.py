"""O núcleo faz, em tick(), o trabalho que next_deadline() anunciou.

Um executor dirigido por eventos (a simulação de raft_example.py, ou o laço
do nó real) chama tick(next_deadline()). Se esse tick não faz nada, o prazo
não anda e o executor volta ao mesmo instante para sempre.
"""

import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raft_distribuido import (  # noqa: E402
    AppendEntriesReply, RaftCore, RequestVoteReply, Role)


def elect_leader(now: float) -> RaftCore:
    """Um líder de dois nós ("a" e "b"), eleito no instante `now`."""
    core = RaftCore("a", ["b"], rng=random.Random(1), now=0.0)
    core.election_deadline = now
    ready = core.tick(now)
    request = ready.messages[0][1]
    core.handle_request_vote_reply("b", request, RequestVoteReply(term=1, vote_granted=True),
                                   now)
    return core


class LeaderDeadlineTests(unittest.TestCase):

    def test_tick_at_deadline_advances_it(self):
        # 0.2304 + 0.15 arredonda para baixo: (0.2304 + 0.15) - 0.2304 < 0.15.
        for sent_at in (0.2304, 0.1, 1.7, 123.456789):
            with self.subTest(sent_at=sent_at):
                core = elect_leader(sent_at)
                self.assertEqual(core.role, Role.LEADER)
                deadline = core.next_deadline()
                core.tick(deadline)
                self.assertGreater(core.next_deadline(), deadline)

    def test_heartbeat_at_deadline(self):
        for elected_at in (0.2304, 0.1, 1.7, 123.456789):
            with self.subTest(elected_at=elected_at):
                core = elect_leader(elected_at)
                request = core.in_flight["b"].request
                core.handle_append_entries_reply(
                    "b", request, AppendEntriesReply(term=1, success=True, match_index=1),
                    elected_at)
                deadline = core.next_deadline()
                ready = core.tick(deadline)
                self.assertEqual([peer for peer, _ in ready.messages], ["b"])
                self.assertGreater(core.next_deadline(), deadline)

    def test_resend_after_rpc_timeout(self):
        core = elect_leader(0.2304)
        deadline = core.next_deadline()
        ready = core.tick(deadline)
        self.assertEqual([peer for peer, _ in ready.messages], ["b"])


if __name__ == "__main__":
    unittest.main()
