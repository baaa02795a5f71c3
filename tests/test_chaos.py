"""Versão curta do caos em processos reais (tests/chaos.py).

Cada execução sorteia uma semente nova, impressa numa falha junto com o comando
que repete o cronograma do nemesis. RAFT_CHAOS_SEED=N fixa a semente.
"""

import io
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chaos import (FAULT_KINDS, ChaosConfig, NamespaceFaults,  # noqa: E402
                   check_in_segments, find_unexplained_writes, plan_schedule,
                   resolve_with_log, run_chaos)
from raft_distribuido import LogEntry  # noqa: E402
from raft_example import Operation, check_linearizability  # noqa: E402

# Segundos de faltas em cada variante; montagem, convergência e conferências
# somam uns 5 s a cada uma.
LOOPBACK_SECONDS = 22
NETNS_SECONDS = 12


def chosen_seed() -> int:
    value = os.environ.get("RAFT_CHAOS_SEED")
    return int(value) if value else random.SystemRandom().randrange(10**6)


def operation(client: str, number: int, kind: str, key: str, value=None, *, start: float,
              end, status: str = "ok", output=None) -> Operation:
    return Operation(client, number, kind, key, value, invoke=start, response=end,
                     output=output, status=status)


class ScheduleTest(unittest.TestCase):
    def test_same_seed_same_schedule(self):
        self.assertEqual(plan_schedule(5, 60, 5, False), plan_schedule(5, 60, 5, False))
        self.assertNotEqual(plan_schedule(5, 60, 5, False), plan_schedule(6, 60, 5, False))

    def test_schedule_covers_every_kind(self):
        loopback = {step.kind for seed in range(40) for step in plan_schedule(seed, 60, 5,
                                                                               False)}
        netns = {step.kind for seed in range(40) for step in plan_schedule(seed, 60, 5,
                                                                            True)}
        netns_only = {kind for kind, _, _, only in FAULT_KINDS if only}
        self.assertEqual(loopback, {kind for kind, _, _, _ in FAULT_KINDS} - netns_only)
        self.assertEqual(netns, {kind for kind, _, _, _ in FAULT_KINDS})

    def test_partitions_leave_no_node_out(self):
        for seed in range(40):
            for step in plan_schedule(seed, 60, 5, False):
                if step.groups:
                    members = sorted(node for group in step.groups for node in group)
                    members += [victim for victim in step.victims
                                if victim not in members]
                    self.assertEqual(sorted(members), list(range(5)), step.describe())


class HistoryCheckTest(unittest.TestCase):
    """As conferências do fim do caos acusam um histórico adulterado."""

    def test_lost_acknowledged_write_reported(self):
        history = [operation("c0", 1, "put", "k", "a", start=0.0, end=1.0)]
        final = [operation("verificação", 1, "get", "k", start=2.0, end=2.1,
                           output=(False, None))]
        self.assertEqual(len(find_unexplained_writes(history, final)), 1)
        self.assertFalse(check_linearizability(history + final).ok)

    def test_later_overwrite_explains_missing_write(self):
        history = [operation("c0", 1, "put", "k", "a", start=0.0, end=1.0),
                   operation("c1", 1, "put", "k", "b", start=0.5, end=None,
                             status="unknown")]
        final = [operation("verificação", 1, "get", "k", start=2.0, end=2.1,
                           output=(True, "b"))]
        self.assertEqual(find_unexplained_writes(history, final), [])
        self.assertTrue(check_linearizability(history + final).ok)

    def test_invented_value_reported(self):
        history = [operation("c0", 1, "put", "k", "a", start=0.0, end=1.0)]
        final = [operation("verificação", 1, "get", "k", start=2.0, end=2.1,
                           output=(True, "z"))]
        self.assertEqual(len(find_unexplained_writes(history, final)), 2)

    def test_stale_read_not_linearizable(self):
        history = [operation("c0", 1, "put", "k", "a", start=0.0, end=1.0),
                   operation("c0", 2, "put", "k", "b", start=2.0, end=3.0),
                   operation("c1", 1, "get", "k", start=4.0, end=5.0, output=(True, "a"))]
        self.assertFalse(check_linearizability(history).ok)


def put_entry(index: int, key: str, value, session: tuple = ()) -> LogEntry:
    command = {"op": "put", "key": key, "value": value}
    if session:
        command["client_id"], command["sequence"] = session
    return LogEntry(1, index, command)


class LogResolutionTest(unittest.TestCase):
    """O log final resolve as escritas desconhecidas e confere as confirmadas."""

    def test_unknown_writes_resolved(self):
        history = [
            operation("c1", 1, "put", "k", "aplicada", start=0.0, end=None,
                      status="unknown"),
            operation("c1", 2, "put", "k", "perdida", start=0.5, end=None, status="unknown"),
            operation("c1", 3, "put", "k", "confirmada", start=1.0, end=3.0),
            operation("c0", 1, "delete", "k", start=4.0, end=None, status="unknown"),
        ]
        history[2].index = 3
        entries = [LogEntry(1, 1, None), put_entry(2, "k", "aplicada"),
                   put_entry(3, "k", "confirmada"),
                   LogEntry(1, 4, {"op": "delete", "key": "k", "client_id": "c0",
                                   "sequence": 1})]

        resolution = resolve_with_log(history, entries, final_read_start=9.0)

        self.assertEqual(resolution.problems, [])
        applied, lost, acknowledged, deleted = resolution.history
        self.assertEqual((applied.status, applied.index, applied.response), ("ok", 2, 3.0))
        self.assertEqual(lost.status, "failed")
        self.assertIs(acknowledged, history[2])
        self.assertEqual((deleted.status, deleted.output, deleted.response), ("ok", True, 9.0))
        self.assertEqual((resolution.applied, resolution.never_applied), (2, 1))

    def test_acknowledged_write_missing_from_index(self):
        history = [operation("c1", 1, "put", "k", "a", start=0.0, end=1.0)]
        history[0].index = 2
        entries = [LogEntry(1, 1, None), put_entry(2, "k", "outro")]

        problems = resolve_with_log(history, entries, 5.0).problems

        self.assertTrue(any("não está no índice 2" in problem for problem in problems),
                        problems)
        self.assertTrue(any("não foi executada" in problem for problem in problems),
                        problems)

    def test_command_without_session_executed_twice(self):
        entries = [put_entry(1, "k", "a"), put_entry(2, "k", "a")]
        self.assertEqual(len(resolve_with_log([], entries, 5.0).problems), 1)

    def test_repeated_session_command_executed_once(self):
        entries = [put_entry(1, "k", "a", ("c0", 4)), put_entry(2, "k", "a", ("c0", 4))]
        self.assertEqual(resolve_with_log([], entries, 5.0).problems, [])


def written(client: str, number: int, key: str, value, *, start: float, end: float,
            index: int, executed_at: dict) -> Operation:
    """Cria um PUT confirmado e anota o índice do log em que ele foi executado."""
    executed_at[(client, number)] = index
    return operation(client, number, "put", key, value, start=start, end=end)


class SegmentCheckTest(unittest.TestCase):
    """A conferência em trechos separados por pausas."""

    def test_sequential_history_split_and_accepted(self):
        executed_at: dict = {}
        history = [written("c0", 1, "k", "a", start=0.0, end=1.0, index=2,
                           executed_at=executed_at),
                   operation("c1", 1, "get", "k", start=2.0, end=3.0, output=(True, "a")),
                   written("c0", 2, "k", "b", start=4.0, end=5.0, index=3,
                           executed_at=executed_at),
                   operation("c1", 2, "get", "k", start=6.0, end=7.0, output=(True, "b"))]

        result, segments = check_in_segments(history, executed_at)

        self.assertTrue(result.ok, result.message)
        self.assertEqual(segments, 4)
        self.assertEqual(result.operations, 4)

    def test_stale_read_after_pause_rejected(self):
        executed_at: dict = {}
        history = [written("c0", 1, "k", "a", start=0.0, end=1.0, index=2,
                           executed_at=executed_at),
                   written("c0", 2, "k", "b", start=2.0, end=3.0, index=3,
                           executed_at=executed_at),
                   operation("c1", 1, "get", "k", start=4.0, end=5.0, output=(True, "a"))]
        result, _ = check_in_segments(history, executed_at)
        self.assertFalse(result.ok)

    def test_read_against_log_order_rejected(self):
        # Os dois PUTs são concorrentes, e o log executou "a" por último. Uma
        # leitura depois de ambos que vê "b" contradiz o log do próprio cluster.
        executed_at: dict = {}
        history = [written("c0", 1, "k", "a", start=0.0, end=1.0, index=3,
                           executed_at=executed_at),
                   written("c1", 1, "k", "b", start=0.5, end=1.5, index=2,
                           executed_at=executed_at),
                   operation("c2", 1, "get", "k", start=2.0, end=3.0, output=(True, "b"))]
        self.assertTrue(check_linearizability(history).ok)
        result, _ = check_in_segments(history, executed_at)
        self.assertFalse(result.ok)


class ChaosTest(unittest.TestCase):
    def run_chaos_and_check(self, config: ChaosConfig) -> None:
        output = io.StringIO()
        report = run_chaos(config, output)
        if report.skipped:
            self.skipTest(report.skipped)
        self.assertEqual(report.problems, [], "\n" + output.getvalue())
        answered = sum(count for label, count in report.operations.counts.items()
                       if label.endswith(" ok"))
        self.assertGreater(answered, 200, "\n" + output.getvalue())
        self.assertGreaterEqual(report.faults.total(), 3, "\n" + output.getvalue())

    def test_chaos_on_loopback(self):
        self.run_chaos_and_check(ChaosConfig(seed=chosen_seed(), seconds=LOOPBACK_SECONDS))

    def test_chaos_in_network_namespaces(self):
        reason = NamespaceFaults.unavailable_reason()
        if reason is not None:
            self.skipTest(reason)
        self.run_chaos_and_check(ChaosConfig(seed=chosen_seed(), seconds=NETNS_SECONDS,
                                             netns=True))


if __name__ == "__main__":
    unittest.main()
