"""Teste rápido do benchmark (benchmarks/bench.py) no modo --quick.

O benchmark completo leva minutos e fica fora da suíte. Este teste só confere,
em poucos segundos, que ele inicia um cluster de verdade, mede cada fase, para
os processos e grava um JSON com os campos esperados.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
# Bem acima dos ~5 s que o modo --quick leva em dois núcleos.
RUN_TIMEOUT_S = 120

LOAD_FIELDS = ["clients", "ok", "errors", "seconds", "ops_per_s", "p50_ms", "p99_ms",
               "elections", "term_before", "term_after", "node_cpu_cores"]


class BenchmarkSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory(prefix="bench-smoke-")
        json_path = Path(cls.folder.name) / "resultado.json"
        cls.completed = subprocess.run(
            [sys.executable, str(BENCH), "--quick", "--quiet", "--json", str(json_path),
             "--work-dir", cls.folder.name],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=ROOT)
        cls.report = json.loads(json_path.read_text()) if json_path.exists() else None

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def setUp(self):
        self.assertEqual(self.completed.returncode, 0, self.completed.stderr[-3000:])
        self.assertIsNotNone(self.report, "o benchmark não gravou o JSON")
        self.first_round = self.report["systems"]["raft"]["rounds"][0]

    def test_report_names_machine(self):
        for name in ("nproc", "python", "cpu_model"):
            self.assertIn(name, self.report["machine"])
        self.assertIn("date", self.report)

    def test_loads_have_fields(self):
        for load in ("sequential_write", "writes_c1", "writes_c16", "writes_c64", "reads_c16"):
            for name in LOAD_FIELDS:
                self.assertIn(name, self.first_round[load], f"{load} sem {name}")
            self.assertGreater(self.first_round[load]["ok"], 0, load)
            self.assertEqual(self.first_round[load]["errors"], 0, load)

    def test_failover_measured(self):
        failover = self.first_round["failover"]
        self.assertEqual(len(failover["samples_ms"]), 1)
        self.assertGreater(failover["median_ms"], 0)

    def test_memory_and_disk_measured(self):
        memory = self.first_round["memory_and_disk"]
        self.assertGreaterEqual(memory["log_entries"], 300)
        self.assertGreater(memory["peak_rss_mib_max"], 0)
        self.assertGreater(memory["log_bytes_max"], 0)

    def test_startup_and_elections(self):
        self.assertGreater(self.first_round["startup_to_leader_ms"], 0)
        self.assertIn("elections_during_loads", self.first_round)

    def test_summary_and_table(self):
        summary = self.report["systems"]["raft"]["summary"]
        self.assertIn("writes_c64.ops_per_s", summary)
        self.assertEqual(set(summary["failover.median_ms"]), {"median", "min", "max"})
        self.assertIn("escritas/s, 64 clientes", self.completed.stdout)


if __name__ == "__main__":
    unittest.main()
