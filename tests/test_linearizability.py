"""A conferência de linearizabilidade de raft_example.py.

Primeiro em históricos escritos à mão, linearizáveis ou não, e em históricos
sorteados a partir de um registrador atômico. Depois num cluster simulado
com o executor estragado de propósito: a conferência precisa achar a leitura
velha e a escrita perdida mesmo quando todas as propriedades do Raft valem.
"""

import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raft_example import (  # noqa: E402
    Cluster,
    Operation,
    SafetyViolation,
    check_linearizability,
    run_random_schedule,
)

INF = float("inf")


def put(client, key, value, invoke, response, status="ok"):
    return Operation(client, 0, "put", key, value, invoke=invoke,
                     response=response if status == "ok" else None, status=status)


def get(client, key, value, invoke, response):
    found = value is not None
    return Operation(client, 0, "get", key, invoke=invoke, response=response,
                     output=(found, value), status="ok")


def delete(client, key, found, invoke, response, status="ok"):
    return Operation(client, 0, "delete", key, invoke=invoke,
                     response=response if status == "ok" else None,
                     output=found if status == "ok" else None, status=status)


class HandWrittenHistoryTests(unittest.TestCase):

    def assertLinearizable(self, history):
        result = check_linearizability(history)
        self.assertTrue(result.ok, result.message)

    def assertNotLinearizable(self, history):
        result = check_linearizability(history)
        self.assertFalse(result.ok)
        self.assertFalse(result.inconclusive)
        return result

    def test_sequential_history(self):
        self.assertLinearizable([
            get("c1", "x", None, 0, 1),
            put("c1", "x", 1, 2, 3),
            get("c1", "x", 1, 4, 5),
            delete("c1", "x", True, 6, 7),
            get("c1", "x", None, 8, 9),
            delete("c1", "x", False, 10, 11),
        ])

    def test_stale_read(self):
        result = self.assertNotLinearizable([
            put("c1", "x", 1, 0, 1),
            put("c1", "x", 2, 2, 3),
            get("c2", "x", 1, 4, 5),
        ])
        self.assertEqual(result.key, "x")
        self.assertIn("get x -> 1", result.message)

    def test_lost_write(self):
        self.assertNotLinearizable([
            put("c1", "x", 1, 0, 1),
            get("c2", "x", None, 2, 3),
        ])

    def test_concurrent_write_either_value(self):
        for seen in (None, 1):
            with self.subTest(seen=seen):
                self.assertLinearizable([
                    put("c1", "x", 1, 0, 10),
                    get("c2", "x", seen, 1, 2),
                ])

    def test_value_flips_back(self):
        # Depois de uma leitura ver o valor novo, nenhuma leitura posterior
        # pode ver o antigo, mesmo com a escrita ainda em andamento.
        self.assertNotLinearizable([
            put("c1", "x", 1, 0, 10),
            get("c2", "x", 1, 1, 2),
            get("c3", "x", None, 3, 4),
        ])

    def test_real_time_order(self):
        self.assertNotLinearizable([
            put("c1", "x", 1, 0, 1),
            put("c2", "x", 2, 2, 3),
            get("c3", "x", 1, 4, 5),
        ])

    def test_unknown_write_may_apply(self):
        self.assertLinearizable([
            put("c1", "x", 1, 0, None, status="unknown"),
            get("c2", "x", 1, 5, 6),
        ])

    def test_unknown_write_may_vanish(self):
        self.assertLinearizable([
            put("c1", "x", 1, 0, None, status="unknown"),
            get("c2", "x", None, 5, 6),
            put("c2", "x", 2, 7, 8),
            get("c2", "x", 2, 9, 10),
        ])

    def test_unknown_write_applied_long_after(self):
        # A escrita desconhecida começa antes de 50 operações confirmadas e só
        # é vista depois delas: a busca precisa encaixá-la lá no fim.
        history = [put("c1", "x", "atrasada", 0, None, status="unknown")]
        for step in range(1, 51):
            history.append(put("c2", "x", step, 2 * step, 2 * step + 1))
        history.append(get("c3", "x", "atrasada", 200, 201))
        self.assertLinearizable(history)

    def test_unknown_write_seen_then_lost(self):
        history = [put("c1", "x", "atrasada", 0, None, status="unknown")]
        for step in range(1, 51):
            history.append(put("c2", "x", step, 2 * step, 2 * step + 1))
        history += [get("c3", "x", "atrasada", 200, 201), get("c3", "x", 50, 202, 203)]
        self.assertNotLinearizable(history)

    def test_unknown_write_not_before_invoke(self):
        self.assertNotLinearizable([
            get("c2", "x", 1, 0, 1),
            put("c1", "x", 1, 2, None, status="unknown"),
        ])

    def test_delete_results_checked(self):
        self.assertNotLinearizable([delete("c1", "x", True, 0, 1)])
        self.assertNotLinearizable([
            put("c1", "x", 1, 0, 1),
            delete("c1", "x", False, 2, 3),
        ])
        self.assertLinearizable([
            put("c1", "x", 1, 0, 1),
            delete("c2", "x", None, 2, None, status="unknown"),
            get("c1", "x", None, 5, 6),
        ])

    def test_keys_checked_separately(self):
        result = self.assertNotLinearizable([
            put("c1", "x", 1, 0, 1),
            get("c1", "x", 1, 2, 3),
            put("c1", "y", 1, 0, 1),
            get("c1", "y", None, 2, 3),
        ])
        self.assertEqual(result.key, "y")

    def test_failed_reads_ignored(self):
        failed = Operation("c1", 0, "get", "x", invoke=0, status="failed")
        self.assertLinearizable([failed, put("c1", "x", 1, 1, 2)])

    def test_search_limit_inconclusive(self):
        history = [put(f"c{number}", "x", number, 0, None, status="unknown")
                   for number in range(12)]
        history.append(get("c99", "x", 1000, 1, 2))
        result = check_linearizability(history, max_states=50)
        self.assertFalse(result.ok)
        self.assertTrue(result.inconclusive)


def random_atomic_history(rng: random.Random, operations: int, clients: int) -> list:
    """Um histórico linearizável por construção: cada operação acontece de
    verdade num instante sorteado dentro do seu intervalo."""
    value = None
    next_value = 1
    free_at = [0.0] * clients
    events = []
    for _ in range(operations):
        client = rng.randrange(clients)
        invoke = free_at[client] + rng.uniform(0, 2)
        point = invoke + rng.uniform(0, 2)
        response = point + rng.uniform(0, 2)
        free_at[client] = response
        events.append((point, client, invoke, response))
    history = []
    for point, client, invoke, response in sorted(events):
        kind = rng.choice(("put", "get", "get", "delete"))
        name = f"c{client}"
        if kind == "put":
            history.append(put(name, "x", next_value, invoke, response))
            value = next_value
            next_value += 1
        elif kind == "get":
            history.append(get(name, "x", value, invoke, response))
        else:
            history.append(delete(name, "x", value is not None, invoke, response))
            value = None
    return history


class GeneratedHistoryTests(unittest.TestCase):

    def test_atomic_histories_pass(self):
        rng = random.Random(1)
        for _ in range(200):
            history = random_atomic_history(rng, rng.randint(1, 30), rng.randint(1, 5))
            result = check_linearizability(history)
            self.assertTrue(result.ok, result.message)

    def test_read_of_unwritten_value_fails(self):
        rng = random.Random(2)
        for _ in range(100):
            history = random_atomic_history(rng, rng.randint(2, 30), rng.randint(1, 5))
            reads = [operation for operation in history if operation.kind == "get"]
            if not reads:
                continue
            rng.choice(reads).output = (True, -1)
            self.assertFalse(check_linearizability(history).ok)


class BrokenExecutorTests(unittest.TestCase):
    """O executor estragado de propósito viola a linearizabilidade, mas não o Raft."""

    def partition_old_leader(self, cluster: Cluster) -> tuple:
        cluster.run_until(lambda: cluster.leader() is not None, 5.0)
        old = cluster.leader()
        writer = cluster.client("c1")
        writer.submit("put", "x", 1)
        cluster.run_until(lambda: writer.idle, 5.0)
        cluster.run_for(0.2)
        cluster.isolate(old)
        cluster.run_until(lambda: cluster.leader() not in (None, old), 3.0)
        return old, cluster.leader()

    def test_stale_read_detected(self):
        cluster = Cluster(5, seed=1, broken_executor="stale_reads")
        old, new = self.partition_old_leader(cluster)
        writer, reader = cluster.client("c1"), cluster.client("c2")
        writer.submit("put", "x", 2, target=new)
        cluster.run_until(lambda: writer.idle, 5.0)
        operation = reader.submit("get", "x", target=old)
        cluster.run_until(lambda: reader.idle, 5.0)
        self.assertEqual(operation.output, (True, 1))
        result = check_linearizability(cluster.history)
        self.assertFalse(result.ok)
        self.assertIn("get x -> 1", result.message)

    def test_read_index_prevents_stale_read(self):
        cluster = Cluster(5, seed=1)
        old, new = self.partition_old_leader(cluster)
        writer, reader = cluster.client("c1"), cluster.client("c2")
        writer.submit("put", "x", 2, target=new)
        cluster.run_until(lambda: writer.idle, 5.0)
        operation = reader.submit("get", "x", target=old)
        cluster.run_until(lambda: reader.idle, 5.0)
        self.assertEqual(operation.output, (True, 2))
        self.assertTrue(check_linearizability(cluster.history).ok)

    def test_early_ack_detected(self):
        cluster = Cluster(5, seed=2, broken_executor="early_ack")
        old, new = self.partition_old_leader(cluster)
        writer, reader = cluster.client("c1"), cluster.client("c2")
        write = writer.submit("put", "x", 5, target=old)
        cluster.run_until(lambda: writer.idle, 5.0)
        self.assertEqual(write.status, "ok")
        reader.submit("get", "x", target=new)
        cluster.run_until(lambda: reader.idle, 5.0)
        self.assertFalse(check_linearizability(cluster.history).ok)

    def test_random_schedules_find_stale_reads(self):
        for seed in range(1, 301):
            try:
                run_random_schedule(seed, broken_executor="stale_reads")
            except SafetyViolation as error:
                self.assertIn("linearizabilidade", error.message)
                return
        self.fail("nenhuma leitura velha em 300 cronogramas com o executor estragado")


if __name__ == "__main__":
    unittest.main()
