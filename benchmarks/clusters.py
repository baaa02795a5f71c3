"""Clusters medidos pelo benchmark: nós Raft deste projeto e, como referência, etcd.

Cada cluster roda em 127.0.0.1, com portas livres escolhidas na hora e pastas
de dados próprias, e guarda os processos que iniciou. `stop()` termina todos
pelo PID; `bench.py` chama `stop()` também num erro ou num Ctrl+C.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from loads import HttpConnection, ProtocolError

HOST = "127.0.0.1"
# Uma consulta de estado (/status, /v3/maintenance/status) sem resposta neste
# tempo conta como nó fora do ar.
STATUS_TIMEOUT_S = 1.0
POLL_INTERVAL_S = 0.01
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROFILED_NODE = Path(__file__).resolve().parent / "profiled_node.py"


class ClusterError(Exception):
    """O cluster não chegou ao estado esperado a tempo; o texto diz qual."""


def free_ports(count: int) -> list:
    """Reserva `count` portas TCP livres em 127.0.0.1 (abertas juntas, para
    virem diferentes) e as devolve já fechadas."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def folder_bytes(path: Path) -> int:
    """Soma o tamanho aparente dos arquivos sob `path`."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total


class ManagedProcess:
    """Um processo iniciado pelo benchmark, com o seu log num arquivo."""

    def __init__(self, name: str, command: list, log_path: Path, cwd: Path):
        self.name = name
        self.command = command
        self.log_path = log_path
        self._log_file = open(log_path, "ab")
        # Sessão própria: um Ctrl+C no terminal chega só ao benchmark, que então
        # para cada processo pelo PID, na ordem certa.
        self.popen = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                      stdout=self._log_file, stderr=subprocess.STDOUT,
                                      cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """Mata com SIGKILL (como uma queda) e espera o processo sumir."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=10)
        self._log_file.close()

    def terminate(self, timeout: float) -> None:
        """Pede a parada com SIGTERM; passa a SIGKILL depois de `timeout` s."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def peak_rss_kib(self) -> Optional[int]:
        """Pico de memória residente (VmHWM de /proc/PID/status), em KiB."""
        try:
            with open(f"/proc/{self.pid}/status") as file:
                for line in file:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> Optional[float]:
        """Tempo de CPU (usuário + sistema) do processo até agora."""
        try:
            with open(f"/proc/{self.pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # Depois do nome entre parênteses, utime e stime são o 12º e o 13º campos.
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _json_request(port: int, method: str, path: str, body: Optional[dict] = None,
                  timeout: float = STATUS_TIMEOUT_S) -> Optional[tuple]:
    """Faz uma requisição JSON avulsa; devolve (status, objeto) ou None se falhou."""
    data = b"" if body is None else json.dumps(body).encode()
    request = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
               f"Connection: close\r\n\r\n").encode() + data
    connection = HttpConnection(HOST, port, timeout)
    try:
        status, raw = connection.request(request)
        return status, (json.loads(raw) if raw else None)
    except (OSError, ProtocolError, ValueError):
        return None
    finally:
        connection.close()


class Cluster:
    """O que o benchmark precisa de um cluster; RaftCluster e EtcdCluster implementam."""

    name = "?"

    def __init__(self, size: int, workdir: Path):
        self.size = size
        self.workdir = workdir
        self.processes: dict = {}
        self.client_ports: list = []

    # ---- processos ------------------------------------------------------------

    def spawn(self, index: int) -> None:
        raise NotImplementedError

    def start(self) -> float:
        """Inicia todos os nós; devolve o instante (perf_counter) da partida."""
        started = time.perf_counter()
        for index in range(self.size):
            self.spawn(index)
        return started

    def kill(self, index: int) -> None:
        self.processes[index].kill()

    def stop(self, timeout: float = 5.0) -> None:
        """Para todos os processos iniciados (SIGTERM, depois SIGKILL), pelo PID."""
        for process in self.processes.values():
            if process.alive():
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            process.terminate(timeout)

    def live(self) -> list:
        return [index for index, process in self.processes.items() if process.alive()]

    def describe_failure(self) -> str:
        """Últimas linhas do log de cada nó, para a mensagem de erro."""
        parts = []
        for index, process in sorted(self.processes.items()):
            state = "rodando" if process.alive() else f"saiu com {process.popen.returncode}"
            parts.append(f"--- nó {index} ({state}), log {process.log_path}:\n"
                         f"{process.log_tail()}")
        return "\n".join(parts)

    # ---- estado ---------------------------------------------------------------

    def node_state(self, index: int) -> Optional[dict]:
        """Estado de um nó: {"leader": bool, "term": int, "leader_index": int|None,
        "applied": int}; None se ele não respondeu."""
        raise NotImplementedError

    def find_leader(self) -> Optional[int]:
        """Índice do líder que uma maioria reconhece, ou None."""
        states = {index: self.node_state(index) for index in self.live()}
        for index, state in states.items():
            if state is None or not state["leader"]:
                continue
            agree = sum(1 for other in states.values()
                        if other is not None and other["term"] == state["term"]
                        and other["leader_index"] == index)
            if agree >= self.size // 2 + 1:
                return index
        return None

    def _check_majority_alive(self) -> None:
        if len(self.live()) < self.size // 2 + 1:
            raise ClusterError(f"{self.name}: só {len(self.live())} de {self.size} nós estão "
                               f"rodando; sem maioria não há líder\n"
                               f"{self.describe_failure()}")

    def wait_for_leader(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_majority_alive()
            leader = self.find_leader()
            if leader is not None:
                return leader
            time.sleep(POLL_INTERVAL_S * 5)
        raise ClusterError(f"{self.name}: nenhum líder reconhecido pela maioria em "
                           f"{timeout:.0f} s\n{self.describe_failure()}")

    def wait_for_first_leader(self, timeout: float) -> float:
        """Espera algum nó se declarar líder; devolve o instante (perf_counter)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_majority_alive()
            for index in self.live():
                state = self.node_state(index)
                if state is not None and state["leader"]:
                    return time.perf_counter()
            time.sleep(POLL_INTERVAL_S)
        raise ClusterError(f"{self.name}: nenhum líder em {timeout:.0f} s depois da "
                           f"partida\n{self.describe_failure()}")

    def max_term(self) -> int:
        terms = [state["term"] for state in map(self.node_state, self.live())
                 if state is not None]
        return max(terms, default=0)

    def wait_caught_up(self, timeout: float) -> None:
        """Espera todos os nós terem aplicado o mesmo índice que o líder."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [self.node_state(index) for index in range(self.size)]
            if all(state is not None for state in states):
                applied = {state["applied"] for state in states}
                leaders = {state["leader_index"] for state in states}
                if len(applied) == 1 and len(leaders) == 1 and None not in leaders:
                    return
            time.sleep(POLL_INTERVAL_S * 5)
        raise ClusterError(f"{self.name}: os nós não alcançaram o líder em {timeout:.0f} s\n"
                           f"{self.describe_failure()}")

    def log_entries(self, leader: int) -> int:
        raise NotImplementedError

    def data_sizes(self) -> dict:
        raise NotImplementedError

    def cpu_seconds(self) -> dict:
        return {index: process.cpu_seconds() for index, process in self.processes.items()}

    def peak_rss_kib(self) -> dict:
        return {index: process.peak_rss_kib() for index, process in self.processes.items()}

    # ---- requisições da carga --------------------------------------------------

    def write_request(self, port: int, key: str, value: str) -> bytes:
        raise NotImplementedError

    def read_request(self, port: int, key: str) -> bytes:
        raise NotImplementedError


def _http_request(method: str, port: int, path: str, body: bytes) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


class RaftCluster(Cluster):
    """Nós de raft_distribuido.py, cada um num processo, com fsync ligado."""

    name = "raft"

    def __init__(self, size: int, workdir: Path, node_script: Path,
                 profile_dir: Optional[Path] = None, tracemalloc_dir: Optional[Path] = None):
        super().__init__(size, workdir)
        self.node_script = node_script
        self.profile_dir = profile_dir
        self.tracemalloc_dir = tracemalloc_dir
        self.client_ports = free_ports(size)
        self.urls = [f"http://{HOST}:{port}" for port in self.client_ports]

    def data_dir(self, index: int) -> Path:
        return self.workdir / f"no-{index}"

    def spawn(self, index: int) -> None:
        peers = [url for other, url in enumerate(self.urls) if other != index]
        arguments = [str(self.node_script), "--id", str(index), "--host", HOST,
                     "--port", str(self.client_ports[index]),
                     "--data-dir", str(self.data_dir(index)), "--peers", *peers]
        command = [sys.executable]
        if self.profile_dir is not None or self.tracemalloc_dir is not None:
            command.append(str(PROFILED_NODE))
            if self.profile_dir is not None:
                command += ["--cprofile", str(self.profile_dir / f"no-{index}.prof")]
            if self.tracemalloc_dir is not None:
                command += ["--tracemalloc", str(self.tracemalloc_dir / f"no-{index}.txt")]
            command.append("--")
        command += arguments
        old = self.processes.get(index)
        if old is not None and old.alive():
            raise ClusterError(f"raft: o nó {index} ainda está rodando (PID {old.pid})")
        self.processes[index] = ManagedProcess(f"raft-{index}", command,
                                               self.workdir / f"no-{index}.log", self.workdir)

    def node_state(self, index: int) -> Optional[dict]:
        answer = _json_request(self.client_ports[index], "GET", "/status")
        if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
            return None
        status = answer[1]
        leader_url = status.get("leader_url")
        leader_index = self.urls.index(leader_url) if leader_url in self.urls else None
        return {"leader": status.get("state") == "leader", "term": status.get("term", 0),
                "leader_index": leader_index, "applied": status.get("last_applied", 0),
                "last_log_index": status.get("last_log_index", 0)}

    def log_entries(self, leader: int) -> int:
        state = self.node_state(leader)
        return state["last_log_index"] if state else 0

    def data_sizes(self) -> dict:
        sizes = {}
        for index in range(self.size):
            log_path = self.data_dir(index) / "log.bin"
            sizes[index] = {"log_bytes": log_path.stat().st_size if log_path.exists() else 0,
                            "data_dir_bytes": folder_bytes(self.data_dir(index))}
        return sizes

    def write_request(self, port: int, key: str, value: str) -> bytes:
        body = json.dumps({"value": value}, separators=(",", ":")).encode()
        return _http_request("PUT", port, f"/kv/{key}", body)

    def read_request(self, port: int, key: str) -> bytes:
        return _http_request("GET", port, f"/kv/{key}", b"")


def etcd_binary() -> Optional[str]:
    return shutil.which("etcd")


def etcd_version(binary: str) -> str:
    try:
        output = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    first = output.splitlines()[0] if output else "?"
    return first.replace("etcd Version:", "").strip()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdCluster(Cluster):
    """Um cluster etcd em 127.0.0.1, medido pela sua API HTTP/JSON (/v3/kv/...).

    O etcd grava o WAL com fsync, como o nó Raft. Os números de membro (ids de
    64 bits) que a API devolve são traduzidos para os índices 0..N-1 daqui.
    """

    name = "etcd"

    def __init__(self, size: int, workdir: Path, binary: str, heartbeat_ms: int,
                 election_ms: int):
        super().__init__(size, workdir)
        self.binary = binary
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        ports = free_ports(2 * size)
        self.client_ports = ports[:size]
        self.peer_ports = ports[size:]
        self.member_ids: dict = {}
        self.token = f"bench-{os.getpid()}-{time.time_ns()}"

    def data_dir(self, index: int) -> Path:
        return self.workdir / f"etcd-{index}"

    def spawn(self, index: int) -> None:
        cluster = ",".join(f"e{other}=http://{HOST}:{port}"
                           for other, port in enumerate(self.peer_ports))
        client_url = f"http://{HOST}:{self.client_ports[index]}"
        peer_url = f"http://{HOST}:{self.peer_ports[index]}"
        command = [self.binary, "--name", f"e{index}",
                   "--data-dir", str(self.data_dir(index)),
                   "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                   "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                   "--initial-cluster", cluster, "--initial-cluster-state", "new",
                   "--initial-cluster-token", self.token,
                   "--heartbeat-interval", str(self.heartbeat_ms),
                   "--election-timeout", str(self.election_ms),
                   "--logger", "zap", "--log-level", "warn"]
        self.processes[index] = ManagedProcess(f"etcd-{index}", command,
                                               self.workdir / f"etcd-{index}.log",
                                               self.workdir)

    def node_state(self, index: int) -> Optional[dict]:
        answer = _json_request(self.client_ports[index], "POST", "/v3/maintenance/status", {})
        if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
            return None
        status = answer[1]
        header = status.get("header", {})
        member = header.get("member_id")
        if member is not None:
            self.member_ids[member] = index
        leader = status.get("leader")
        return {"leader": leader is not None and leader == member,
                "term": int(status.get("raftTerm", 0)),
                "leader_index": self.member_ids.get(leader),
                "applied": int(status.get("raftAppliedIndex", status.get("raftIndex", 0))),
                "revision": int(header.get("revision", 0)),
                "raft_index": int(status.get("raftIndex", 0))}

    def find_leader(self) -> Optional[int]:
        # Os ids de membro só são conhecidos depois que cada nó respondeu uma vez.
        if len(self.member_ids) < len(self.live()):
            for index in self.live():
                self.node_state(index)
        return super().find_leader()

    def wait_caught_up(self, timeout: float) -> None:
        """Espera todos reconhecerem o mesmo líder e terem o mesmo índice Raft."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [self.node_state(index) for index in range(self.size)]
            if all(state is not None for state in states):
                leaders = {state["leader_index"] for state in states}
                indexes = {state["raft_index"] for state in states}
                if len(leaders) == 1 and None not in leaders and len(indexes) == 1:
                    return
            time.sleep(POLL_INTERVAL_S * 5)
        raise ClusterError(f"etcd: os membros não alcançaram o líder em {timeout:.0f} s\n"
                           f"{self.describe_failure()}")

    def log_entries(self, leader: int) -> int:
        state = self.node_state(leader)
        return state["revision"] if state else 0

    def data_sizes(self) -> dict:
        sizes = {}
        for index in range(self.size):
            wal = self.data_dir(index) / "member" / "wal"
            sizes[index] = {"log_bytes": folder_bytes(wal),
                            "data_dir_bytes": folder_bytes(self.data_dir(index))}
        return sizes

    def write_request(self, port: int, key: str, value: str) -> bytes:
        body = json.dumps({"key": _b64(key), "value": _b64(value)},
                          separators=(",", ":")).encode()
        return _http_request("POST", port, "/v3/kv/put", body)

    def read_request(self, port: int, key: str) -> bytes:
        body = json.dumps({"key": _b64(key)}, separators=(",", ":")).encode()
        return _http_request("POST", port, "/v3/kv/range", body)
