"""Durabilidade: log.bin cortado em cada byte, danificado em cada byte, e kill -9.

Os dois primeiros testes usam DiskStorage direto, sem processos, para poder
tentar cada posição do arquivo. O terceiro é a versão curta de
tests/durability.py: kill -9 do líder, de todos os nós e de um nó sorteado no
meio de escritas, com processos reais.
"""

import io
import os
import random
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from durability import DurabilityConfig, run_durability  # noqa: E402
from raft_distribuido import (RECORD_HEADER, DiskStorage, LogEntry,  # noqa: E402
                              StorageError)
from robustness_util import LocalCluster, client_request  # noqa: E402

ENTRIES = [
    LogEntry(1, 1, None),
    LogEntry(1, 2, {"op": "put", "key": "a", "value": {"texto": "ação", "n": [1, 2.5]}}),
    LogEntry(2, 3, {"op": "delete", "key": "a", "client_id": "c1", "sequence": 7}),
    LogEntry(2, 4, {"op": "put", "key": "b", "value": "último"}),
]

# Quantos bytes tem cada valor no teste do seguidor atrasado, e quantos valores
# ele perde: juntos passam de 1 MiB, o limite de corpo de um AppendEntries.
LAGGING_VALUE_BYTES = 3000
LAGGING_WRITES = 500


class StoredLogTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="raft-disco-")
        self.addCleanup(shutil.rmtree, self.folder, ignore_errors=True)
        self.messages: list = []
        template = os.path.join(self.folder, "modelo")
        storage = DiskStorage(template, self.record_message)
        storage.open()
        storage.append(ENTRIES)
        storage.sync()
        storage.close()
        with open(os.path.join(template, "log.bin"), "rb") as file:
            self.data = file.read()
        self.offsets = self.record_offsets()

    def record_message(self, level: int, text: str) -> None:
        self.messages.append(text)

    def record_offsets(self) -> list:
        """Devolve a posição de início de cada registro, lendo os cabeçalhos."""
        offsets = []
        position = 0
        while position < len(self.data):
            offsets.append(position)
            _, length, _ = RECORD_HEADER.unpack_from(self.data, position)
            position += RECORD_HEADER.size + length
        self.assertEqual(len(offsets), len(ENTRIES))
        return offsets

    def open_log(self, data: bytes) -> tuple:
        """Abre uma pasta nova com `data` em log.bin; devolve (entradas, tamanho final)."""
        folder = tempfile.mkdtemp(dir=self.folder)
        path = os.path.join(folder, "log.bin")
        with open(path, "wb") as file:
            file.write(data)
        storage = DiskStorage(folder, self.record_message)
        try:
            _, _, log = storage.open()
            entries = list(log)
        finally:
            storage.close()
        size = os.path.getsize(path)
        shutil.rmtree(folder)
        return entries, size

    def test_last_record_cut_at_every_byte(self):
        last_start = self.offsets[-1]
        self.assertGreater(len(self.data) - last_start, 20)
        for size in range(last_start, len(self.data)):
            with self.subTest(bytes_kept=size):
                self.messages.clear()
                entries, final_size = self.open_log(self.data[:size])
                self.assertEqual(entries, ENTRIES[:-1])
                self.assertEqual(final_size, last_start,
                                 "o pedaço do registro cortado ficou no arquivo")
                if size > last_start:
                    self.assertTrue(any("log.bin" in message and str(last_start) in message
                                        for message in self.messages), self.messages)

    def test_damaged_middle_record_stops_at_every_byte(self):
        start, end = self.offsets[1], self.offsets[2]
        for position in range(start, end):
            with self.subTest(position=position):
                damaged = bytearray(self.data)
                damaged[position] ^= 0xFF
                with self.assertRaises(StorageError) as caught:
                    self.open_log(bytes(damaged))
                text = str(caught.exception)
                self.assertIn("log.bin", text)
                self.assertIn(f"posição {start}", text)


class KillDuringWritesTest(unittest.TestCase):
    def test_kill_leader_all_and_one(self):
        seed = int(os.environ.get("RAFT_DURABILITY_SEED")
                   or random.SystemRandom().randrange(10**6))
        output = io.StringIO()
        report = run_durability(DurabilityConfig(seed=seed, rounds=3, mode="cycle"), output)
        self.assertEqual(report.problems, [], "\n" + output.getvalue())
        self.assertEqual(report.rounds.total(), 3, output.getvalue())
        self.assertGreater(report.acknowledged, 50, output.getvalue())


class LaggingFollowerTest(unittest.TestCase):
    def test_follower_catches_up_after_large_backlog(self):
        cluster = LocalCluster(3)
        self.addCleanup(cluster.cleanup)
        cluster.start_all()
        deadline = time.monotonic() + 10
        while cluster.agreed_leader() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        leader = cluster.agreed_leader()
        self.assertIsNotNone(leader, cluster.describe())
        follower = (leader + 1) % 3
        cluster.terminate(follower)
        node = cluster.nodes[leader]
        body = ('{"value": "' + "x" * LAGGING_VALUE_BYTES + '"}').encode()
        last_index = 0
        for number in range(LAGGING_WRITES):
            result = client_request(node.host, node.port, "PUT", f"/kv/k{number}", body, 10)
            self.assertEqual(result.status, 200, result)
            last_index = result.payload["index"]

        cluster.start(follower)

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = cluster.nodes[follower].status()
            if status is not None and status["last_applied"] >= last_index:
                break
            time.sleep(0.1)
        status = cluster.nodes[follower].status()
        self.assertIsNotNone(status, cluster.describe())
        self.assertGreaterEqual(status["last_applied"], last_index, cluster.describe())


if __name__ == "__main__":
    unittest.main()
