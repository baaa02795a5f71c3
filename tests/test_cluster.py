"""Testes com processos reais em loopback: eleição, replicação, quedas e disco.

Cada nó roda num processo próprio, iniciado com a linha de comando do roteiro
do laboratório mais `--data-dir` numa pasta temporária. Os testes usam a API
HTTP, como um estudante com `curl`, além de sinais e, nos testes de disco, dos
arquivos de dados. Nenhum teste dorme para sincronizar: cada espera consulta o
estado (quase sempre por /status) até uma condição valer ou um prazo vencer.
Numa falha, as últimas linhas do log de cada nó vão para stderr.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

# Deixa `python3 -m unittest tests.test_cluster` achar cluster_util, que o
# discover -s tests já acharia sozinho.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster_util import (ClusterTestCase, NodeProcess, find_agreed_leader, others,  # noqa: E402
                          pick_free_ports, print_node_logs, put_with_retry,
                          raw_http_exchange, start_all, wait_for, wait_for_applied,
                          wait_for_leader)

# Formato de um registro de log.bin (seção 4 de raft_distribuido.py): b"RLOG",
# tamanho do conteúdo e CRC-32, em big-endian, seguidos da entrada em JSON.
RECORD_HEADER = struct.Struct(">4sII")
RECORD_MAGIC = b"RLOG"

# Uma mensagem de erro em português quase sempre tem uma destas letras ou
# palavras. É uma heurística: serve para pegar as mensagens em inglês do
# http.server, não para revisar o texto.
PORTUGUESE_LETTERS = set("ãõçáéíóúâêô")
PORTUGUESE_WORDS = ("não", "inválid", "precisa", "campo", "corpo", "falta", "desconhecid",
                    "método", "chave", "limite", "ausente", "esperad", "use ", "mande",
                    "passa", "demais")


def read_records(path: str) -> list:
    """Lê log.bin e devolve (início, fim, entrada) de cada registro íntegro."""
    with open(path, "rb") as file:
        data = file.read()
    records = []
    offset = 0
    while offset + RECORD_HEADER.size <= len(data):
        magic, length, _ = RECORD_HEADER.unpack_from(data, offset)
        end = offset + RECORD_HEADER.size + length
        if magic != RECORD_MAGIC or end > len(data):
            break
        entry = json.loads(data[offset + RECORD_HEADER.size:end].decode("utf-8"))
        records.append((offset, end, entry))
        offset = end
    return records


class PortugueseErrorMixin:
    def assert_portuguese_json_error(self, response, context: str) -> None:
        """Confere que a resposta é um erro JSON {"error": texto em português}."""
        content_type = response.headers.get("content-type", "")
        self.assertTrue(content_type.startswith("application/json"),
                        f"{context}: Content-Type {content_type!r}, esperado JSON; "
                        f"resposta {response.describe()}")
        payload = response.json()
        self.assertIsInstance(payload, dict, f"{context}: corpo não é um objeto JSON: "
                                             f"{response.describe()}")
        message = payload.get("error")
        self.assertIsInstance(message, str, f"{context}: falta o campo 'error' em {payload}")
        lowered = message.lower()
        self.assertTrue(PORTUGUESE_LETTERS & set(lowered)
                        or any(word in lowered for word in PORTUGUESE_WORDS),
                        f"{context}: a mensagem de erro não parece português: {message!r}")


# ---- eleição e replicação ----------------------------------------------------

class ElectionReplicationTest(ClusterTestCase):
    def test_leader_within_five_seconds(self):
        nodes = self.make_cluster()
        started = time.monotonic()
        start_all(nodes)

        leader = wait_for_leader(nodes, timeout=5.0)

        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 5.0)
        statuses = {node.node_id: node.status() for node in nodes}
        for node_id, status in statuses.items():
            expected = "leader" if node_id == leader.node_id else "follower"
            self.assertEqual(status["state"], expected, f"nó {node_id}: {status}")
            self.assertEqual(status["leader_url"], leader.url, f"nó {node_id}: {status}")

    def test_leader_write_read_on_each_follower(self):
        nodes = self.make_cluster()
        start_all(nodes)
        leader = wait_for_leader(nodes)
        value = {"texto": "olá, laboratório", "lista": [1, 2.5, None, True]}

        response = leader.put("chave-do-lider", value)

        self.assertEqual(response.status, 200, response.describe())
        answer = response.json()
        self.assertEqual(answer["key"], "chave-do-lider")
        self.assertEqual(answer["value"], value)
        index = answer["index"]
        # Cada seguidor precisa ter a escrita no próprio log e na própria
        # máquina de estados, não só responder por meio do líder.
        wait_for_applied(nodes, index)
        for follower in others(nodes, leader):
            status = follower.status()
            self.assertGreaterEqual(status["commit_index"], index, f"nó {follower.node_id}")
            self.assertGreaterEqual(status["last_applied"], index, f"nó {follower.node_id}")
            self.assertGreaterEqual(status["last_log_index"], index, f"nó {follower.node_id}")
            read = follower.get("chave-do-lider")
            self.assertEqual(read.status, 200, f"nó {follower.node_id}: {read.describe()}")
            self.assertEqual(read.json(), {"key": "chave-do-lider", "value": value})

    def test_follower_forwards_put_and_delete(self):
        nodes = self.make_cluster()
        start_all(nodes)
        leader = wait_for_leader(nodes)
        follower = others(nodes, leader)[0]

        written = follower.put("via-seguidor", 7)
        self.assertEqual(written.status, 200, written.describe())
        for node in nodes:
            read = node.get("via-seguidor")
            self.assertEqual(read.status, 200, f"nó {node.node_id}: {read.describe()}")
            self.assertEqual(read.json()["value"], 7, f"nó {node.node_id}")

        deleted = follower.request("DELETE", "/kv/via-seguidor")
        self.assertEqual(deleted.status, 200, deleted.describe())
        wait_for_applied(nodes, deleted.json()["index"])
        for node in nodes:
            read = node.get("via-seguidor")
            self.assertEqual(read.status, 404, f"nó {node.node_id}: {read.describe()}")
        deleted_again = follower.request("DELETE", "/kv/via-seguidor")
        self.assertEqual(deleted_again.status, 404, deleted_again.describe())

    def test_no_quorum_answers_503(self):
        # Só um dos três nós sobe: sem maioria, nenhum líder pode existir. Um
        # prazo de cliente de 1 s encurta o teste sem mudar o que ele prova.
        nodes = self.make_cluster(extra_args=("--request-timeout", "1000"))
        lonely = nodes[0]
        lonely.start()
        wait_for(lonely.status, 5.0, "nó sozinho respondendo a /status")

        for method, body in (("PUT", {"value": 1}), ("GET", None), ("DELETE", None)):
            with self.subTest(method=method):
                started = time.monotonic()
                response = lonely.request(method, "/kv/sem-maioria", body=body, timeout=10)
                elapsed = time.monotonic() - started
                self.assertEqual(response.status, 503, response.describe())
                self.assertIn("retry-after", response.headers)
                self.assertIn("error", response.json())
                self.assertLess(elapsed, 3.0, "o cliente esperou bem mais que "
                                              "--request-timeout")


# ---- quedas e reinícios ------------------------------------------------------

class FailoverTest(ClusterTestCase):
    def write_keys(self, node: NodeProcess, prefix: str, count: int) -> dict:
        """Grava `count` chaves pela `node` e devolve {chave: (valor, índice)}."""
        written = {}
        for number in range(count):
            key, value = f"{prefix}-{number}", {"prefixo": prefix, "n": number}
            answer = put_with_retry(node, key, value)
            written[key] = (value, answer["index"])
        return written

    def assert_keys_readable(self, node: NodeProcess, written: dict) -> None:
        for key, (value, _) in written.items():
            response = node.get(key)
            self.assertEqual(response.status, 200,
                             f"GET {key} em {node.node_id}: {response.describe()}")
            self.assertEqual(response.json()["value"], value, f"GET {key} em {node.node_id}")

    def test_leader_kill_keeps_data(self):
        nodes = self.make_cluster()
        start_all(nodes)
        old_leader = wait_for_leader(nodes)
        old_term = old_leader.status()["term"]
        written = self.write_keys(old_leader, "antes", 5)

        old_leader.kill()
        survivors = others(nodes, old_leader)
        new_leader = wait_for_leader(survivors, timeout=5.0)

        self.assertIsNot(new_leader, old_leader)
        self.assertGreater(new_leader.status()["term"], old_term)
        self.assert_keys_readable(new_leader, written)
        for survivor in survivors:
            self.assert_keys_readable(survivor, written)
        more = self.write_keys(survivors[0], "depois", 3)
        self.assert_keys_readable(survivors[1], more)

    def test_killed_leader_restarts_and_catches_up(self):
        nodes = self.make_cluster()
        start_all(nodes)
        old_leader = wait_for_leader(nodes)
        before = self.write_keys(old_leader, "antes", 3)
        term_before_kill = old_leader.status()["term"]

        old_leader.kill()
        survivors = others(nodes, old_leader)
        new_leader = wait_for_leader(survivors)
        during = self.write_keys(new_leader, "sem-ele", 5)
        old_leader.start()

        last_index = max(index for _, index in during.values())
        wait_for_applied([old_leader], last_index)
        status = old_leader.status()
        self.assertGreaterEqual(status["term"], term_before_kill)
        self.assertGreaterEqual(status["last_log_index"], last_index)
        wait_for_leader(nodes)
        self.assert_keys_readable(old_leader, before)
        self.assert_keys_readable(old_leader, during)
        after = self.write_keys(old_leader, "de-volta", 2)
        wait_for_applied(nodes, max(index for _, index in after.values()))

    def test_whole_cluster_kill_keeps_acked_writes(self):
        nodes = self.make_cluster()
        start_all(nodes)
        wait_for_leader(nodes)
        acknowledged: dict = {}
        unknown: dict = {}
        lock = threading.Lock()
        stop = threading.Event()

        def write_until_stopped(writer: int) -> None:
            sequence = 0
            while not stop.is_set():
                sequence += 1
                key = f"escritor{writer}-{sequence}"
                value = {"escritor": writer, "sequencia": sequence}
                # Cada escrita vai a um nó diferente, e os seguidores encaminham ao líder.
                node = nodes[(writer + sequence) % len(nodes)]
                try:
                    response = node.put(key, value, timeout=3.0)
                except (OSError, http.client.HTTPException):
                    response = None
                with lock:
                    if response is not None and response.status == 200:
                        acknowledged[key] = (value, response.json()["index"])
                    else:
                        # 503, tempo esgotado ou conexão perdida: o comando pode
                        # ou não ter sido aplicado.
                        unknown[key] = value

        writers = [threading.Thread(target=write_until_stopped, args=(number,), daemon=True)
                   for number in range(4)]
        for writer in writers:
            writer.start()
        self.addCleanup(stop.set)
        wait_for(lambda: len(acknowledged) >= 60, 10.0, "60 escritas confirmadas")
        terms_before = {node.node_id: node.status()["term"] for node in nodes}

        # Os três morrem com kill -9 enquanto os escritores continuam mandando.
        for node in nodes:
            node.send_signal(signal.SIGKILL)
        stop.set()
        for node in nodes:
            node.kill()
        for writer in writers:
            writer.join(timeout=10)
            self.assertFalse(writer.is_alive(), "um escritor não terminou")

        with lock:
            acknowledged_now = dict(acknowledged)
            unknown_now = dict(unknown)
        indexes = [index for _, index in acknowledged_now.values()]
        self.assertEqual(len(set(indexes)), len(indexes),
                         "duas escritas confirmadas receberam o mesmo índice")

        start_all(nodes)
        leader = wait_for_leader(nodes)
        for node in nodes:
            self.assertGreaterEqual(node.status()["term"], terms_before[node.node_id],
                                    f"o nó {node.node_id} voltou com termo menor")
        if len(set(terms_before.values())) == 1:
            self.assertGreater(leader.status()["term"], max(terms_before.values()))
        wait_for_applied(nodes, max(indexes))
        for key, (value, _) in acknowledged_now.items():
            response = leader.get(key)
            self.assertEqual(response.status, 200,
                             f"escrita confirmada {key} sumiu: {response.describe()}")
            self.assertEqual(response.json()["value"], value, key)
        for key, value in unknown_now.items():
            response = leader.get(key)
            self.assertIn(response.status, (200, 404), f"{key}: {response.describe()}")
            if response.status == 200:
                self.assertEqual(response.json()["value"], value, key)


# ---- log danificado no disco -----------------------------------------------

class LogDamageTest(ClusterTestCase):
    """Testes de log.bin cortado ou corrompido num nó parado.

    As pastas de dados vêm de um cluster de três nós que gravou cinco chaves e
    parou com SIGTERM. Cada teste trabalha numa cópia delas.
    """

    template_folder = ""
    written: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.template_folder = tempfile.mkdtemp(prefix="raft-modelo-")
        cls.addClassCleanup(shutil.rmtree, cls.template_folder, ignore_errors=True)
        ports = pick_free_ports(3)
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        nodes = []
        for position, port in enumerate(ports):
            peers = [url for other, url in enumerate(urls) if other != position]
            node = NodeProcess(str(position), "127.0.0.1", port, peers,
                               os.path.join(cls.template_folder, f"no-{position}"),
                               os.path.join(cls.template_folder, f"no-{position}.log"))
            cls.addClassCleanup(node.cleanup)
            nodes.append(node)
        try:
            start_all(nodes)
            leader = wait_for_leader(nodes)
            cls.written = {}
            for number in range(1, 6):
                key, value = f"chave{number}", {"n": number, "texto": "ação"}
                put_with_retry(leader, key, value)
                cls.written[key] = value
            wait_for_applied(nodes, find_agreed_leader(nodes).status()["commit_index"])
            for node in nodes:
                node.send_signal(signal.SIGTERM)
            for node in nodes:
                if node.wait_exit(10) != 0:
                    raise AssertionError(f"o nó {node.node_id} não parou com código 0")
        except BaseException:
            print_node_logs(f"{cls.__name__}.setUpClass", nodes)
            raise

    def setUp(self):
        super().setUp()
        self.nodes = self.make_cluster()
        for position, node in enumerate(self.nodes):
            shutil.copytree(os.path.join(self.template_folder, f"no-{position}"),
                            node.data_dir)
        self.damaged = self.nodes[0]
        self.log_path = os.path.join(self.damaged.data_dir, "log.bin")
        self.records = read_records(self.log_path)
        self.assertGreaterEqual(len(self.records), 6, "o modelo tem poucas entradas")
        self.last_index = self.records[-1][2]["index"]

    def start_damaged_alone(self) -> dict:
        """Inicia só o nó danificado, sem maioria para mudar o log, e devolve o status."""
        self.damaged.start()
        return wait_for(self.damaged.status, 5.0, "nó danificado respondendo a /status")

    def assert_warning_names_log(self) -> None:
        lines = [line for line in self.damaged.log_since_start().splitlines()
                 if self.log_path in line]
        self.assertTrue(lines, f"nenhuma linha de log menciona {self.log_path} ao cortar o "
                               f"registro final")

    def rejoin_and_read_back(self) -> None:
        start_all(self.nodes[1:])
        leader = wait_for_leader(self.nodes)
        wait_for_applied(self.nodes, leader.status()["commit_index"])
        for key, value in self.written.items():
            response = self.damaged.get(key)
            self.assertEqual(response.status, 200, f"{key}: {response.describe()}")
            self.assertEqual(response.json()["value"], value, key)

    def test_torn_last_record_cut(self):
        last_start = self.records[-1][0]
        size = os.path.getsize(self.log_path)
        with open(self.log_path, "r+b") as file:
            file.truncate(size - 3)

        status = self.start_damaged_alone()

        self.assertEqual(status["last_log_index"], self.last_index - 1)
        self.assertEqual(os.path.getsize(self.log_path), last_start,
                         "o registro cortado deveria ter sido apagado do arquivo")
        self.assert_warning_names_log()
        self.rejoin_and_read_back()

    def test_half_record_of_garbage_cut(self):
        size = os.path.getsize(self.log_path)
        garbage = RECORD_HEADER.pack(RECORD_MAGIC, 200, 0x12345678) + b"\x00lixo\xff" * 5
        with open(self.log_path, "ab") as file:
            file.write(garbage)

        status = self.start_damaged_alone()

        self.assertEqual(status["last_log_index"], self.last_index)
        self.assertEqual(os.path.getsize(self.log_path), size,
                         "o meio registro de lixo deveria ter sido apagado do arquivo")
        self.assert_warning_names_log()
        self.rejoin_and_read_back()

    def test_corrupt_middle_record_stops_node(self):
        start, end, _ = self.records[1]
        with open(self.log_path, "r+b") as file:
            file.seek(end - 2)
            original = file.read(1)
            file.seek(end - 2)
            file.write(bytes([original[0] ^ 0xFF]))
        with open(self.log_path, "rb") as file:
            damaged_bytes = file.read()

        self.damaged.start()
        exit_code = self.damaged.wait_exit(10)

        self.assertNotEqual(exit_code, 0)
        output = self.damaged.log_since_start()
        self.assertIn(self.log_path, output, "a mensagem de erro precisa nomear o arquivo")
        with open(self.log_path, "rb") as file:
            self.assertEqual(file.read(), damaged_bytes, "o nó alterou o log corrompido")


# ---- pedidos inválidos -------------------------------------------------------

def _vote_request(**changes):
    body = {"term": 1, "candidate_id": "9", "last_log_index": 0, "last_log_term": 0,
            "sender_id": "9", "sender_url": "http://127.0.0.1:1"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not _MISSING}


def _append_request(**changes):
    body = {"term": 1, "leader_id": "9", "prev_log_index": 0, "prev_log_term": 0,
            "entries": [], "leader_commit": 0, "sender_id": "9",
            "sender_url": "http://127.0.0.1:1"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not _MISSING}


_MISSING = object()
_VOTE = "/raft/request_vote"
_APPEND = "/raft/append_entries"
_LONG_KEY = "k" * 300

# (descrição, método, caminho, corpo, status esperado). Um corpo bytes vai como
# está, None é um pedido sem corpo e qualquer outro valor vai como JSON.
BAD_REQUESTS = [
    # 300 KB de "1e15" viram 1,2 MB reescritos como 1000000000000000.0.
    ("PUT: valor que cresce ao ser reescrito", "PUT", "/kv/a",
     b'{"value": [' + b",".join([b"1e15"] * 60000) + b"]}", 413),
    ("voto: JSON malformado", "POST", _VOTE, b'{"term": 1,', 400),
    ("voto: corpo vazio", "POST", _VOTE, b"", 400),
    ("voto: UTF-8 inválido", "POST", _VOTE, b'{"term": "\xff\xfe"}', 400),
    ("voto: NaN", "POST", _VOTE, b'{"term": NaN}', 400),
    ("voto: JSON aninhado fundo demais", "POST", _VOTE, b"[" * 100000 + b"]" * 100000, 400),
    ("voto: corpo é lista", "POST", _VOTE, [1, 2], 400),
    ("voto: objeto vazio", "POST", _VOTE, {}, 400),
    ("voto: sem term", "POST", _VOTE, _vote_request(term=_MISSING), 400),
    ("voto: sem sender_id", "POST", _VOTE, _vote_request(sender_id=_MISSING), 400),
    ("voto: term texto", "POST", _VOTE, _vote_request(term="5"), 400),
    ("voto: term booleano", "POST", _VOTE, _vote_request(term=True), 400),
    ("voto: term fracionário", "POST", _VOTE, _vote_request(term=1.5), 400),
    ("voto: term zero", "POST", _VOTE, _vote_request(term=0), 400),
    ("voto: term negativo", "POST", _VOTE, _vote_request(term=-1), 400),
    ("voto: term enorme", "POST", _VOTE, _vote_request(term=2**64), 400),
    ("voto: last_log_index negativo", "POST", _VOTE, _vote_request(last_log_index=-3), 400),
    ("voto: last_log_index enorme", "POST", _VOTE, _vote_request(last_log_index=10**30), 400),
    ("voto: candidate_id vazio", "POST", _VOTE, _vote_request(candidate_id=""), 400),
    ("voto: candidate_id número", "POST", _VOTE, _vote_request(candidate_id=7), 400),
    ("voto: sender_url longo", "POST", _VOTE,
     _vote_request(sender_url="http://" + "a" * 600), 400),
    ("append: JSON malformado", "POST", _APPEND, b"{]", 400),
    ("append: sem entries", "POST", _APPEND, _append_request(entries=_MISSING), 400),
    ("append: entries texto", "POST", _APPEND, _append_request(entries="x"), 400),
    ("append: entrada número", "POST", _APPEND, _append_request(entries=[5]), 400),
    ("append: entrada sem term", "POST", _APPEND,
     _append_request(entries=[{"index": 1, "command": None}]), 400),
    ("append: entrada fora de sequência", "POST", _APPEND,
     _append_request(entries=[{"term": 1, "index": 3, "command": None}]), 400),
    ("append: entrada com termo acima do líder", "POST", _APPEND,
     _append_request(entries=[{"term": 2, "index": 1, "command": None}]), 400),
    ("append: comando é lista", "POST", _APPEND,
     _append_request(entries=[{"term": 1, "index": 1, "command": [1]}]), 400),
    ("append: prev_log_index negativo", "POST", _APPEND,
     _append_request(prev_log_index=-1), 400),
    ("append: prev_log_index enorme", "POST", _APPEND,
     _append_request(prev_log_index=2**53 + 1, prev_log_term=1), 400),
    ("append: leader_commit enorme", "POST", _APPEND, _append_request(leader_commit=2**70),
     400),
    ("append: prev_log_term sem prev_log_index", "POST", _APPEND,
     _append_request(prev_log_term=4), 400),
    ("append: leader_id nulo", "POST", _APPEND, _append_request(leader_id=None), 400),
    ("kv: PUT com JSON malformado", "PUT", "/kv/a", b'{"value": ', 400),
    ("kv: PUT sem corpo", "PUT", "/kv/a", None, 400),
    ("kv: PUT com lista", "PUT", "/kv/a", [1], 400),
    ("kv: PUT sem value", "PUT", "/kv/a", {"valor": 1}, 400),
    ("kv: PUT com client_id número", "PUT", "/kv/a",
     {"value": 1, "client_id": 5, "sequence": 1}, 400),
    ("kv: PUT com client_id longo", "PUT", "/kv/a",
     {"value": 1, "client_id": "c" * 65, "sequence": 1}, 400),
    ("kv: PUT com client_id sem sequence", "PUT", "/kv/a", {"value": 1, "client_id": "c"},
     400),
    ("kv: PUT com sequence negativa", "PUT", "/kv/a",
     {"value": 1, "client_id": "c", "sequence": -1}, 400),
    ("kv: PUT com sequence enorme", "PUT", "/kv/a",
     {"value": 1, "client_id": "c", "sequence": 2**60}, 400),
    ("kv: PUT com sequence texto", "PUT", "/kv/a",
     {"value": 1, "client_id": "c", "sequence": "1"}, 400),
    ("kv: PUT com chave longa demais", "PUT", f"/kv/{_LONG_KEY}", {"value": 1}, 400),
    ("kv: GET com chave longa demais", "GET", f"/kv/{_LONG_KEY}", None, 400),
    ("kv: DELETE com corpo lista", "DELETE", "/kv/a", [1], 400),
    ("kv: DELETE com JSON malformado", "DELETE", "/kv/a", b"{", 400),
    ("kv: chave vazia", "GET", "/kv/", None, 400),
    ("kv: sem chave", "PUT", "/kv", {"value": 1}, 400),
    ("método: GET em request_vote", "GET", _VOTE, None, 405),
    ("método: PUT em append_entries", "PUT", _APPEND, _append_request(), 405),
    ("método: POST em /status", "POST", "/status", {}, 405),
    ("método: DELETE em /status", "DELETE", "/status", None, 405),
    ("método: POST em /kv/a", "POST", "/kv/a", {"value": 1}, 405),
    ("método: PATCH em /kv/a", "PATCH", "/kv/a", {"value": 1}, 405),
    ("método: OPTIONS em /kv/a", "OPTIONS", "/kv/a", None, 405),
    ("caminho: /", "GET", "/", None, 404),
    ("caminho: /nada", "GET", "/nada", None, 404),
    ("caminho: /raft/desconhecido", "POST", "/raft/desconhecido", {}, 404),
    ("caminho: /status/extra", "GET", "/status/extra", None, 404),
]

_HEADERS = b"Host: teste\r\nContent-Type: application/json\r\n"

# Pedidos que o http.client não monta: (descrição, bytes, fechar o envio, status).
BAD_FRAMING = [
    ("corpo acima de 1 MiB",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b"Content-Length: 1048577\r\n\r\n"
     + b'{"value": "' + b"x" * 1000, False, 413),
    ("corpo acima de 1 MiB num RPC",
     b"POST /raft/append_entries HTTP/1.1\r\n" + _HEADERS
     + b"Content-Length: 5000000\r\n\r\n{", False, 413),
    ("Content-Length maior que o corpo",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b'Content-Length: 100\r\n\r\n{"value": 1}',
     True, 400),
    ("Content-Length menor que o corpo",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b'Content-Length: 5\r\n\r\n{"value": 1}',
     False, 400),
    ("Content-Length não numérico",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b'Content-Length: abc\r\n\r\n{"value": 1}',
     False, 400),
    ("Content-Length negativo",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b'Content-Length: -5\r\n\r\n{"value": 1}',
     False, 400),
    ("Content-Length com sinal",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b'Content-Length: +12\r\n\r\n{"value": 1}',
     False, 400),
    ("Content-Length com sublinhado",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b'Content-Length: 1_2\r\n\r\n{"value": 1}',
     False, 400),
    ("Content-Length com algarismo sobrescrito",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b'Content-Length: 1\xb2\r\n\r\n{"value": 1}',
     False, 400),
    ("corpo em partes (chunked)",
     b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b"Transfer-Encoding: chunked\r\n\r\n"
     b'c\r\n{"value": 1}\r\n0\r\n\r\n', False, 411),
]

# Pedidos que o http.server recusa antes de chegar ao nó: (descrição, bytes,
# status aceitos). Para um método que o servidor não reconhece, a semântica de
# HTTP (RFC 9110, status 501) indica 501, e 405 também descreve o erro.
BAD_HTTP = [
    ("método desconhecido", b"BREW /kv/a HTTP/1.1\r\nHost: teste\r\n\r\n", (405, 501)),
    ("cabeçalhos demais", b"GET /status HTTP/1.1\r\n"
     + b"".join(b"X-%d: 1\r\n" % number for number in range(150)) + b"\r\n", (400, 431)),
    ("URI longa demais", b"GET /kv/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: teste\r\n\r\n",
     (400, 414)),
]

# Campos de /status que nenhum pedido inválido pode mudar num cluster ocioso.
STABLE_STATUS_FIELDS = ("state", "term", "leader_id", "voted_for", "commit_index",
                        "last_applied", "last_log_index", "last_log_term")


class BadRequestTest(ClusterTestCase, PortugueseErrorMixin):
    def setUp(self):
        super().setUp()
        self.nodes = self.make_cluster()
        start_all(self.nodes)
        self.leader = wait_for_leader(self.nodes)
        self.follower = others(self.nodes, self.leader)[0]
        answer = put_with_retry(self.leader, "estavel", {"v": "antes"})
        wait_for_applied(self.nodes, answer["index"])
        self.statuses_before = self.stable_statuses()

    def stable_statuses(self) -> dict:
        result = {}
        for node in self.nodes:
            status = node.status()
            self.assertIsNotNone(status, f"o nó {node.node_id} não respondeu a /status")
            result[node.node_id] = {name: status[name] for name in STABLE_STATUS_FIELDS}
        return result

    def assert_node_still_works(self, node, context: str) -> None:
        self.assertIsNotNone(node.status(), f"{context}: o nó {node.node_id} parou de "
                                            f"responder a /status")

    def assert_state_unchanged(self) -> None:
        self.assertEqual(self.stable_statuses(), self.statuses_before)
        for node in self.nodes:
            self.assertEqual(node.get("a").status, 404,
                             f"um PUT inválido gravou a chave 'a' (nó {node.node_id})")
            self.assertEqual(node.get("estavel").json(), {"key": "estavel",
                                                          "value": {"v": "antes"}})
        response = self.follower.put("depois", 1)
        self.assertEqual(response.status, 200, response.describe())

    def test_bad_requests_get_json_4xx(self):
        for target in (self.follower, self.leader):
            for description, method, path, body, expected in BAD_REQUESTS:
                context = f"{description} no nó {target.node_id}"
                with self.subTest(context):
                    response = target.request(method, path, body=body, timeout=5.0)
                    self.assertEqual(response.status, expected,
                                     f"{context}: {response.describe()}")
                    self.assert_portuguese_json_error(response, context)
                    self.assert_node_still_works(target, context)
        self.assert_state_unchanged()

    def test_bad_framing_gets_json_4xx(self):
        for target in (self.follower, self.leader):
            for description, data, half_close, expected in BAD_FRAMING:
                context = f"{description} no nó {target.node_id}"
                with self.subTest(context):
                    response = raw_http_exchange(target.host, target.port, data,
                                                 half_close=half_close, request_method="PUT")
                    self.assertEqual(response.status, expected,
                                     f"{context}: {response.describe()}")
                    self.assert_portuguese_json_error(response, context)
                    self.assert_node_still_works(target, context)
        self.assert_state_unchanged()

    def test_forwarded_request_to_follower_gets_421(self):
        # Um pedido repassado que chega a um nó que não é líder recebe 421:
        # certamente não foi aplicado, e quem repassou pode tentar de novo.
        response = self.follower.request("PUT", "/kv/repassado",
                                         body=json.dumps({"value": 1}).encode(),
                                         headers={"X-Raft-Forwarded": "0"}, timeout=5.0)
        self.assertEqual(response.status, 421, response.describe())
        self.assertEqual(self.leader.get("repassado").status, 404)

    def test_oversized_body_gets_no_continue(self):
        # Com Expect: 100-continue, o cliente espera o convite antes de mandar o
        # corpo; para um corpo grande demais, a primeira resposta já é o 413.
        data = (b"PUT /kv/a HTTP/1.1\r\n" + _HEADERS + b"Expect: 100-continue\r\n"
                b"Content-Length: 2000000\r\n\r\n")
        with socket.create_connection((self.leader.host, self.leader.port), timeout=5) as sock:
            sock.sendall(data)
            first_line = sock.makefile("rb").readline()
        self.assertTrue(first_line.startswith(b"HTTP/1.1 413"), first_line)

    def test_http10_keep_alive_answered(self):
        # Um cliente HTTP/1.0 que pede keep-alive precisa saber que a conexão
        # continua aberta, senão espera o fim da conexão para ler a resposta.
        data = b"GET /status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        response = raw_http_exchange(self.leader.host, self.leader.port, data)
        self.assertEqual(response.status, 200, response.describe())
        self.assertEqual(response.headers.get("connection", "").lower(), "keep-alive")

    def test_malformed_http_gets_json_error(self):
        for description, data, accepted in BAD_HTTP:
            with self.subTest(description):
                response = raw_http_exchange(self.follower.host, self.follower.port, data)
                self.assertIn(response.status, accepted, f"{description}: "
                                                         f"{response.describe()}")
                self.assert_portuguese_json_error(response, description)
                self.assert_node_still_works(self.follower, description)
        self.assert_state_unchanged()


# ---- parada e erros de partida -----------------------------------------------

class ShutdownTest(ClusterTestCase):
    def test_sigterm_and_sigint_stop_cleanly(self):
        nodes = self.make_cluster()
        start_all(nodes)
        leader = wait_for_leader(nodes)
        answer = put_with_retry(leader, "duravel", "sim")
        wait_for_applied(nodes, answer["index"])
        follower = others(nodes, leader)[0]

        for node, signal_number in ((leader, signal.SIGTERM), (follower, signal.SIGINT)):
            with self.subTest(node=node.node_id, signal=signal_number.name):
                node.send_signal(signal_number)
                self.assertEqual(node.wait_exit(10), 0)
                self.assertIn("nó parado", node.log_since_start())

        start_all([leader, follower])
        wait_for_leader(nodes)
        for node in nodes:
            response = node.get("duravel")
            self.assertEqual(response.status, 200, f"nó {node.node_id}: {response.describe()}")
            self.assertEqual(response.json()["value"], "sim")


class StartupErrorTest(ClusterTestCase):
    def run_until_exit(self, port: int, peers: list, extra_args: tuple = ()) -> tuple:
        """Inicia um nó que deve desistir na partida e devolve (código, saída)."""
        node = self.make_node(f"erro{len(self.all_nodes)}", "127.0.0.1", port, peers,
                              extra_args=extra_args)
        node.start()
        code = node.wait_exit(10)
        return code, node.log_since_start()

    def assert_fails_naming(self, code: int, output: str, *texts: str) -> None:
        self.assertNotEqual(code, 0, f"o nó deveria ter saído com erro; saída:\n{output}")
        for text in texts:
            self.assertIn(text, output)

    def test_port_in_use(self):
        port, peer_port = pick_free_ports(2)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", port))
        listener.listen()

        code, output = self.run_until_exit(port, [f"http://127.0.0.1:{peer_port}"])

        self.assert_fails_naming(code, output, "--port", str(port))

    def test_bad_peer_url(self):
        port, peer_port = pick_free_ports(2)
        for bad_url in (f"127.0.0.1:{peer_port}", "http://127.0.0.1",
                        "http://127.0.0.1:porta", f"http://127.0.0.1:{peer_port}/status",
                        f"ftp://127.0.0.1:{peer_port}"):
            with self.subTest(bad_url):
                code, output = self.run_until_exit(port, [bad_url])
                self.assert_fails_naming(code, output, "--peers", bad_url)

    def test_own_address_in_peers(self):
        port, peer_port = pick_free_ports(2)
        for own_url in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            with self.subTest(own_url):
                code, output = self.run_until_exit(
                    port, [f"http://127.0.0.1:{peer_port}", own_url])
                self.assert_fails_naming(code, output, "--peers", own_url)

    def test_election_timeout_near_heartbeat(self):
        port, peer_port = pick_free_ports(2)
        peers = [f"http://127.0.0.1:{peer_port}"]
        cases = (
            (("--heartbeat-interval", "100", "--election-timeout-min", "150",
              "--election-timeout-max", "400"), "--election-timeout-min", "150"),
            (("--election-timeout-min", "300", "--election-timeout-max", "300"),
             "--election-timeout-max", "300"),
        )
        for extra_args, flag, value in cases:
            with self.subTest(" ".join(extra_args)):
                code, output = self.run_until_exit(port, peers, extra_args)
                self.assert_fails_naming(code, output, flag, value)


if __name__ == "__main__":
    unittest.main()
