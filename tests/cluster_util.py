"""Ferramentas dos testes com processos reais: portas, nós, HTTP e esperas.

Cada nó é um processo `raft_distribuido.py` iniciado com a linha de comando do
roteiro do laboratório (`--id`, `--host`, `--port`, `--peers`) mais
`--data-dir` numa pasta temporária. A saída de cada nó vai para um arquivo, e
os testes imprimem as últimas linhas desses arquivos quando falham.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from dataclasses import dataclass
from typing import Any, Callable, Optional

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_SCRIPT = os.path.join(PROJECT_ROOT, "raft_distribuido.py")

# As portas dos testes ficam abaixo da faixa efêmera padrão do Linux
# (32768-60999), para que uma conexão de saída não ocupe a porta entre a
# escolha e o bind do nó. Elas também ficam longe de 8000-8002, as portas do
# roteiro do laboratório, que um estudante pode estar usando na mesma máquina.
TEST_PORT_RANGE = (20000, 32000)

# Intervalo entre duas consultas numa espera com prazo.
POLL_INTERVAL = 0.05

# Quantas linhas do fim do log de cada nó aparecem quando um teste falha.
LOG_TAIL_LINES = 40

_ports_handed_out: set = set()
_ports_lock = threading.Lock()


def pick_free_ports(count: int, host: str = "127.0.0.1") -> list:
    """Sorteia `count` portas TCP livres em `host`, nunca repetidas nesta execução."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    ports: list = []
    with _ports_lock:
        for _ in range(10000):
            if len(ports) == count:
                return ports
            port = rng.randrange(*TEST_PORT_RANGE)
            if port in _ports_handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
            _ports_handed_out.add(port)
            ports.append(port)
    raise RuntimeError(f"nenhuma porta livre encontrada em {host} na faixa {TEST_PORT_RANGE}")


# ---- HTTP ------------------------------------------------------------------

@dataclass
class Response:
    """Resposta HTTP já lida, com os nomes dos cabeçalhos em minúsculas."""

    status: int
    headers: dict
    body: bytes

    def json(self) -> Any:
        """Devolve o corpo decodificado, ou None se ele não é JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def describe(self) -> str:
        return f"HTTP {self.status} {self.body[:300]!r}"


def _read_response(response: http.client.HTTPResponse) -> Response:
    body = response.read()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return Response(response.status, headers, body)


def http_request(host: str, port: int, method: str, path: str, body: Any = None,
                 headers: Optional[dict] = None, timeout: float = 5.0) -> Response:
    """Faz uma requisição numa conexão nova. `body` pode ser bytes ou um valor JSON.

    Levanta OSError ou http.client.HTTPException se a conexão falha.
    """
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        return _read_response(connection.getresponse())
    finally:
        connection.close()


def raw_http_exchange(host: str, port: int, data: bytes, *, half_close: bool = False,
                      request_method: str = "GET", timeout: float = 5.0) -> Response:
    """Manda bytes crus ao servidor e lê uma resposta HTTP.

    Serve para pedidos que http.client se recusa a montar: Content-Length
    falso, linha de pedido inválida, corpo declarado grande demais. Com
    `half_close`, fecha o sentido de envio depois dos bytes, como um cliente
    que parou de mandar no meio do corpo.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=request_method)
        response.begin()
        return _read_response(response)


# Função com a assinatura de http_request. O teste em namespaces de rede usa
# uma que faz a requisição de dentro do namespace.
HttpFunction = Callable[..., Response]


# ---- processos -------------------------------------------------------------

def node_environment() -> dict:
    """Devolve o ambiente dos nós, sem um RAFT_SECRET que a máquina tenha definido.

    Com o segredo, o nó exigiria RPCs assinados, e os testes que mandam RPCs
    crus passariam a ver outra resposta.
    """
    environment = dict(os.environ)
    environment.pop("RAFT_SECRET", None)
    return environment


class NodeProcess:
    """Um nó Raft num processo próprio, com o log gravado em arquivo."""

    def __init__(self, node_id: str, host: str, port: int, peer_urls: list, data_dir: str,
                 log_path: str, *, extra_args: tuple = (), command_prefix: tuple = (),
                 http: HttpFunction = http_request):
        self.node_id = node_id
        self.host = host
        self.port = port
        self.peer_urls = list(peer_urls)
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = tuple(extra_args)
        self.command_prefix = tuple(command_prefix)
        self.http = http
        self.process: Optional[subprocess.Popen] = None
        self._log_offset = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list:
        """Devolve a linha de comando do roteiro, com o Python que roda os testes."""
        return [*self.command_prefix, sys.executable, NODE_SCRIPT,
                "--id", self.node_id, "--host", self.host, "--port", str(self.port),
                "--peers", *self.peer_urls,
                "--data-dir", self.data_dir, *self.extra_args]

    def start(self) -> None:
        if self.is_running():
            raise RuntimeError(f"o nó {self.node_id} já está rodando (pid {self.process.pid})")
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"--- teste: iniciando o nó {self.node_id}: "
                           f"{' '.join(self.command())}\n".encode("utf-8"))
            log_file.flush()
            self._log_offset = log_file.tell()
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                            stdout=log_file, stderr=subprocess.STDOUT,
                                            cwd=os.path.dirname(self.log_path),
                                            env=node_environment())

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Mata o processo com SIGKILL (`kill -9`), pelo PID, e espera o fim."""
        if self.is_running():
            os.kill(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def send_signal(self, signal_number: int) -> None:
        os.kill(self.process.pid, signal_number)

    def wait_exit(self, timeout: float) -> int:
        """Espera o processo terminar e devolve o código de saída."""
        return self.process.wait(timeout=timeout)

    def cleanup(self) -> None:
        """Mata o processo se ele ainda roda; usado no fim de todo teste."""
        if self.process is not None and self.process.poll() is None:
            self.kill()

    # ---- log ---------------------------------------------------------------

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as file:
                return file.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self) -> str:
        """Devolve só o que o nó escreveu desde a última partida."""
        try:
            with open(self.log_path, "rb") as file:
                file.seek(self._log_offset)
                return file.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # ---- API ---------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None,
                headers: Optional[dict] = None, timeout: float = 5.0) -> Response:
        return self.http(self.host, self.port, method, path, body=body, headers=headers,
                         timeout=timeout)

    def status(self, timeout: float = 1.0) -> Optional[dict]:
        """Devolve o /status do nó, ou None se ele não respondeu."""
        try:
            response = self.request("GET", "/status", timeout=timeout)
        except (OSError, http.client.HTTPException):
            return None
        if response.status != 200:
            return None
        return response.json()

    def put(self, key: str, value: Any, timeout: float = 8.0) -> Response:
        return self.request("PUT", f"/kv/{key}", body={"value": value}, timeout=timeout)

    def get(self, key: str, timeout: float = 8.0) -> Response:
        return self.request("GET", f"/kv/{key}", timeout=timeout)

    def __repr__(self) -> str:
        return f"<nó {self.node_id} {self.url}>"


# ---- esperas ---------------------------------------------------------------

def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             details: Optional[Callable[[], str]] = None) -> Any:
    """Chama `condition` até ela devolver um valor verdadeiro, e devolve esse valor.

    Levanta AssertionError depois de `timeout` segundos; a mensagem diz o que
    era esperado (`what`) e o estado visto por último (`details`).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"{what}: não aconteceu em {timeout:.1f} s"
            if details is not None:
                message += f"\núltimo estado visto:\n{details()}"
            raise AssertionError(message)
        time.sleep(POLL_INTERVAL)


def describe_statuses(nodes: list) -> str:
    lines = []
    for node in nodes:
        status = node.status()
        if status is None:
            lines.append(f"  nó {node.node_id}: sem resposta")
        else:
            fields = ("state", "term", "leader_id", "commit_index", "last_applied",
                      "last_log_index")
            summary = " ".join(f"{name}={status.get(name)}" for name in fields)
            lines.append(f"  nó {node.node_id}: {summary}")
    return "\n".join(lines)


def find_agreed_leader(nodes: list) -> Optional[NodeProcess]:
    """Devolve o líder se todos os `nodes` respondem e concordam sobre ele e o termo."""
    statuses = [node.status() for node in nodes]
    if any(status is None for status in statuses):
        return None
    leaders = [node for node, status in zip(nodes, statuses) if status["state"] == "leader"]
    if len(leaders) != 1:
        return None
    leader_status = statuses[nodes.index(leaders[0])]
    for status in statuses:
        if status["term"] != leader_status["term"] or \
                status["leader_id"] != leader_status["id"]:
            return None
    return leaders[0]


def wait_for_leader(nodes: list, timeout: float = 5.0) -> NodeProcess:
    """Espera um líder aceito por todos os `nodes`, no mesmo termo, e o devolve."""
    return wait_for(lambda: find_agreed_leader(nodes), timeout,
                    f"líder aceito pelos nós {[node.node_id for node in nodes]}",
                    lambda: describe_statuses(nodes))


def wait_for_applied(nodes: list, index: int, timeout: float = 5.0) -> None:
    """Espera commit_index e last_applied de cada nó chegarem a `index`."""
    def all_applied() -> bool:
        for node in nodes:
            status = node.status()
            if status is None or status["commit_index"] < index or \
                    status["last_applied"] < index:
                return False
        return True
    wait_for(all_applied, timeout, f"commit_index e last_applied >= {index} nos nós "
                                   f"{[node.node_id for node in nodes]}",
             lambda: describe_statuses(nodes))


def put_with_retry(node: NodeProcess, key: str, value: Any, timeout: float = 8.0) -> dict:
    """Grava pela `node`, repetindo em 503 ou falha de conexão até o prazo.

    Só serve para escritas idempotentes (o mesmo valor na mesma chave), porque
    um 503 pode vir de um comando que foi aplicado.
    """
    deadline = time.monotonic() + timeout
    last = "nenhuma tentativa"
    while time.monotonic() < deadline:
        try:
            response = node.put(key, value, timeout=max(0.5, deadline - time.monotonic()))
        except (OSError, http.client.HTTPException) as error:
            last = repr(error)
        else:
            if response.status == 200:
                return response.json()
            last = response.describe()
            if response.status != 503:
                break
        time.sleep(POLL_INTERVAL)
    raise AssertionError(f"PUT /kv/{key} em {node.url} falhou: {last}")


# ---- casos de teste --------------------------------------------------------

class ClusterTestCase(unittest.TestCase):
    """Base dos testes com processos: pasta temporária, limpeza e logs na falha.

    Todo nó criado por `make_node` ou `make_cluster` é morto no fim do teste,
    mesmo numa falha. Se o teste falhou, o fim do log de cada nó é impresso em
    stderr antes de a pasta temporária ser apagada.
    """

    def run(self, result=None):
        # As limpezas (addCleanup) rodam dentro de super().run(), antes de o
        # resultado registrar a falha. Por isso os logs são impressos e a pasta
        # é apagada aqui, depois.
        if result is None:
            result = self.defaultTestResult()
        problems_before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            nodes = getattr(self, "all_nodes", [])
            if nodes and len(result.failures) + len(result.errors) > problems_before:
                print_node_logs(self.id(), nodes)
            folder = getattr(self, "folder", None)
            if folder:
                shutil.rmtree(folder, ignore_errors=True)

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="raft-teste-")
        self.all_nodes: list = []

    def make_node(self, node_id: str, host: str, port: int, peer_urls: list, **options
                  ) -> NodeProcess:
        data_dir = options.pop("data_dir", None) or os.path.join(self.folder, f"no-{node_id}")
        log_path = os.path.join(self.folder, f"no-{node_id}.log")
        node = NodeProcess(node_id, host, port, peer_urls, data_dir, log_path, **options)
        self.all_nodes.append(node)
        self.addCleanup(node.cleanup)
        return node

    def make_cluster(self, size: int = 3, host: str = "127.0.0.1", **options) -> list:
        """Cria (sem iniciar) `size` nós em portas livres, cada um com os outros como pares."""
        ports = pick_free_ports(size, host)
        urls = [f"http://{host}:{port}" for port in ports]
        nodes = []
        for position, port in enumerate(ports):
            peers = [url for other, url in enumerate(urls) if other != position]
            nodes.append(self.make_node(str(position), host, port, peers, **options))
        return nodes


def print_node_logs(title: str, nodes: list) -> None:
    parts = [f"\n===== logs dos nós de {title} ====="]
    for node in nodes:
        parts.append(f"----- nó {node.node_id} ({node.url}), últimas linhas de "
                     f"{node.log_path}:")
        parts.append(node.log_tail())
    parts.append("=====")
    print("\n".join(parts), file=sys.stderr, flush=True)


def start_all(nodes: list) -> None:
    for node in nodes:
        node.start()


def others(nodes: list, excluded: NodeProcess) -> list:
    return [node for node in nodes if node is not excluded]
