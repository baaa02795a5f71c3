"""Versão curta do fuzz de entradas hostis (tests/fuzz.py) e os defeitos achados.

FuzzTest faz uma execução com o segredo de cluster ligado (RPCs assinados e não
assinados) e outra sem segredo, como um estudante roda por padrão.
RAFT_FUZZ_SEED=N fixa a semente. KnownBugTest reproduz os defeitos que as provas
de robustez acharam, e EvictionTest confere as regras de troca de vaga entre
conexões (docs/ROBUSTEZ.md descreve cada defeito).
"""

import io
import json
import os
import random
import selectors
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fuzz import FuzzConfig, run_fuzz  # noqa: E402
from raft_distribuido import MAX_BODY_BYTES, MAX_CONNECTIONS, RaftHTTPServer  # noqa: E402
from robustness_util import LocalCluster, client_request  # noqa: E402


def chosen_seed() -> int:
    value = os.environ.get("RAFT_FUZZ_SEED")
    return int(value) if value else random.SystemRandom().randrange(10**6)


class FuzzTest(unittest.TestCase):
    def run_fuzz_and_check(self, config: FuzzConfig) -> None:
        output = io.StringIO()
        report = run_fuzz(config, output)
        self.assertEqual(report.problems, [], "\n" + output.getvalue())
        self.assertEqual(report.families.total(), config.requests, output.getvalue())
        self.assertGreater(report.slow_requests.total(), 0, output.getvalue())
        self.assertGreater(report.probes, 10, output.getvalue())

    def test_hostile_input_with_secret(self):
        self.run_fuzz_and_check(FuzzConfig(seed=chosen_seed(), requests=2500, min_seconds=7))

    def test_hostile_input_without_secret(self):
        self.run_fuzz_and_check(FuzzConfig(seed=chosen_seed(), requests=1500, min_seconds=5,
                                           secret=False))


def start_cluster(test: unittest.TestCase, extra_args: tuple = ()) -> LocalCluster:
    """Sobe três nós e espera um líder; o cluster é parado no fim do teste."""
    cluster = LocalCluster(3, extra_args=extra_args)
    test.addCleanup(cluster.cleanup)
    cluster.start_all()
    wait_leader(cluster)
    return cluster


def wait_leader(cluster: LocalCluster, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = cluster.agreed_leader()
        if leader is not None:
            return leader
        time.sleep(0.05)
    raise AssertionError("nenhum líder aceito por todos:\n" + cluster.describe())


class KnownBugTest(unittest.TestCase):
    """Reproduções dos defeitos achados pelo fuzz, que passam desde a correção."""

    def test_put_near_body_limit_keeps_leader(self):
        cluster = start_cluster(self, ("--request-timeout", "3000"))
        leader = wait_leader(cluster)
        term = cluster.nodes[leader].status()["term"]
        node = cluster.nodes[leader]
        body = json.dumps({"value": "x" * (MAX_BODY_BYTES - 100)}).encode()

        result = client_request(node.host, node.port, "PUT", "/kv/grande", body, 10)

        # Aceitar (200) ou recusar de saída (413) servem; 503 com eleições não.
        self.assertIn(result.status, (200, 413), result)
        self.assertEqual(cluster.nodes[leader].status()["term"], term, cluster.describe())

    def test_stale_votes_do_not_flood_log(self):
        cluster = start_cluster(self)
        leader = wait_leader(cluster)
        cluster.terminate(leader)
        cluster.start(leader)
        follower = cluster.nodes[(wait_leader(cluster) + 1) % 3]
        lines_before = len(follower.log_text().splitlines())

        for number in range(200):
            body = {"term": 1, "candidate_id": "x", "last_log_index": 0, "last_log_term": 0,
                    "sender_id": "x", "sender_url": f"http://10.0.0.{number % 250}:{number + 1}"}
            result = client_request(follower.host, follower.port, "POST",
                                    "/raft/request_vote", json.dumps(body).encode(), 5)
            self.assertEqual(result.status, 200, result)

        added = len(follower.log_text().splitlines()) - lines_before
        self.assertLess(added, 20, f"{added} linhas novas no log por 200 pedidos")

    def test_idle_connections_leave_room_for_others(self):
        cluster = start_cluster(self)
        follower = cluster.nodes[(wait_leader(cluster) + 1) % 3]
        idle = []
        self.addCleanup(lambda: [connection.close() for connection in idle])
        for _ in range(MAX_CONNECTIONS + 4):
            idle.append(socket.create_connection((follower.host, follower.port), timeout=5))

        result = client_request(follower.host, follower.port, "GET", "/status", None, 3)

        self.assertEqual(result.status, 200, result)

    def test_stalled_requests_leave_room_for_others(self):
        # Um cliente que manda um byte por vez fica no meio do pedido: parte
        # das conexões para nos cabeçalhos, parte no corpo.
        cluster = start_cluster(self)
        leader = wait_leader(cluster)
        node = cluster.nodes[leader]
        term = node.status()["term"]
        stalled = StalledConnections(node.host, node.port, MAX_CONNECTIONS + 4)
        self.addCleanup(stalled.stop)
        stalled.start()

        results = [client_request(node.host, node.port, "PUT", f"/kv/k{number}",
                                  json.dumps({"value": number}).encode(), 3)
                   for number in range(5)]

        self.assertEqual([result.status for result in results], [200] * 5, results)
        self.assertGreater(stalled.bytes_sent, 0)
        statuses = [member.status() for member in cluster.nodes]
        self.assertEqual([status["term"] for status in statuses], [term] * 3,
                         cluster.describe())

    def test_busy_clients_beyond_slots_keep_leader(self):
        # Mais clientes ativos que vagas num seguidor: eles tiram a vaga uns dos
        # outros, mas não a da conexão do líder, e não há eleição.
        cluster = start_cluster(self)
        leader = wait_leader(cluster)
        follower = cluster.nodes[(leader + 1) % 3]
        terms = [status["term"] for status in cluster.statuses()]
        # Conexões novas, uma por vez, disputam as vagas com as ocupadas.
        stop = threading.Event()
        newcomers = threading.Thread(target=fresh_connections,
                                     args=(follower.host, follower.port, stop), daemon=True)
        newcomers.start()
        self.addCleanup(newcomers.join, 10)
        self.addCleanup(stop.set)

        answered = ping_pong_clients(follower.host, follower.port, MAX_CONNECTIONS + 8,
                                     seconds=5.0)

        stop.set()
        self.assertGreater(answered, 1000)
        statuses = cluster.statuses()
        self.assertEqual([status["term"] for status in statuses], terms, cluster.describe())
        self.assertEqual(statuses[(leader + 1) % 3]["leader_id"],
                         cluster.nodes[leader].node_id)
        self.assertEqual(cluster.crash_lines(), [])


def fresh_connections(host: str, port: int, stop: threading.Event) -> None:
    """Faz um GET /status numa conexão nova a cada 20 ms, até `stop`."""
    while not stop.wait(0.02):
        client_request(host, port, "GET", "/status", None, 2)


def ping_pong_clients(host: str, port: int, count: int, seconds: float) -> int:
    """Mantém `count` conexões com um GET /status cada, mandando o próximo a
    cada resposta, por `seconds` segundos; devolve quantas respostas vieram.

    Uma conexão fechada pelo nó é reaberta, e uma recusada conta como fechada.
    """
    request = b"GET /status HTTP/1.1\r\nHost: ocupado\r\n\r\n"
    selector = selectors.DefaultSelector()
    answered = 0

    def open_one() -> None:
        try:
            connection = socket.create_connection((host, port), timeout=2)
            connection.setblocking(False)
            connection.send(request)
        except OSError:
            return
        selector.register(connection, selectors.EVENT_READ, bytearray())

    for _ in range(count):
        open_one()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            for key, _ in selector.select(0.05):
                connection, buffer = key.fileobj, key.data
                try:
                    data = connection.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(connection)
                    connection.close()
                    open_one()
                    continue
                buffer += data
                answered += count_responses(buffer, connection, request)
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()
    return answered


def count_responses(buffer: bytearray, connection: socket.socket, request: bytes) -> int:
    """Tira de `buffer` as respostas completas, pede uma nova para cada uma e
    devolve quantas eram."""
    complete = 0
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return complete
        head = buffer[:end].decode("iso-8859-1").lower()
        length = int(head.split("content-length:")[1].split("\r\n")[0])
        if len(buffer) < end + 4 + length:
            return complete
        del buffer[:end + 4 + length]
        complete += 1
        try:
            connection.send(request)
        except OSError:
            return complete


class EvictionTest(unittest.TestCase):
    """A troca de vaga entre conexões, sem processos: o servidor de verdade numa
    porta livre de 127.0.0.1, com conexões feitas por socketpair."""

    def setUp(self):
        node = type("FakeNode", (), {})()
        node.config = type("FakeConfig", (), {"election_timeout_max": 0.45,
                                              "peers": ["http://127.0.0.1:1"]})()
        self.server = RaftHTTPServer(("127.0.0.1", 0), node)
        self.addCleanup(self.server.server_close)

    def waiting_handler(self, seconds_ago: float, peer: bool = False):
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        handler = type("FakeHandler", (), {"evicted": False, "peer": False,
                                           "connection": ours})()
        if peer:
            self.server.mark_peer(handler)
        self.server.mark_waiting(handler)
        self.server._waiting_since[handler] -= seconds_ago
        return handler, theirs

    def test_oldest_waiting_loses_slot(self):
        older, older_peer = self.waiting_handler(5.0)
        newer, _ = self.waiting_handler(2.0)

        self.assertTrue(self.server._close_oldest_waiting())

        self.assertTrue(older.evicted)
        self.assertFalse(newer.evicted)
        self.assertEqual(older_peer.recv(1), b"")

    def test_peer_connection_keeps_slot(self):
        peer, _ = self.waiting_handler(0.3, peer=True)
        client, _ = self.waiting_handler(0.1)

        self.assertTrue(self.server._close_oldest_waiting())

        self.assertFalse(peer.evicted)
        self.assertTrue(client.evicted)

    def test_silent_peer_loses_slot(self):
        # Um par calado há mais que o maior timeout de eleição não está levando
        # heartbeats, então a conexão dele pode ser fechada.
        peer, _ = self.waiting_handler(5.0, peer=True)

        self.assertTrue(self.server._close_oldest_waiting())
        self.assertTrue(peer.evicted)

    def test_peer_protection_capped(self):
        # Com um par configurado, só duas conexões ficam protegidas.
        handlers = [self.waiting_handler(0.1, peer=True)[0] for _ in range(3)]

        self.assertEqual([handler.peer for handler in handlers], [True, True, False])
        self.assertTrue(self.server._close_oldest_waiting())
        self.assertTrue(handlers[2].evicted)

    def test_slot_passes_to_new_connection(self):
        # A vaga da conexão fechada vai direto para a nova; quando a thread da
        # fechada termina, ela não devolve a vaga ao semáforo outra vez.
        older, _ = self.waiting_handler(5.0)
        self.server._close_oldest_waiting()

        self.server._release_slot(older.connection)

        self.assertNotIn(older.connection, self.server._transferred)

    def test_evicted_connection_not_chosen_again(self):
        # Depois de perder a vaga, a conexão ainda responde a um erro de leitura.
        # Ela não pode voltar à lista, senão daria a mesma vaga duas vezes.
        handler, _ = self.waiting_handler(5.0)
        self.server._close_oldest_waiting()

        self.server.mark_waiting(handler)

        self.assertFalse(self.server._close_oldest_waiting())

    def test_evicted_request_not_handled(self):
        # O pedido já chegou inteiro, mas a vaga foi tirada antes do
        # atendimento: ele precisa ser descartado, não atendido sem resposta.
        handler, _ = self.waiting_handler(5.0)
        self.server._close_oldest_waiting()

        self.assertFalse(self.server.start_handling(handler))

    def test_handled_request_keeps_slot(self):
        handler, _ = self.waiting_handler(5.0)

        self.assertTrue(self.server.start_handling(handler))
        self.assertFalse(self.server._close_oldest_waiting())
        self.assertFalse(handler.evicted)


class StalledConnections:
    """Abre conexões que começam um pedido e mandam um byte a cada meio segundo."""

    PREFIXES = (b"GET /status HTTP/1.1\r\nHost: lento\r\nX-Lento: ",
                b"PUT /kv/lento HTTP/1.1\r\nContent-Length: 500\r\n\r\n{")

    def __init__(self, host: str, port: int, count: int):
        self.host, self.port, self.count = host, port, count
        self.sockets: list = []
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)

    def start(self) -> None:
        for number in range(self.count):
            connection = socket.create_connection((self.host, self.port), timeout=5)
            self.sockets.append(connection)
            self._send(connection, self.PREFIXES[number % 2])
        self._thread.start()

    def _send(self, connection: socket.socket, data: bytes) -> None:
        try:
            connection.sendall(data)
            self.bytes_sent += len(data)
        except OSError:
            pass  # O nó fechou esta conexão para dar a vaga a outra.

    def _drip(self) -> None:
        while not self._stop.wait(0.5):
            for connection in self.sockets:
                self._send(connection, b"a")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self.sockets:
            connection.close()


if __name__ == "__main__":
    unittest.main()
