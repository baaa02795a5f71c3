"""Testes do lançador iniciar_raft_distribuido.py.

A primeira parte testa funções puras (partições, escolha do líder, console). A segunda inicia
clusters de verdade: processos reais em 127.0.0.1, portas livres escolhidas na hora, pastas de
dados temporárias, e espera por condições com prazo. Cada teste mata no fim, pelo PID, todo
processo cuja linha de comando contém a sua pasta temporária; só os processos dele a contêm.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "iniciar_raft_distribuido.py"
sys.path.insert(0, str(ROOT))

import iniciar_raft_distribuido as launcher  # noqa: E402

HAS_PROC = Path("/proc/self/cmdline").exists()
START_TIMEOUT_S = 30.0  # início do cluster e eleição, com folga para uma máquina de CI lenta
COMMAND_TIMEOUT_S = 20.0  # prazo para a saída de um comando do console aparecer
EXIT_TIMEOUT_S = 20.0


# ---------------------------------------------------------------------------------------------
# Funções puras
# ---------------------------------------------------------------------------------------------

def make_status(node_id, state, term, leader_id):
    return {"id": str(node_id), "state": state, "term": term, "leader_id": leader_id,
            "url": f"http://127.0.0.1:{9000 + node_id}"}


class FindLeaderTest(unittest.TestCase):
    def test_majority_confirms_leader(self):
        statuses = {0: make_status(0, "leader", 2, "0"), 1: make_status(1, "follower", 2, "0"),
                    2: make_status(2, "follower", 2, "0")}
        leader, others = launcher.find_leader(statuses, 3)
        self.assertEqual(leader["id"], "0")
        self.assertEqual(others, [])

    def test_isolated_old_leader_not_confirmed(self):
        statuses = {0: make_status(0, "leader", 1, "0"), 1: make_status(1, "leader", 2, "1"),
                    2: make_status(2, "follower", 2, "1")}
        leader, others = launcher.find_leader(statuses, 3)
        self.assertEqual(leader["id"], "1")
        self.assertEqual([stale["id"] for stale in others], ["0"])

    def test_lone_leader_of_three_not_confirmed(self):
        statuses = {0: make_status(0, "leader", 3, "0")}
        leader, others = launcher.find_leader(statuses, 3)
        self.assertIsNone(leader)
        self.assertEqual(len(others), 1)

    def test_partition_ignores_followers_across(self):
        # Logo depois de particionar, 1 e 2 ainda apontam para 0, mas não o alcançam mais.
        statuses = {0: make_status(0, "leader", 1, "0"), 1: make_status(1, "follower", 1, "0"),
                    2: make_status(2, "follower", 1, "0")}
        leader, _ = launcher.find_leader(statuses, 3, [[0], [1, 2]])
        self.assertIsNone(leader)
        leader, _ = launcher.find_leader(statuses, 3, [[0, 1], [2]])
        self.assertEqual(leader["id"], "0")


class PartitionParsingTest(unittest.TestCase):
    def test_groups_parsed(self):
        self.assertEqual(launcher.parse_partition("0 1 | 2", 3), [[0, 1], [2]])
        self.assertEqual(launcher.parse_partition("0|1,2", 3), [[0], [1, 2]])
        self.assertEqual(launcher.parse_partition("4 | 0 1 | 2 3", 5), [[4], [0, 1], [2, 3]])

    def test_invalid_groups_explained(self):
        cases = {
            "0 1 2": "pelo menos dois grupos",
            "0 | 0 1 2": "mais de um grupo",
            "0 | 1": "faltam: 2",
            "0 | 1 | 3": "nó inválido: '3'",
            "0 | | 1 2": "grupo vazio",
            "a | 1 2": "nó inválido: 'a'",
        }
        for text, expected in cases.items():
            with self.subTest(text=text):
                with self.assertRaises(ValueError) as raised:
                    launcher.parse_partition(text, 3)
                self.assertIn(expected, str(raised.exception))

    def test_blocked_urls_outside_group(self):
        urls = ["u0", "u1", "u2"]
        groups = [[0, 1], [2]]
        self.assertEqual(launcher.blocked_urls(groups, urls, 0), ["u2"])
        self.assertEqual(launcher.blocked_urls(groups, urls, 1), ["u2"])
        self.assertEqual(launcher.blocked_urls(groups, urls, 2), ["u0", "u1"])


class ConsoleParsingTest(unittest.TestCase):
    def make_console(self):
        out, err = io.StringIO(), io.StringIO()
        console = launcher.Console(None, launcher.Output(out, err, color=False))
        return console, out, err

    def test_mistyped_command_suggests_name(self):
        console, _, err = self.make_console()
        self.assertFalse(console.execute("stauts"))
        self.assertIn("você quis dizer 'estado'", err.getvalue())

    def test_unknown_command_lists_commands(self):
        console, _, err = self.make_console()
        self.assertFalse(console.execute("zzzzzz"))
        self.assertIn("comando desconhecido: 'zzzzzz'", err.getvalue())
        self.assertIn("gravar", err.getvalue())

    def test_missing_value_shows_usage(self):
        console, _, err = self.make_console()
        self.assertFalse(console.execute("put x"))
        self.assertIn("uso: gravar <chave> <valor> [@nó]", err.getvalue())

    def test_accents_and_case_ignored(self):
        console, out, err = self.make_console()
        self.assertTrue(console.execute("AJUDA"))
        self.assertIn("particionar", out.getvalue())
        # Sem cluster o comando falha, mas foi reconhecido como 'lider'.
        self.assertFalse(console.execute("Líder"))
        self.assertIn("não está ligado a um cluster", err.getvalue())
        self.assertNotIn("desconhecido", err.getvalue())

    def test_quit_stops_script(self):
        console, out, _ = self.make_console()
        ok = console.run(io.StringIO("# comentário\n\nlogs nao\nsair\najuda\n"), interactive=False)
        self.assertTrue(ok)
        self.assertTrue(console.quit_requested)
        self.assertIn("raft> logs nao", out.getvalue())
        self.assertNotIn("raft> ajuda", out.getvalue())

    def test_value_and_target_parsing(self):
        self.assertEqual(launcher.parse_value("42"), 42)
        self.assertEqual(launcher.parse_value('{"a": [1]}'), {"a": [1]})
        self.assertEqual(launcher.parse_value("Ana Maria"), "Ana Maria")
        self.assertEqual(launcher.split_target("x 1 @2"), ("x 1", "2"))
        self.assertEqual(launcher.split_target("x 1"), ("x 1", None))
        self.assertEqual(launcher.split_target('x "@2"'), ('x "@2"', None))


class ColorTest(unittest.TestCase):
    class FakeTerminal(io.StringIO):
        def isatty(self):
            return True

    def test_color_only_on_terminal(self):
        self.assertTrue(launcher.color_enabled(self.FakeTerminal(), {}))
        self.assertFalse(launcher.color_enabled(io.StringIO(), {}))

    def test_no_color_and_dumb_terminal(self):
        self.assertFalse(launcher.color_enabled(self.FakeTerminal(), {"NO_COLOR": "1"}))
        self.assertFalse(launcher.color_enabled(self.FakeTerminal(), {"TERM": "dumb"}))
        self.assertTrue(launcher.color_enabled(self.FakeTerminal(), {"NO_COLOR": ""}))

    def test_node_lines_prefixed(self):
        out = io.StringIO()
        launcher.Output(out, out, color=False).node_line(2, "texto")
        self.assertEqual(out.getvalue(), "nó 2 | texto\n")
        out = io.StringIO()
        launcher.Output(out, out, color=True).node_line(2, "texto")
        self.assertIn("\033[", out.getvalue())


class HelpTest(unittest.TestCase):
    def test_help_in_portuguese(self):
        result = subprocess.run([sys.executable, str(LAUNCHER), "--help"], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(result.returncode, 0)
        self.assertIn("uso:", result.stdout)
        self.assertIn("número de nós", result.stdout)
        self.assertIn("--base-port", result.stdout)

    def test_bad_option_in_portuguese(self):
        result = subprocess.run([sys.executable, str(LAUNCHER), "--nodes", "zero"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("erro: opção --nodes: esperado um número inteiro", result.stderr)


# ---------------------------------------------------------------------------------------------
# Clusters de verdade
# ---------------------------------------------------------------------------------------------

def free_base_port(count: int) -> int:
    """Acha `count` portas consecutivas livres em 127.0.0.1.

    Fica abaixo de 32768, o começo da faixa de portas efêmeras do Linux, para não colidir com
    as portas de origem das conexões que os próprios nós abrem.
    """
    for _ in range(200):
        base = random.randrange(20000, 32000 - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("não achei portas livres entre 20000 e 32000")


def processes_with(marker: str) -> list[int]:
    """Devolve os PIDs vivos (zumbis não contam) cuja linha de comando contém `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0]
        if marker in command and state != "Z":
            pids.append(int(entry.name))
    return pids


def node_process_pid(marker: str, node_id: int) -> int | None:
    """Devolve o PID do processo do nó (não o do seu supervisor) cuja linha de comando contém `marker`."""
    for pid in processes_with(marker):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        is_node = len(argv) > 1 and argv[1].endswith("raft_distribuido.py")
        if is_node and argv[argv.index("--id") + 1] == str(node_id):
            return pid
    return None


def wait_until(condition, timeout: float, interval: float = 0.1):
    """Repete `condition()` até ela devolver algo verdadeiro ou o prazo acabar.

    Devolve o último valor de `condition()`.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def get_status(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/status")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


class LauncherProcess:
    """O lançador rodando num processo, com a entrada num pipe e a saída lida por uma thread."""

    def __init__(self, args: list[str], cwd: Path, stdin=subprocess.PIPE):
        environment = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), *args], cwd=cwd, env=environment, stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self._cursor = 0
        self._closed = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def send(self, command: str) -> None:
        self.process.stdin.write(command.encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def expect(self, pattern: str, timeout: float = COMMAND_TIMEOUT_S) -> re.Match:
        """Espera uma linha nova que case com `pattern` e devolve o match.

        As linhas já vistas por um expect anterior não contam de novo.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                while self._cursor < len(self.lines):
                    line = self.lines[self._cursor]
                    self._cursor += 1
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    tail = "\n".join(self.lines[-60:])
                    reason = "a saída terminou" if self._closed else f"passaram {timeout:g} s"
                    raise AssertionError(f"{reason} sem uma linha que case com {pattern!r}; "
                                         f"últimas linhas:\n{tail}")
                self._changed.wait(remaining)

    def finish(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        """Fecha a entrada (fim do roteiro) e devolve o código de saída."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        return self.wait(timeout)

    def wait(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(EXIT_TIMEOUT_S)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._reader.join(5)


@unittest.skipUnless(HAS_PROC, "precisa de /proc (Linux) para achar os processos dos nós")
class LauncherClusterTest(unittest.TestCase):
    def setUp(self):
        self.directory = Path(tempfile.mkdtemp(prefix="teste-lancador-"))
        self.addCleanup(self._remove_directory)
        self.addCleanup(self._kill_leftovers)
        self.base_port = free_base_port(3)

    def _kill_leftovers(self):
        for pid in processes_with(str(self.directory)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _remove_directory(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    def start_launcher(self, *extra: str, stdin=subprocess.PIPE, data_dir: bool = True) -> LauncherProcess:
        args = ["--base-port", str(self.base_port), *extra]
        if data_dir:
            args += ["--data-dir", str(self.directory / "dados")]
        process = LauncherProcess(args, cwd=self.directory, stdin=stdin)
        self.addCleanup(process.cleanup)
        return process

    def assert_no_node_left(self, timeout: float = 10.0):
        left = wait_until(lambda: not processes_with(str(self.directory)), timeout)
        self.assertTrue(left, f"processos que sobraram: {processes_with(str(self.directory))}")

    def test_defaults_elect_leader(self):
        # Sem --data-dir: os dados vão para ./dados-raft, relativo à pasta do teste.
        run = self.start_launcher(data_dir=False)
        run.expect(r"^líder eleito: nó [012] \(http://127\.0\.0\.1:\d+, termo \d+\)", START_TIMEOUT_S)
        run.expect(r"curl .*/kv/x")
        run.send("estado")
        run.expect(r"^nó\s+processo\s+papel\s+termo\s+líder\s+commit\s+último índice\s+aplicado")
        for node in range(3):
            run.expect(rf"^{node}\s+rodando \(pid \d+\)\s+(líder|seguidor)\s")

        # Um nó que morre sem o lançador pedir gera um aviso com as últimas linhas dele.
        node_pid = node_process_pid(str(self.directory), 1)
        self.assertIsNotNone(node_pid)
        os.kill(node_pid, signal.SIGKILL)
        run.expect(r"^aviso: o nó 1 terminou sem que o lançador pedisse \(saiu com código 137 "
                   r"\(o nó recebeu o sinal SIGKILL\)\)")
        run.expect(r"use 'iniciar 1'")
        run.send("iniciar 1")
        run.expect(r"^nó 1 iniciado")
        self.assertEqual(run.finish(), 0, run.output())
        self.assertTrue((self.directory / "dados-raft" / "no-0").is_dir())
        self.assertIn("todos os nós foram parados", run.output())
        self.assert_no_node_left()

    def test_crash_leader_then_catch_up(self):
        run = self.start_launcher()
        leader = int(run.expect(r"^líder eleito: nó (\d)", START_TIMEOUT_S).group(1))
        other = (leader + 1) % 3

        run.send("put x 1")
        run.expect(r"^ok: x = 1 \(índice \d+")
        run.send("kill lider")
        run.expect(rf"^nó {leader} morto com SIGKILL")
        run.send("estado")
        run.expect(rf"^{leader}\s+morto \(SIGKILL\)")

        # A escrita espera a nova eleição entre os dois que sobraram.
        run.send("put y 2")
        y_index = int(run.expect(r"^ok: y = 2 \(índice (\d+)").group(1))
        run.send(f"get x @{other}")
        run.expect(rf"^x = 1 \(lido pelo nó {other}\)")

        # O líder antigo volta com o log do disco e recebe a entrada que perdeu.
        run.send(f"start {leader}")
        run.expect(rf"^nó {leader} iniciado")
        run.send("esperar sincronia")
        run.expect(r"^nós 0, 1, 2 sincronizados")
        old_leader_status = get_status(self.base_port + leader)
        self.assertGreaterEqual(old_leader_status["last_applied"], y_index)
        self.assertGreaterEqual(old_leader_status["commit_index"], y_index)

        run.send(f"parar {other}")
        run.expect(rf"^nó {other} parado \(saiu com código 0\)")
        run.send("sair")
        self.assertEqual(run.wait(), 0, run.output())
        self.assert_no_node_left()

    def test_partition_minority_cannot_commit(self):
        run = self.start_launcher("--command-timeout", "2")
        run.expect(r"^líder eleito", START_TIMEOUT_S)
        run.send("put antes 1")
        run.expect(r"^ok: antes = 1")

        run.send("partition 0 | 1 2")
        run.expect(r"^partição aplicada: 0 \| 1 2")
        run.send("esperar lider 15")
        majority_leader = int(run.expect(r"^líder: nó ([12]) ").group(1))

        # O nó 0 está sozinho: nenhuma escrita por ele chega à maioria dentro do prazo.
        run.send("put a 1 @0")
        run.expect(r"^erro: (tempo esgotado|o nó 0 respondeu)")
        run.send("get a @1")
        run.expect(r"^erro: a chave 'a' não existe")
        run.send("put b 2 @1")
        run.expect(r"^ok: b = 2")
        isolated = get_status(self.base_port)
        majority = get_status(self.base_port + majority_leader)
        self.assertLess(isolated["commit_index"], majority["commit_index"])

        run.send("heal")
        run.expect(r"^partição desfeita")
        run.send("esperar sincronia 15")
        run.expect(r"^nós 0, 1, 2 sincronizados")
        statuses = [get_status(self.base_port + node) for node in range(3)]
        for field in ("commit_index", "last_applied", "last_log_index", "last_log_term"):
            with self.subTest(field=field):
                self.assertEqual(len({status[field] for status in statuses}), 1, statuses)
        run.send("get b @0")
        run.expect(r"^b = 2 \(lido pelo nó 0\)")

        # Dois comandos falharam de propósito, então o código de saída é 1.
        self.assertEqual(run.finish(), 1, run.output())
        self.assert_no_node_left()

    def test_sigkill_launcher_leaves_no_node(self):
        run = self.start_launcher()
        run.expect(r"^líder eleito", START_TIMEOUT_S)
        # Três supervisores e três nós. O próprio lançador também tem a pasta na linha de comando.
        children = [pid for pid in processes_with(str(self.directory)) if pid != run.process.pid]
        self.assertEqual(len(children), 6, children)
        run.process.kill()
        run.wait()
        self.assert_no_node_left()

    def test_sigterm_launcher_stops_nodes(self):
        run = self.start_launcher()
        run.expect(r"^líder eleito", START_TIMEOUT_S)
        run.process.terminate()
        self.assertEqual(run.wait(), 128 + signal.SIGTERM)
        self.assertIn("todos os nós foram parados", run.output())
        self.assertEqual(processes_with(str(self.directory)), [])

    def test_busy_port_names_node(self):
        busy_port = self.base_port + 1
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", busy_port))
            blocker.listen()
            run = self.start_launcher(stdin=subprocess.DEVNULL)
            code = run.wait(START_TIMEOUT_S)
        output = run.output()
        self.assertEqual(code, 1, output)
        self.assertIn(f"erro: o nó 1 (http://127.0.0.1:{busy_port}) terminou durante a inicialização",
                      output)
        self.assertIn(f"última saída do nó 1:", output)
        self.assertIn(f"a porta {busy_port} já está em uso", output)
        self.assertIn("--base-port", output)
        self.assert_no_node_left()


if __name__ == "__main__":
    unittest.main()
