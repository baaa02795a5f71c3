"""A linha de comando e a demonstração narrada de raft_example.py."""

import io
import os
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from raft_example import SCENARIOS, Demo  # noqa: E402


def run_example(*arguments: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    """Roda raft_example.py com a saída num pipe (não é um terminal)."""
    environment = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, os.path.join(ROOT, "raft_example.py"), *arguments],
                          capture_output=True, text=True, encoding="utf-8",
                          env=environment, timeout=120, stdin=subprocess.DEVNULL)


class DemoOutputTests(unittest.TestCase):

    def test_default_demo_reproducible(self):
        # Sementes de hash diferentes mudam a ordem de conjuntos de textos; a
        # saída não pode depender disso.
        first = run_example(hash_seed="1")
        second = run_example(hash_seed="2")
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(first.stdout, second.stdout)
        self.assertIn("Passo 1. Nenhum líder ainda", first.stdout)
        self.assertIn("Partição: o líder fica na minoria", first.stdout)
        self.assertIn("virei líder do termo", first.stdout)
        self.assertIn("nenhuma violação", first.stdout)
        self.assertEqual(first.stderr, "")

    def test_seed_changes_run(self):
        default = run_example()
        other = run_example("--seed", "7")
        self.assertEqual(other.returncode, 0, other.stderr)
        self.assertIn("(semente 7)", other.stdout)
        self.assertNotEqual(default.stdout, other.stdout)

    def test_every_scenario_runs(self):
        for name in SCENARIOS:
            for nodes in ("3", "5"):
                with self.subTest(scenario=name, nodes=nodes):
                    result = run_example("--scenario", name, "--nodes", nodes)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertIn("nenhuma violação", result.stdout)

    def test_details_show_heartbeats(self):
        result = run_example("--scenario", "eleicao", "--details")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("heartbeat de", result.stdout)
        self.assertIn("estado: termo=", result.stdout)


class CommandLineTests(unittest.TestCase):

    def test_help_in_portuguese(self):
        result = run_example("--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("uso: raft_example.py", result.stdout)
        self.assertIn("opções:", result.stdout)
        self.assertIn("mostra esta ajuda e sai", result.stdout)
        self.assertIn("--verify N", result.stdout)
        self.assertNotIn("usage:", result.stdout)
        for name in SCENARIOS:
            self.assertIn(name, result.stdout)

    def test_list_scenarios(self):
        result = run_example("--list")
        self.assertEqual(result.returncode, 0)
        self.assertEqual(len(result.stdout.splitlines()), len(SCENARIOS))

    def test_invalid_arguments_rejected(self):
        cases = [
            (("--nodes", "2"), "--nodes 2"),
            (("--speed", "-1"), "--speed -1"),
            (("--scenario", "nenhum"), "opção inválida"),
            (("--verify", "0"), "--verify 0"),
            (("--nodes", "abc"), "valor inválido"),
        ]
        for arguments, expected in cases:
            with self.subTest(arguments=arguments):
                result = run_example(*arguments)
                self.assertEqual(result.returncode, 2)
                self.assertIn("erro:", result.stderr)
                self.assertIn(expected, result.stderr)

    def test_verify_reports_counts(self):
        result = run_example("--verify", "4", "--jobs", "1")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("4 cronogramas, 0 com falha", result.stdout)
        self.assertIn("falhas injetadas", result.stdout)
        self.assertIn("operações de clientes", result.stdout)

    def test_verify_trace_replays_seed(self):
        first = run_example("--verify", "1", "--seed", "5", "--trace")
        second = run_example("--verify", "1", "--seed", "5", "--trace")
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        self.assertIn("=== semente 5 ===", first.stdout)
        self.assertIn("iniciando eleição", first.stdout)
        self.assertEqual(first.stdout, second.stdout)


class DemoApiTests(unittest.TestCase):

    def test_custom_scenario(self):
        def scenario(demo):
            demo.section("O líder cai", "Um cenário escrito pelo professor.")
            leader = demo.run_until_leader()
            demo.write("x", 1)
            demo.crash(leader)
            new_leader = demo.run_until_leader()
            self.assertNotEqual(new_leader, leader)
            demo.show()

        output = io.StringIO()
        Demo(nodes=3, seed=7, output=output).run(scenario)
        text = output.getvalue()
        self.assertIn("Passo 1. O líder cai", text)
        self.assertIn("fora do ar", text)
        self.assertIn("1:x=1", text)


if __name__ == "__main__":
    unittest.main()
